"""`golden test`: inspect the artifact (hygiene, read-only), boot the candidate, run `cis_checks/` and
`acceptance/` against it with pytest (testinfra over paramiko, pytest-xdist), reboot it and check it
comes back; every result is a JUnit file in the run directory:

    junit-hygiene.xml   acceptance -m hygiene against the artifact file, before any boot
    junit.xml           cis_checks + acceptance against the booted candidate
    junit-reboot.xml    the candidate rebooted and answered again, fully up
"""

import collections
import os
import signal
import subprocess
import sys
import time
import types

from junit_xml import TestCase, TestSuite, to_xml_report_string

from pipeline.checks import exceptions
from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import SYSTEMCTL
from pipeline.errors import GoldenError
from pipeline.evidence.attempt import EXPECTED
from pipeline.image.spec import known_images
from pipeline.paths import ROOT
from pipeline.util import write_json_atomic
from pipeline.vm.qemu import die_with_parent

EXIT_MEANINGS = {0: "all tests passed", 1: "some tests failed", 2: "interrupted", 3: "internal error",
                 4: "usage error", 5: "no tests were collected"}
SUITES = ("cis_checks", "acceptance")
PLUGIN = "pipeline.evidence.pytest_plugin"
# A session's JUnit file and log in the run directory; its record is <name>.json.
SESSIONS = {"hygiene": ("junit-hygiene.xml", "pytest-hygiene.log"), "test": ("junit.xml", "pytest.log")}
# The one case of junit-reboot.xml, as (classname, name).
REBOOT_CASE = ("acceptance.reboot", "test_reachable_and_running_after_reboot")
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
        "attempt": run.attempt, "role": spec.role, "image": spec.name, "checked_on": as_of.isoformat(),
        "exceptions": [e.record() for e in relevant]})


def pytest_command(run, hostspec, spec, workers=2, extra_args=(), exception_paths=None):
    paths = ",".join(exception_paths or [exceptions.DEFAULT_DIR])
    return [*SUITES, f"--hosts={hostspec}", "--sudo", "-m", "not hygiene",
            f"--role={spec.role}", f"--level={spec.level}", f"--image-name={spec.name}", f"--spec={spec.path}",
            f"--image-version={run.version}",
            f"--exceptions={paths}", "-n", str(workers), f"--timeout={TEST_TIMEOUT}", "-rfE", "--tb=short",
            *extra_args]


def hygiene_args(run, spec):
    return ["acceptance", "-m", "hygiene", f"--artifact={run.artifact}", f"--spec={spec.path}",
            f"--image-version={run.version}", "-rfE", "--tb=short"]


def hygiene(run, spec, log):
    """The hygiene tests against the artifact file itself, read-only, before any boot."""
    return run_pytest(run, hygiene_args(run, spec), "hygiene", log)


def run_suite(run, hostspec, spec, log, workers=2, extra_args=(), exception_paths=None, alive=None):
    """The suites against the booted candidate. `alive()` says whether the candidate's VM still runs:
    a VM that died under the suite makes the session interrupted, whatever pytest's exit code."""
    snapshot_exceptions(run, spec, exception_paths)
    args = pytest_command(run, hostspec, spec, workers, extra_args, exception_paths)
    log(f"pytest {' '.join(SUITES)} against the candidate ({workers} workers)")
    return run_pytest(run, args, "test", log, alive=alive)


def reboot_check(run, cand, log, timeout=None):
    """Reboot the candidate; a JUnit case says whether it came back reachable and fully up."""
    classname, name = REBOOT_CASE
    case = TestCase(name, classname=classname)
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
        fh.write(to_xml_report_string([TestSuite("reboot", [case], properties={"attempt_id": run.attempt})]))
    write_json_atomic(run.path("reboot.json"), record | {"attempt": run.attempt})
    return not case.is_failure()


def run_pytest(run, args, name, log, alive=None):
    """pytest with `args` in its own session, its JUnit, log, collected ids and record in the run
    directory, all carrying the run's attempt id. pytest and its xdist workers die with the driver:
    a death signal if the driver is killed, their process group killed on any other way out.

        record = run_pytest(run, ["acceptance", "-m", "hygiene"], "hygiene", print)   # hygiene.json
    """
    log_name = SESSIONS[name][1]
    cmd = driver_command(run, name, args)
    t0 = time.monotonic()
    record = {"attempt": run.attempt, "command": cmd}
    proc = None
    try:
        with open(run.path(log_name), "w", encoding="utf-8") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), start_new_session=True,
                                    preexec_fn=die_with_parent(signal.SIGKILL))
            for line in proc.stdout:
                out.write(line)
                if line.startswith(("FAILED", "ERROR")) or " passed" in line or " failed" in line:
                    log(line.rstrip())
            code = proc.wait()
        record |= {"exit_code": code, "exit_meaning": _meaning(code)}
        if alive is not None and not alive():
            record |= {"status": "interrupted", "cause": "the candidate's QEMU exited during the session"}
        else:
            record["status"] = "finished" if code >= 0 else "killed"
    except BaseException as exc:      # the driver is stopping (a signal, an error): so is pytest
        record |= {"exit_code": None, "exit_meaning": "interrupted", "status": "interrupted",
                   "cause": str(exc) or type(exc).__name__}
        raise
    finally:
        _stop_group(proc)
        record["seconds"] = round(time.monotonic() - t0, 1)
        write_json_atomic(run.path(f"{name}.json"), record)
    return record


def driver_command(run, name, args):
    """The whole command of session `name` (hygiene, test) with the session's own `args`."""
    junit = SESSIONS[name][0]
    return [sys.executable, "-m", "pytest", "-p", PLUGIN, f"--attempt-id={run.attempt}",
            f"--expected-tests={run.path(EXPECTED[junit])}", f"--junitxml={run.path(junit)}", "-o",
            "junit_family=xunit1", "-p", "no:cacheprovider", "-q", "--color=no", *args]


# The driver's own arguments whose values may differ between the session and a later look at the run
# without changing which tests run: where the run directory, the artifact and the spec file were,
# the candidate's SSH endpoint, the exception files (the gate judges the waivers itself).
VARIABLE = ("--expected-tests=", "--junitxml=", "--artifact=", "--spec=", "--hosts=", "--exceptions=")


def unrequested_arguments(run, name, command):
    """(extra, missing): the arguments of a recorded session `command` beyond the driver's own, and
    those of the driver's own it lacks. Both empty: the session asked pytest for what the driver asks.

    The driver's arguments are fixed but for `golden test -- ARGS`, and the catalogue check covers
    the CIS controls only: an extra `-k`, `-m`, `--deselect`, `--ignore`, `-p no:...` or path can
    shrink the acceptance (or hygiene) tests collected and the JUnit together, so the gate cannot
    tell such a session from a whole one by its cases. It can by its command: rebuilt here from the
    run (version, attempt, role, level, image) with the functions that built it, the values in
    VARIABLE and the worker count taken from the command itself (the driver's own come first,
    extras after them), the interpreter left aside.
    """
    command = list(command)
    meta = run.meta
    spec = types.SimpleNamespace(role=meta.get("role"), level=meta.get("level"), name=meta.get("image"), path="")
    if name == "hygiene":
        args = hygiene_args(run, spec)
    else:
        workers = command[command.index("-n") + 1] if "-n" in command[:-1] else ""
        args = pytest_command(run, "", spec, workers)
    first = {}
    for token in reversed(command):
        prefix = next((p for p in VARIABLE if token.startswith(p)), None)
        if prefix:
            first[prefix] = token
    expected = [first.get(next((p for p in VARIABLE if t.startswith(p)), None), t)
                for t in driver_command(run, name, args)]
    have, want = command[1:], expected[1:]
    if have == want:
        return [], []
    extra = list((collections.Counter(have) - collections.Counter(want)).elements())
    missing = list((collections.Counter(want) - collections.Counter(have)).elements())
    if not extra and not missing:           # the same arguments in another order
        extra = [t for t, w in zip(have, want) if t != w]
    return extra, missing


def _meaning(code):
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return EXIT_MEANINGS.get(code, "unknown")


def _stop_group(proc, grace=10):
    """pytest's whole process group (it and its xdist workers): interrupted, so fixtures tear down
    (the hygiene's read-only mount is released), then killed."""
    if proc is None:
        return
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    proc.wait()
