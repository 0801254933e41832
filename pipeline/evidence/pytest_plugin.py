"""The evidence layer's pytest plugin, loaded by the driver into every suite it runs: the session's
JUnit carries the attempt id, the collected test ids are written before any test runs (the gate
compares the JUnit with them), and xdist workers die with the pytest that started them.

    pytest -p pipeline.evidence.pytest_plugin --attempt-id=ID --expected-tests=runs/<v>/expected-tests.json ...
"""

import os
import signal

import pytest
from _pytest.junitxml import xml_key

from pipeline.util import write_json_atomic
from pipeline.vm.qemu import set_death_signal

CONTROLLER_PID = "GOLDEN_PYTEST_PID"
_session = {}           # the controller's config, for the hooks that are not given it


def pytest_addoption(parser):
    group = parser.getgroup("golden-evidence", "golden run evidence")
    group.addoption("--attempt-id", dest="golden_attempt", metavar="ID",
                    help="the run attempt this session's evidence belongs to (a JUnit suite property)")
    group.addoption("--expected-tests", dest="golden_expected", metavar="PATH",
                    help="write the collected test ids here before any test runs")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if hasattr(config, "workerinput"):
        # A worker is pytest's child: it must not outlive it, even when pytest is SIGKILLed.
        set_death_signal(signal.SIGKILL)
        if str(os.getppid()) != os.environ.get(CONTROLLER_PID, str(os.getppid())):
            os._exit(1)      # pytest died before the death signal was set
        return
    os.environ[CONTROLLER_PID] = str(os.getpid())      # the workers, started later, inherit it
    _session["config"] = config
    xml = config.stash.get(xml_key, None)
    if xml is not None and config.option.golden_attempt:
        xml.add_global_property("attempt_id", config.option.golden_attempt)


def pytest_keyboard_interrupt(excinfo):
    """An interrupted session writes no JUnit (it is called before the JUnit is written): a partial
    one is evidence of nothing."""
    config = _session.get("config")
    xml = config.stash.get(xml_key, None) if config else None
    if xml is not None:
        xml.logfile = os.devnull


def _write_expected(config, ids):
    if config.option.golden_expected:
        write_json_atomic(config.option.golden_expected, {"attempt": config.option.golden_attempt,
                                                          "tests": list(ids)})


def pytest_collection_finish(session):
    if not hasattr(session.config, "workerinput"):
        _write_expected(session.config, [item.nodeid for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """Under xdist the controller collects nothing; the first worker's collection is the session's
    (xdist itself stops the session when workers disagree)."""
    config = node.config
    if not getattr(config, "_golden_expected_written", False):
        config._golden_expected_written = True
        _write_expected(config, ids)
