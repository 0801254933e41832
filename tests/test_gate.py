import json
import os

import pytest

from pipeline.errors import GoldenError
from pipeline.evidence.gate import decide, require_pass

from .runfixtures import (
    ATTEMPT,
    COLLECTION_ERROR_JUNIT,
    EMPTY_JUNIT,
    FAILING_JUNIT,
    PASSING_CASES,
    make_run,
)


def test_passing_run_passes_and_binds_the_digest(tmp_path):
    run = make_run(tmp_path)
    record = decide(run)
    assert record["decision"] == "pass", record["reasons"]
    assert record["counts"] == {"passed": PASSING_CASES, "failed": 0, "error": 0, "skipped": 0, "waived": 0,
                                "not_applicable": 0, "total": PASSING_CASES}
    assert record["attempt"] == ATTEMPT
    assert [j["path"] for j in record["junit"]] == ["junit-hygiene.xml", "junit.xml", "junit-reboot.xml"]
    on_disk = json.loads(open(run.path("gate.json")).read())
    assert on_disk["artifact"]["sha256"] == json.loads(open(run.path("artifact.json")).read())["sha256"]
    assert require_pass(run.path("gate.json"), run.artifact)[0]["decision"] == "pass"


def test_failed_check_fails_with_its_cis_id(tmp_path):
    record = decide(make_run(tmp_path, junit=FAILING_JUNIT, test_exit=1))
    assert record["decision"] == "fail"
    assert record["failures"][0]["cis_id"] == "5.1.20"
    assert any("CIS 5.1.20" in r for r in record["reasons"])


@pytest.mark.parametrize("junit,reason", [
    (None, "no JUnit file junit.xml"),
    ("<testsuites><testsuite", "malformed JUnit XML"),
    ("", "malformed JUnit XML"),
    ("<html/>", "root element is <html>"),
    (EMPTY_JUNIT, "zero tests ran: junit.xml"),
    (COLLECTION_ERROR_JUNIT, "errored"),
])
def test_fails_closed_on_bad_junit(tmp_path, junit, reason):
    record = decide(make_run(tmp_path, junit=junit))
    assert record["decision"] == "fail"
    assert any(reason in r for r in record["reasons"]), record["reasons"]


def test_suite_level_error_without_testcase_counts(tmp_path):
    junit = EMPTY_JUNIT.replace('errors="0"', 'errors="1"').replace('tests="0">', 'tests="0"><testcase name="x"/>')
    record = decide(make_run(tmp_path, junit=junit))
    assert record["decision"] == "fail" and record["counts"]["error"] == 1


def test_fails_when_the_boot_never_happened(tmp_path):
    record = decide(make_run(tmp_path, boot=False))
    assert record["decision"] == "fail"
    assert any("never booted" in r for r in record["reasons"])


def test_fails_when_pytest_was_interrupted(tmp_path):
    record = decide(make_run(tmp_path, test_exit=2))
    assert any("did not finish normally" in r for r in record["reasons"])


def test_fails_when_the_artifact_changed_after_testing(tmp_path):
    run = make_run(tmp_path)
    with open(run.artifact, "ab") as fh:
        fh.write(b"one more byte")
    record = decide(run)
    assert record["decision"] == "fail"
    assert any("differs from the built one" in r for r in record["reasons"])


def test_require_pass_refuses_a_swapped_artifact(tmp_path):
    run = make_run(tmp_path)
    decide(run)
    with open(run.artifact, "wb") as fh:
        fh.write(b"another image")
    with pytest.raises(GoldenError, match="the artifact is"):
        require_pass(run.path("gate.json"), run.artifact)


def test_fails_when_not_scanned_or_the_scan_failed(tmp_path):
    record = decide(make_run(tmp_path / "a", scan=None))
    assert any("not scanned" in r for r in record["reasons"])
    record = decide(make_run(tmp_path / "b", scan="fail"))
    assert any(r.startswith("vulnerability scan: CVE-2026-0001") for r in record["reasons"])


@pytest.mark.parametrize("missing,reason", [("junit-reboot.xml", "the candidate back after a reboot"),
                                            ("junit-hygiene.xml", "hygiene, before boot")])
def test_fails_without_the_hygiene_or_reboot_results(tmp_path, missing, reason):
    run = make_run(tmp_path)
    os.unlink(run.path(missing))
    record = decide(run)
    assert record["decision"] == "fail" and any(missing in r and reason in r for r in record["reasons"])
