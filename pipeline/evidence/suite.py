"""`golden test`: inspect the artifact (hygiene, read-only), boot the candidate, run `cis_checks/` and
`acceptance/` against it with pytest (testinfra over paramiko, pytest-xdist), reboot it and check it
comes back; every result is a JUnit file in the run directory:

    junit-hygiene.xml   acceptance -m hygiene against the artifact file, before any boot
    junit.xml           cis_checks + acceptance against the booted candidate
    junit-reboot.xml    the candidate rebooted and answered again, fully up
"""

import os
import subprocess
import sys
import time

from junit_xml import TestCase, TestSuite, to_xml_report_string

from pipeline.checks import exceptions
from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import SYSTEMCTL
from pipeline.errors import GoldenError
from pipeline.image.spec import known_images
from pipeline.paths import ROOT
from pipeline.util import write_json_atomic

EXIT_MEANINGS = {0: "all tests passed", 1: "some tests failed", 2: "interrupted", 3: "internal error",
                 4: "usage error", 5: "no tests were collected"}
SUITES = ("cis_checks", "acceptance")
# Longest one test may take against the candidate (pytest-timeout): a remote command that hangs
# fails its test, and the gate with it, instead of hanging the pipeline.
TEST_TIMEOUT = 300


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
    return [sys.executable, "-m", "pytest", *SUITES, f"--hosts={hostspec}", "--sudo", "-m", "not hygiene",
            f"--role={spec.role}", f"--level={spec.level}", f"--image-name={spec.name}", f"--spec={spec.path}",
            f"--exceptions={paths}", "-n", str(workers), f"--timeout={TEST_TIMEOUT}",
            f"--junitxml={run.path('junit.xml')}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider",
            "-q", "-rfE", "--tb=short", "--color=no", *extra_args]


def hygiene(run, spec, log):
    """The hygiene tests against the artifact file itself, read-only, before any boot."""
    cmd = [sys.executable, "-m", "pytest", "acceptance", "-m", "hygiene", f"--artifact={run.artifact}",
           f"--spec={spec.path}", f"--junitxml={run.path('junit-hygiene.xml')}", "-o", "junit_family=xunit1",
           "-p", "no:cacheprovider", "-q", "-rfE", "--tb=short", "--color=no"]
    return _pytest(run, cmd, "hygiene", log)


def run_suite(run, hostspec, spec, log, workers=2, extra_args=(), exception_paths=None):
    snapshot_exceptions(run, spec, exception_paths)
    cmd = pytest_command(run, hostspec, spec, workers, extra_args, exception_paths)
    log(f"pytest {' '.join(SUITES)} against the candidate ({workers} workers)")
    return _pytest(run, cmd, "test", log)


def reboot_check(run, cand, log, timeout=300):
    """Reboot the candidate; a JUnit case says whether it came back reachable and fully up."""
    case = TestCase("test_reachable_and_running_after_reboot", classname="acceptance.reboot")
    t0 = time.monotonic()
    try:
        record = cand.reboot(log, timeout=timeout)
        if record["system_state"] != "running":
            failed = cand.vm.run(f"{SYSTEMCTL} list-units --state=failed --no-legend --plain", check=False)[1]
            case.add_failure_info(f"after the reboot the system is {record['system_state']}", failed.strip())
    except GoldenError as exc:
        record = {"error": str(exc)}
        case.add_failure_info("the candidate did not come back after a reboot", str(exc))
    case.elapsed_sec = round(time.monotonic() - t0, 1)
    with open(run.path("junit-reboot.xml"), "w", encoding="utf-8") as fh:
        fh.write(to_xml_report_string([TestSuite("reboot", [case])]))
    write_json_atomic(run.path("reboot.json"), record)
    return not case.is_failure()


def _pytest(run, cmd, name, log):
    t0 = time.monotonic()
    with open(run.path(f"pytest-{name}.log" if name != "test" else "pytest.log"), "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        for line in proc.stdout:
            out.write(line)
            if line.startswith(("FAILED", "ERROR")) or " passed" in line or " failed" in line:
                log(line.rstrip())
        code = proc.wait()
    record = {"exit_code": code, "exit_meaning": EXIT_MEANINGS.get(code, "unknown"),
              "seconds": round(time.monotonic() - t0, 1), "command": cmd}
    write_json_atomic(run.path(f"{name}.json"), record)
    return record
