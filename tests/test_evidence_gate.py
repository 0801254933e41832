"""The gate knows what was expected (issue 10, items 1 and 2): degenerate, truncated, padded or
stale JUnit and records fail it; a not-applicable verdict is its own outcome."""

import json
import os
import re
import shlex
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from pipeline.evidence import attempt, report, suite
from pipeline.evidence.gate import decide
from pipeline.evidence.junit import read_junit
from pipeline.evidence.rundir import Run

from .runfixtures import (
    ATTEMPT,
    HYGIENE_JUNIT,
    LEVEL,
    ROLE,
    PASSING_JUNIT,
    REBOOT_JUNIT,
    SUITE_TESTS,
    junit_document,
    make_run,
    write_junit,
)

NO_CASES = """<?xml version="1.0" ?>
<testsuites><testsuite name="{name}" tests="0" failures="0" errors="0" skipped="0"></testsuite></testsuites>
"""


def failed_with(run, *fragments):
    record = decide(run)
    assert record["decision"] == "fail"
    for fragment in fragments:
        assert any(fragment in r for r in record["reasons"]), (fragment, record["reasons"])
    return record


def first_case_only(text):
    """junit.xml cut after its first test case and closed properly, the declared counts left as they were."""
    head, rest = text.split("<testcase", 1)
    first = "<testcase" + rest.split("</testcase>", 1)[0] + "</testcase>"
    return head + first + "\n</testsuite></testsuites>\n"


def test_nameless_cases_under_a_zero_count_fail(tmp_path):
    junit = ('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="0" errors="0" failures="0" '
             'skipped="0"><testcase/><testcase/></testsuite></testsuites>')
    failed_with(make_run(tmp_path, junit=junit), "declares tests=0 but holds 2", "a test case with no name",
                f"{len(SUITE_TESTS)} test case(s) missing", "have no verdict")


@pytest.mark.parametrize("name,suite", [("junit-reboot.xml", "reboot"), ("junit-hygiene.xml", "pytest")])
def test_a_reboot_or_hygiene_junit_with_no_case_fails(tmp_path, name, suite):
    run = make_run(tmp_path)
    write_junit(run.path(name), NO_CASES.format(name=suite))
    failed_with(run, f"zero tests ran: {name}", f"{name}: 1 test case(s) missing")


def test_a_truncated_junit_fails_on_its_declared_count_and_the_missing_cases(tmp_path):
    run = make_run(tmp_path, junit=first_case_only(PASSING_JUNIT))
    failed_with(run, f"declares tests={len(SUITE_TESTS)} but holds 1", f"{len(SUITE_TESTS) - 1} test case(s) missing")


def test_a_truncated_junit_with_its_collection_record_edited_to_match_still_fails(tmp_path):
    """The expected set is derived from the catalogue too, not only from what the session wrote."""
    kept = SUITE_TESTS[:3]
    run = make_run(tmp_path, junit=junit_document(kept))
    with open(run.path("expected-tests.json"), "w") as fh:
        json.dump({"attempt": ATTEMPT, "tests": kept}, fh)
    record = failed_with(run, f"{len(SUITE_TESTS) - 4} checked control(s) of role general-purpose level 1 have "
                              "no verdict")
    assert not any("missing" in r for r in record["reasons"])


def test_duplicate_and_extra_cases_fail(tmp_path):
    duplicated = junit_document([*SUITE_TESTS, SUITE_TESTS[0]])
    failed_with(make_run(tmp_path / "a", junit=duplicated), "1 test case(s) reported more than once",
                "control(s) with more than one verdict: CIS 1.1.1.1")
    extra = junit_document([*SUITE_TESTS, "acceptance/test_boot.py::test_not_collected"])
    failed_with(make_run(tmp_path / "b", junit=extra), "1 test case(s) not collected (extra): "
                                                       "acceptance.test_boot::test_not_collected")


def test_a_verdict_on_a_control_above_the_level_fails(tmp_path):
    level2 = "cis_checks/1.1.2-filesystems.yaml::1.1.1.6"      # a Level 2 control of the catalogue
    run = make_run(tmp_path, junit=junit_document([*SUITE_TESTS, level2]))
    with open(run.path("expected-tests.json"), "w") as fh:
        json.dump({"attempt": ATTEMPT, "tests": [*SUITE_TESTS, level2]}, fh)
    failed_with(run, "verdicts on control(s) outside role general-purpose level 1: CIS 1.1.1.6")


@pytest.mark.parametrize("attr,value", [("failures", "1"), ("errors", "2"), ("skipped", "3"), ("tests", "1")])
def test_declared_counts_that_disagree_with_the_cases_fail(tmp_path, attr, value):
    junit = re.sub(rf'{attr}="\d+"', f'{attr}="{value}"', PASSING_JUNIT, count=1)
    failed_with(make_run(tmp_path, junit=junit), f"declares {attr}={value} but holds")


def test_no_collection_record_fails(tmp_path):
    run = make_run(tmp_path)
    os.unlink(run.path("expected-tests.json"))
    failed_with(run, "no expected-tests.json")


def test_a_new_attempt_moves_the_old_evidence_aside_and_the_gate_fails_on_nothing(tmp_path):
    """`golden test` killed while booting: the earlier attempt's passing evidence must not pass the gate."""
    run = make_run(tmp_path)
    assert decide(run)["decision"] == "pass"
    new = attempt.start(run)
    assert run.attempt == new != ATTEMPT and run.meta["attempt"]["previous"] == ATTEMPT
    for name in ("junit.xml", "junit-reboot.xml", "test.json", "boot/boot.json", "gate.json"):
        assert not os.path.exists(run.path(name)) and os.path.exists(run.path("attempts", ATTEMPT, name))
    failed_with(run, "never booted", f"no reboot.json (the reboot) from attempt {new}", "no JUnit file junit.xml")


@pytest.mark.parametrize("name", ["boot/boot.json", "test.json", "hygiene.json", "reboot.json",
                                  "expected-tests.json", "expected-hygiene.json", "exceptions.json"])
def test_a_record_of_another_attempt_fails(tmp_path, name):
    run = make_run(tmp_path)
    data = json.load(open(run.path(name))) if os.path.exists(run.path(name)) else {"exceptions": []}
    with open(run.path(name), "w") as fh:
        json.dump(data | {"attempt": "an-earlier-attempt"}, fh)
    failed_with(run, f"{name} (", "is from attempt an-earlier-attempt")


def test_a_waiver_from_the_exceptions_of_another_attempt_does_not_pass(tmp_path):
    """exceptions.json is where the gate takes its waivers from: one of an earlier attempt, holding the
    waiver a case claims, must not let that case pass."""
    waived = PASSING_JUNIT.replace('name="5.1.20" time="0.01">', 'name="5.1.20" time="0.01">'
                                   '<skipped type="pytest.skip" message="waived by EXC-1"/>').replace(
        '<property name="level" value="1"/>', '<property name="level" value="1"/><property name="outcome" '
        'value="waived"/><property name="waiver_id" value="EXC-1"/>').replace('skipped="0"', 'skipped="1"')
    run = make_run(tmp_path, junit=waived)
    snapshot = {"role": "general-purpose", "image": "linux", "exceptions": [
        {"id": "EXC-1", "controls": ["5.1.20"], "why": "w", "owner": "o@example.com", "approved_by": "a",
         "ticket": "T-1", "expires": "2999-01-01"}]}
    with open(run.path("exceptions.json"), "w") as fh:
        json.dump(snapshot | {"attempt": ATTEMPT}, fh)
    record = decide(run)
    assert record["decision"] == "pass" and record["counts"]["waived"] == 1, record["reasons"]
    with open(run.path("exceptions.json"), "w") as fh:
        json.dump(snapshot | {"attempt": "an-earlier-attempt"}, fh)
    failed_with(run, "exceptions.json (the exceptions the suite ran with) is from attempt an-earlier-attempt")


@pytest.mark.parametrize("name,text", [("junit.xml", PASSING_JUNIT), ("junit-reboot.xml", REBOOT_JUNIT),
                                       ("junit-hygiene.xml", HYGIENE_JUNIT)])
def test_a_junit_of_another_attempt_fails(tmp_path, name, text):
    run = make_run(tmp_path)
    write_junit(run.path(name), text, attempt="an-earlier-attempt")
    record = failed_with(run, f"{name} is from attempt an-earlier-attempt")
    assert record["attempt"] == ATTEMPT


def test_evidence_with_no_attempt_recorded_fails(tmp_path):
    run = make_run(tmp_path)
    meta = run.meta
    del meta["attempt"]
    with open(run.path("run.json"), "w") as fh:
        json.dump(meta, fh)
    failed_with(run, "no test attempt is recorded")


def test_an_interrupted_session_fails_whatever_its_exit_code(tmp_path):
    run = make_run(tmp_path)
    with open(run.path("test.json"), "w") as fh:
        json.dump({"attempt": ATTEMPT, "exit_code": 1, "status": "interrupted",
                   "cause": "the candidate's QEMU exited during the session"}, fh)
    failed_with(run, "did not finish normally (exit code 1: the candidate's QEMU exited during the session)")


NOT_APPLICABLE = ('<skipped type="pytest.skip" message="not applicable: /home is not a separate filesystem"/>'
                  '<properties><property name="outcome" value="not-applicable"/>')


def test_a_not_applicable_verdict_is_its_own_outcome(tmp_path):
    assert any(i.endswith("::1.1.2.3.2") for i in SUITE_TESTS)       # nodev on /home, a checked control
    junit = PASSING_JUNIT.replace('name="1.1.2.3.2" time="0.01"><properties>', 'name="1.1.2.3.2" time="0.01">'
                                  + NOT_APPLICABLE).replace('skipped="0"', 'skipped="1"')
    run = make_run(tmp_path, junit=junit)
    case = next(c for c in read_junit(run.path("junit.xml")).cases if c["name"] == "1.1.2.3.2")
    assert case["status"] == "not-applicable" and "/home is not a separate" in case["message"]
    record = decide(run)
    assert record["decision"] == "pass", record["reasons"]
    assert record["counts"]["not_applicable"] == 1 and record["counts"]["passed"] == record["counts"]["total"] - 1
    assert not record["failures"]
    html = open(report.render(run)).read()
    assert "not applicable: /home is not a separate filesystem" in html.replace("</td>", "")
    assert "1 not applicable" in html


# ---- the sessions ran with the driver's own arguments (golden test -- ARGS cannot choose the tests)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTSPEC = "paramiko://golden-candidate?ssh_config=%2Fruns%2Fboot%2Fssh_config"
ACCEPTANCE = [t for t in SUITE_TESTS if t.startswith("acceptance/")]


def _spec():
    return SimpleNamespace(role=ROLE, level=LEVEL, name="linux", path=os.path.join(REPO, "images", "golden-linux.yaml"))


def record_command(run, name, extra=()):
    """The session record as the driver writes it, its command with `extra` pytest arguments."""
    args = (suite.hygiene_args(run, _spec()) + list(extra) if name == "hygiene"
            else suite.pytest_command(run, HOSTSPEC, _spec(), 2, tuple(extra), [os.path.join(REPO, "waivers")]))
    data = json.load(open(run.path(f"{name}.json")))
    with open(run.path(f"{name}.json"), "w") as fh:
        json.dump(data | {"command": suite.driver_command(run, name, args)}, fh)


@pytest.mark.parametrize("extra", [["-k", "not test_boot"], ["--deselect", ACCEPTANCE[0]],
                                   ["--ignore=acceptance/test_boot.py"], ["-m", "not hygiene and not boot"]])
def test_a_session_that_deselected_acceptance_tests_fails(tmp_path, extra):
    """`golden test --run R -- -k ...`: the collection record and junit.xml shrink together, and the
    catalogue check covers the CIS controls only; the command the session ran with fails it."""
    assert ACCEPTANCE
    cis_only = [t for t in SUITE_TESTS if t not in ACCEPTANCE]
    run = make_run(tmp_path, junit=junit_document(cis_only))
    with open(run.path("expected-tests.json"), "w") as fh:
        json.dump({"attempt": ATTEMPT, "tests": cis_only}, fh)
    record_command(run, "hygiene")
    record_command(run, "test", extra)
    record = failed_with(run, "test.json (the suite): pytest ran with argument(s) the driver does not give: "
                         + shlex.join(extra))
    assert len(record["reasons"]) == 1, record["reasons"]     # nothing else gave it away


def test_a_hygiene_session_with_extra_arguments_fails(tmp_path):
    run = make_run(tmp_path)
    record_command(run, "hygiene", ["-k", "not ssh_host_keys"])
    record_command(run, "test")
    failed_with(run, "hygiene.json (the hygiene inspection of the artifact): pytest ran with argument(s) the "
                "driver does not give: -k 'not ssh_host_keys'")


def test_a_session_without_an_argument_of_the_driver_fails(tmp_path):
    run = make_run(tmp_path)
    record_command(run, "test")
    data = json.load(open(run.path("test.json")))
    data["command"].remove("cis_checks")
    with open(run.path("test.json"), "w") as fh:
        json.dump(data, fh)
    failed_with(run, "test.json (the suite): pytest ran without the driver's argument(s) cis_checks")


@pytest.mark.parametrize("session,what", [("test", "the suite"), ("hygiene", "the hygiene inspection of the artifact")])
def test_a_session_record_without_its_command_fails(tmp_path, session, what):
    run = make_run(tmp_path)
    data = json.load(open(run.path(f"{session}.json")))
    del data["command"]
    with open(run.path(f"{session}.json"), "w") as fh:
        json.dump(data, fh)
    failed_with(run, f"{session}.json ({what}): it records no command")


def test_the_drivers_own_commands_pass_wherever_the_run_directory_is(tmp_path):
    run = make_run(tmp_path / "here")
    record_command(run, "hygiene")
    record_command(run, "test")
    assert decide(run)["decision"] == "pass", decide(run)["reasons"]
    moved = shutil.copytree(run.dir, tmp_path / "elsewhere" / run.version)
    record = decide(Run(moved))
    assert record["decision"] == "pass", record["reasons"]


def test_the_command_the_driver_records_is_the_one_the_gate_expects(tmp_path, monkeypatch):
    """run_suite and hygiene, as the stages call them (pytest itself replaced by `true`): the gate accepts
    what the driver records, and refuses it with `golden test -- -k ...`."""
    from pipeline.cli.common import load_spec
    real = subprocess.Popen
    monkeypatch.setattr(suite.subprocess, "Popen",
                        lambda cmd, **kw: real(["true"] if cmd[1:3] == ["-m", "pytest"] else cmd, **kw))
    run = make_run(tmp_path)
    spec = load_spec(os.path.join(REPO, "images", "golden-linux.yaml"))
    assert suite.hygiene(run, spec, lambda m: None)["exit_code"] == 0
    assert suite.run_suite(run, HOSTSPEC, spec, lambda m: None)["exit_code"] == 0
    record = decide(run)
    assert record["decision"] == "pass", record["reasons"]
    suite.run_suite(run, HOSTSPEC, spec, lambda m: None, workers=3, extra_args=("-k", "not ssh_live"))
    failed_with(run, "the driver does not give: -k 'not ssh_live'")


# ---- after a kill -9 of the driver, the per-boot private key is not archived with the attempt

def test_a_new_attempt_deletes_the_per_boot_private_key_of_the_one_before(tmp_path):
    run = make_run(tmp_path)
    for name, text in (("golden-test.key", "-----BEGIN OPENSSH PRIVATE KEY-----\n"), ("golden-test.key.pub", "ssh-ed25519 AAAA")):
        with open(run.path("boot", name), "w") as fh:
            fh.write(text)
    attempt.start(run)
    left = [os.path.join(d, f) for d, _, files in os.walk(run.dir) for f in files if f.endswith(".key")]
    assert left == []
    assert os.path.exists(run.path("attempts", ATTEMPT, "boot", "golden-test.key.pub"))
    assert os.path.exists(run.path("attempts", ATTEMPT, "boot", "boot.json"))
