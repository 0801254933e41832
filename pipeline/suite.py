"""`golden test`: boot the candidate and run `cis_checks/` and `acceptance/` against it with
pytest (testinfra over paramiko, pytest-xdist), writing the JUnit into the run directory."""

import os
import subprocess
import sys
import time

from .boot import booted
from .checks import exceptions
from .checks.baseline import Baseline
from .checks.catalogue import ROOT
from .spec import known_images
from .util import write_json_atomic

EXIT_MEANINGS = {0: "all tests passed", 1: "some tests failed", 2: "interrupted", 3: "internal error",
                 4: "usage error", 5: "no tests were collected"}
SUITES = ("cis_checks", "acceptance")


def load_exceptions(spec, paths=None, as_of=None, baseline=None):
    """The exception files, validated, and those in this image's scope."""
    baseline = baseline or Baseline.load()
    excs = exceptions.load(paths or [exceptions.DEFAULT_DIR], baseline, known_images(baseline=baseline),
                           today=as_of)
    return excs, exceptions.in_scope(excs, spec.role, spec.name)


def snapshot_exceptions(run, spec, paths=None):
    """The exceptions the suite ran with, kept in the run so the gate judges them reproducibly."""
    as_of = exceptions.utc_today()
    _, relevant = load_exceptions(spec, paths, as_of)
    write_json_atomic(run.path("exceptions.json"), {
        "role": spec.role, "image": spec.name, "checked_on": as_of.isoformat(),
        "exceptions": [e.record() for e in relevant]})


def pytest_command(run, hostspec, spec, workers=2, extra_args=(), exception_paths=None):
    paths = ",".join(exception_paths or [exceptions.DEFAULT_DIR])
    return [sys.executable, "-m", "pytest", *SUITES, f"--hosts={hostspec}", "--sudo",
            f"--role={spec.role}", f"--level={spec.level}", f"--image-name={spec.name}",
            f"--exceptions={paths}", "-n", str(workers),
            f"--junitxml={run.path('junit.xml')}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider",
            "-q", "-rfE", "--tb=short", "--color=no", *extra_args]


def run_suite(run, hostspec, spec, log, workers=2, extra_args=(), exception_paths=None):
    snapshot_exceptions(run, spec, exception_paths)
    cmd = pytest_command(run, hostspec, spec, workers, extra_args, exception_paths)
    t0 = time.monotonic()
    log(f"pytest {' '.join(SUITES)} against the candidate ({workers} workers)")
    with open(run.path("pytest.log"), "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        for line in proc.stdout:
            out.write(line)
            if line.startswith(("FAILED", "ERROR")) or " passed" in line or " failed" in line:
                log(line.rstrip())
        code = proc.wait()
    record = {"exit_code": code, "exit_meaning": EXIT_MEANINGS.get(code, "unknown"),
              "seconds": round(time.monotonic() - t0, 1), "command": cmd}
    write_json_atomic(run.path("test.json"), record)
    return record


def test_candidate(run, spec, *, cache_dir, log, workers=2, extra_args=(), exception_paths=None):
    """Boot the run's artifact and run the suite; the boot record and test record go in the run."""
    with booted(run.artifact, run.path("boot"), cache_dir=cache_dir, log=log) as cand:
        return run_suite(run, cand.hostspec, spec, log, workers, extra_args, exception_paths)
