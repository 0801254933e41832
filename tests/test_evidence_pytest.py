"""The driver's pytest sessions, run for real (tiny suites, xdist workers): the collected ids are
written before any test runs and match the JUnit's cases, every file carries the attempt id, and
pytest and its workers die with the driver, whether it is stopped or SIGKILLed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.evidence.gate import _case_reasons
from pipeline.evidence.junit import junit_name, read_junit
from pipeline.evidence.rundir import Run
from pipeline.paths import ROOT

# The driver side, as the test stage runs it: a run, a new attempt, the CLI's signal handling.
DRIVER = """
import sys
from pipeline.cli import stop_on_signals
from pipeline.evidence import attempt
from pipeline.evidence.rundir import Run
from pipeline.evidence.suite import run_pytest
stop_on_signals()
run = Run(sys.argv[1])
attempt.start(run)
run_pytest(run, sys.argv[2:], "test", print)
"""

SUITE = """
import os
import time

import pytest


class TestNames:
    def test_in_a_class(self):
        pass


@pytest.mark.parametrize("value", ["a::b", "c/d.py"])
def test_parametrized(value):
    pass


def test_sleeps_when_asked():
    open(os.path.join(os.environ["PID_DIR"], str(os.getpid())), "w").close()
    time.sleep(float(os.environ["SLEEP"]))
"""

CONFTEST = """
import os


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        open(os.path.join(os.environ["PID_DIR"], "controller-" + str(os.getpid())), "w").close()
"""


@pytest.fixture
def session(tmp_path):
    run = Run(tmp_path / "runs" / "golden-linux-2026.11.26+1")
    os.makedirs(run.dir)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_tiny.py").write_text(SUITE)
    (suite / "conftest.py").write_text(CONFTEST)
    pids = tmp_path / "pids"
    pids.mkdir()
    return run, suite, pids


def start_driver(run, suite, pids, sleep, *args):
    env = dict(os.environ, PID_DIR=str(pids), SLEEP=str(sleep), PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", DRIVER, run.dir, str(suite / "test_tiny.py"), *args], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def session_pids(pids):
    return [int(name.rsplit("-", 1)[-1]) for name in os.listdir(pids)]


def controller_pid(pids):
    return next(int(n.split("-")[1]) for n in os.listdir(pids) if n.startswith("controller-"))


def test_the_junit_holds_the_collected_ids_and_the_attempt(session):
    run, suite, pids = session
    driver = start_driver(run, suite, pids, 0, "-n", "2")
    assert driver.wait(timeout=120) == 0, driver.stderr.read().decode()
    attempt_id = run.attempt
    expected = json.load(open(run.path("expected-tests.json")))
    assert expected["attempt"] == attempt_id and len(expected["tests"]) == 4
    junit = read_junit(run.path("junit.xml"))
    assert junit.properties["attempt_id"] == attempt_id and junit.problems == []
    assert _case_reasons("junit.xml", junit.cases, [junit_name(i) for i in expected["tests"]]) == []
    assert {(c["classname"].rsplit(".", 1)[-1], c["name"]) for c in junit.cases} >= {
        ("TestNames", "test_in_a_class"), ("test_tiny", "test_parametrized[a::b]"), ("test_tiny", "test_parametrized[c/d.py]")}
    record = json.load(open(run.path("test.json")))
    assert record["attempt"] == attempt_id and record["exit_code"] == 0 and record["status"] == "finished"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pytest_and_its_workers_die_with_the_driver(session, sig):
    run, suite, pids = session
    driver = start_driver(run, suite, pids, 120, "-n", "2", "-k", "sleeps")
    assert wait_for(lambda: len(os.listdir(pids)) == 2), "the controller and one sleeping worker never started"
    started = session_pids(pids)
    controller = controller_pid(pids)
    workers = [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(controller)], capture_output=True,
                                              text=True).stdout.split()]
    assert len(workers) == 2, workers            # both xdist workers, one of them in the sleeping test
    os.kill(driver.pid, sig)
    driver.wait(timeout=60)
    assert wait_for(lambda: not any(running(p) for p in [controller, *workers, *started]), timeout=15), \
        [p for p in [controller, *workers, *started] if running(p)]
    time.sleep(2)
    assert not os.path.exists(run.path("junit.xml"))
    if sig != signal.SIGKILL:         # a stopped driver records why its session did not finish
        record = json.load(open(run.path("test.json")))
        assert record["status"] == "interrupted" and record["exit_code"] is None
        assert record["cause"] == sig.name and record["attempt"] == run.attempt
    assert driver.returncode != 0


def test_a_pytest_killed_by_a_signal_is_recorded_so(session):
    run, suite, pids = session
    driver = start_driver(run, suite, pids, 120, "-k", "sleeps")
    assert wait_for(lambda: len(os.listdir(pids)) == 2)
    os.kill(controller_pid(pids), signal.SIGKILL)
    assert driver.wait(timeout=60) == 0
    record = json.load(open(run.path("test.json")))
    assert record["exit_code"] == -9 and record["status"] == "killed" and record["exit_meaning"] == "killed by SIGKILL"
