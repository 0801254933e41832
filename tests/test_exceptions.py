"""Exceptions: validation (file, line, reason), scope, expiry on a fixed UTC clock, review, waivers in
the JUnit and the gate."""

import datetime as dt
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pipeline.checks import exceptions
from pipeline.checks.baseline import Baseline
from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.evidence.gate import decide
from pipeline.image.spec import ImageSpec
from pipeline.preflight import skipped_controls

from .conftest import ROOT
from .runfixtures import PASSING_JUNIT, make_run

TODAY = dt.date(2026, 11, 26)
IMAGES = {"linux": "general-purpose", "jump": "bastion"}
GOOD = """\
exceptions:
  - id: EXC-1
    controls: ["1.1.2.3.1", "1.1.2.4.*"]
    scope: {roles: [bastion]}
    why: Cloud images have a single root filesystem.
    owner: platform@example.com
    approved_by: ciso@example.com
    ticket: SEC-1
    expires: 2027-02-01
  - id: EXC-2
    controls: ["5.1.20"]
    scope: {images: [linux]}
    why: Break-glass root login while the vault migration runs.
    owner: sec@example.com
    expires: 2026-12-10
    mode: skip
"""


def load(tmp_path, text, today=TODAY, name="team.yaml"):
    (tmp_path / name).write_text(text)
    return exceptions.load([str(tmp_path)], Baseline.load(), IMAGES, today=today)


def test_valid_file_and_scopes(tmp_path):
    excs = load(tmp_path, GOOD)
    assert [e.id for e in excs] == ["EXC-1", "EXC-2"]
    assert exceptions.covering(excs, "1.1.2.4.1", "bastion", "jump", TODAY).id == "EXC-1"
    assert exceptions.covering(excs, "1.1.2.4.1", "general-purpose", "linux", TODAY) is None
    assert exceptions.covering(excs, "5.1.20", "general-purpose", "linux", TODAY).mode == "skip"
    assert exceptions.covering(excs, "5.1.20", "general-purpose", "other", TODAY) is None


def test_an_expired_exception_covers_nothing(tmp_path):
    excs = load(tmp_path, GOOD)
    assert exceptions.covering(excs, "5.1.20", "general-purpose", "linux", dt.date(2026, 12, 10)).id == "EXC-2"
    assert exceptions.covering(excs, "5.1.20", "general-purpose", "linux", dt.date(2026, 12, 11)) is None
    assert exceptions.matching(excs, "5.1.20", "general-purpose", "linux").id == "EXC-2"   # waivers report it


EXPIRED = """\
exceptions:
  - id: EXC-OLD
    controls: ["5.1.20"]
    scope: {images: [linux]}
    why: Break-glass root login while the vault migration runs.
    owner: sec@example.com
    expires: 2020-01-31
"""


def test_golden_run_refuses_an_expired_exception_in_scope_before_any_run_directory(tmp_path, capsys):
    (tmp_path / "old.yaml").write_text(EXPIRED)
    dirs = [tmp_path / "runs", tmp_path / "store", tmp_path / "cache"]
    code = main(["run", "--exceptions", str(tmp_path / "old.yaml"), "--runs-dir", str(dirs[0]),
                 "--store", str(dirs[1]), "--cache", str(dirs[2])])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{tmp_path / 'old.yaml'}:2: expires: exception EXC-OLD (owner sec@example.com) expired on 2020-01-31" in err
    assert not any(d.exists() and any(d.iterdir()) for d in dirs)


def test_the_hardening_skips_nothing_for_an_expired_exception(tmp_path):
    spec = ImageSpec.load(os.path.join(ROOT, "images", "golden-linux.yaml"))
    excs = load(tmp_path, EXPIRED, today=dt.date(2020, 1, 1))
    assert skipped_controls(excs, spec, dt.date(2020, 1, 31)) == {"5.1.20": "EXC-OLD"}
    assert skipped_controls(excs, spec, dt.date(2020, 2, 1)) == {}


@pytest.mark.parametrize("old,new,line,field,reason", [
    ('"5.1.20"', '"5.1.99"', 11, "exceptions[1].controls[0]", "unknown CIS id '5.1.99'"),
    ("{roles: [bastion]}", "{roles: [dba]}", 4, "exceptions[0].scope.roles", "unknown role 'dba'"),
    ("{images: [linux]}", "{images: [nope]}", 12, "exceptions[1].scope.images", "unknown image 'nope'"),
    ("{roles: [bastion]}", "{}", 4, "exceptions[0].scope.roles", "must name roles and/or images"),
    ("    why: Cloud images have a single root filesystem.\n", "", None, "exceptions[0].why", "is required"),
    ("why: Cloud images have a single root filesystem.", 'why: "  "', 5, "exceptions[0].why", "must not be empty"),
    ("    owner: platform@example.com\n", "", None, "exceptions[0].owner", "is required"),
    ("    expires: 2027-02-01\n", "", None, "exceptions[0].expires", "is required"),
    ("expires: 2027-02-01", "expires: 2027-06-01", 9, "exceptions[0].expires", "the longest allowed is 180 days"),
    ("expires: 2027-02-01", "expires: someday", 9, "exceptions[0].expires", "must be a date YYYY-MM-DD"),
    ("mode: skip", "mode: ignore", 16, "exceptions[1].mode", "must be one of run, skip"),
    ("    ticket: SEC-1\n", "    tikcet: SEC-1\n", 8, "exceptions[0].tikcet", "unknown field"),
])
def test_invalid_exceptions_name_file_line_and_reason(tmp_path, old, new, line, field, reason):
    assert old in GOOD
    with pytest.raises(GoldenError) as err:
        load(tmp_path, GOOD.replace(old, new))
    e = err.value
    assert e.file.endswith("team.yaml") and e.field == field and reason in e.reason, str(e)
    if line:
        assert e.line == line, str(e)


@pytest.mark.parametrize("command", [["exceptions", "check"], ["run", "--exceptions"]])
def test_an_impossible_date_names_file_line_and_field(tmp_path, capsys, command):
    (tmp_path / "team.yaml").write_text(GOOD.replace("expires: 2027-02-01", "expires: 2027-02-30"))
    code = main([*command, str(tmp_path / "team.yaml"), "--runs-dir", str(tmp_path / "runs"),
                 "--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{tmp_path / 'team.yaml'}:9: exceptions[0].expires: must be a date YYYY-MM-DD, not '2027-02-30'" in err
    assert not (tmp_path / "runs").exists()


def test_an_impossible_as_of_day_is_bad_input(capsys):
    code = main(["exceptions", "check", "--as-of", "2027-02-30"])
    assert code == 2 and "--as-of: must be a date YYYY-MM-DD, not '2027-02-30'" in capsys.readouterr().err


def test_two_exceptions_for_one_control_and_scope(tmp_path):
    other = GOOD.replace("EXC-2", "EXC-3").replace('["5.1.20"]', '["1.1.2.4.1"]').replace(
        "{images: [linux]}", "{images: [jump]}")
    with pytest.raises(GoldenError, match="EXC-3 and EXC-1 .* both cover CIS 1.1.2.4.1"):
        load(tmp_path, other)
    disjoint = other.replace("{images: [jump]}", "{images: [linux]}")
    assert len(load(tmp_path, disjoint)) == 2          # another scope: allowed


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    with pytest.raises(GoldenError, match="duplicate exception id EXC-1"):
        load(tmp_path, GOOD.replace("1.1.2.3.1", "1.1.1.1").replace("1.1.2.4.*", "1.1.1.2").replace(
            "5.1.20", "5.1.19"), name="b.yaml")


def test_malformed_yaml(tmp_path):
    with pytest.raises(GoldenError, match="malformed YAML") as err:
        load(tmp_path, "exceptions:\n  - id: [EXC\n")
    assert err.value.line


@pytest.mark.parametrize("as_of,expired", [(dt.date(2026, 12, 10), False), (dt.date(2026, 12, 11), True)])
def test_expiry_is_inclusive_of_the_day_in_utc(tmp_path, as_of, expired):
    exc = load(tmp_path, GOOD)[1]
    assert exc.expired(as_of) is expired


def test_review_sorts_active_expiring_expired_and_stale(tmp_path):
    excs = load(tmp_path, GOOD)
    baseline = Baseline.load()
    r = exceptions.review(excs, baseline, dt.date(2026, 12, 1), IMAGES)
    assert [e["id"] for e in r["expiring"]] == ["EXC-2"] and [e["id"] for e in r["active"]] == ["EXC-1"]
    r = exceptions.review(excs, baseline, dt.date(2026, 12, 11), IMAGES, results={"5.1.20": "passed"})
    assert [e["id"] for e in r["expired"]] == ["EXC-2"]
    assert [e["id"] for e in r["stale"]] == ["EXC-2"] and "passed" in r["stale"][0]["stale_because"]


def test_an_exception_covering_no_adopted_control_is_stale(tmp_path):
    text = GOOD.replace('["1.1.2.3.1", "1.1.2.4.*"]', '["1.2.1.1"]')     # a manual recommendation
    r = exceptions.review(load(tmp_path, text), Baseline.load(), TODAY, IMAGES)
    assert "EXC-1" in [e["id"] for e in r["stale"]]


# --- waivers through pytest and the gate -------------------------------------------------------------

CONTROLS = '''
from pipeline.checks.authoring import control

@control("5.1.20", violate="true")
def test_root_login(): assert False, "sshd permitrootlogin is yes"

@control("5.1.19", violate="true")
def test_empty_passwords(): raise KeyError("the check crashed")

@control("5.1.21", violate="true")
def test_user_environment(): assert False, "expired waiver"

@control("5.1.22", violate="true")
def test_use_pam(): raise AssertionError("not run")
'''

WAIVERS = '''exceptions:
  - {id: EXC-A, controls: ["5.1.20", "5.1.19"], scope: {images: [linux]}, why: vault migration,
     owner: sec@example.com, ticket: SEC-9, expires: 2026-12-10}
  - {id: EXC-B, controls: ["5.1.21"], scope: {roles: [general-purpose]}, why: old, owner: ops@example.com,
     expires: 2026-11-01}
  - {id: EXC-C, controls: ["5.1.22"], scope: {roles: [general-purpose]}, why: pending, owner: ops@example.com,
     expires: 2026-12-31, mode: skip}
'''


def run_waived(tmp_path, as_of="2026-11-26"):
    (tmp_path / "cis_checks").mkdir()
    (tmp_path / "cis_checks" / "test_controls.py").write_text(CONTROLS)
    (tmp_path / "waivers.yaml").write_text(WAIVERS)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "cis_checks"), "-p", "pipeline.checks.plugin",
                           "-p", "no:cacheprovider", f"--exceptions={tmp_path / 'waivers.yaml'}", "--image-name=linux",
                           f"--as-of={as_of}", f"--junitxml={junit}", "-o", "junit_family=xunit1", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return proc, junit_cases(junit)


def junit_cases(junit):
    """{cis id: (passed|failure|error|skipped, {property: value}, testcase element)} of a JUnit file."""
    cases = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        status = next((t for t in ("failure", "error", "skipped") if case.find(t) is not None), "passed")
        cases[props["cis_id"]] = (status, props, case)
    return cases


def test_waived_failures_crashes_expiry_and_skip_in_the_junit(tmp_path):
    proc, cases = run_waived(tmp_path)
    status, props, case = cases["5.1.20"]
    assert status == "skipped" and props["outcome"] == "waived"
    assert props["waiver_id"] == "EXC-A" and props["waiver_owner"] == "sec@example.com"
    assert props["waiver_ticket"] == "SEC-9" and props["waiver_expires"] == "2026-12-10"
    assert "WAIVED by EXC-A" in case.find("skipped").get("message")
    assert cases["5.1.19"][0] == "failure" and "outcome" not in cases["5.1.19"][1]       # a crash is not waived
    assert cases["5.1.21"][0] == "failure" and cases["5.1.21"][1]["waiver_expired"] == "2026-11-01"
    assert cases["5.1.22"][0] == "skipped" and "waived (not run) by EXC-C" in cases["5.1.22"][2].find("skipped").get("message")
    assert proc.returncode == 1


def test_gate_counts_waivers_and_fails_once_they_expire(tmp_path):
    junit = PASSING_JUNIT.replace('skipped="0"', 'skipped="1"').replace(
        '<property name="level" value="1"/></properties>',
        '<property name="level" value="1"/><property name="outcome" value="waived"/>'
        '<property name="waiver_id" value="EXC-A"/></properties><skipped message="WAIVED by EXC-A"/>')
    run = make_run(tmp_path, junit=junit)
    import json
    json.dump({"attempt": run.attempt, "exceptions": [{"id": "EXC-A", "controls": ["5.1.20"], "why": "vault migration",
                               "owner": "sec@example.com", "approved_by": None, "ticket": "SEC-9",
                               "expires": "2026-12-10"}]}, open(run.path("exceptions.json"), "w"))
    noon = lambda d: dt.datetime.combine(d, dt.time(12), tzinfo=dt.timezone.utc)  # noqa: E731
    record = decide(run, now=noon(dt.date(2026, 12, 10)))
    assert record["decision"] == "pass" and record["counts"]["waived"] == 1
    assert record["waived"][0]["waiver"]["owner"] == "sec@example.com" and record["waived"][0]["cis_id"] == "5.1.20"
    record = decide(run, now=noon(dt.date(2026, 12, 11)))
    assert record["decision"] == "fail"
    assert any("EXC-A (owner sec@example.com) for CIS 5.1.20 expired on 2026-12-10" in r for r in record["reasons"])
    assert record["counts"]["failed"] == 1 and record["failures"][0]["cis_id"] == "5.1.20"
