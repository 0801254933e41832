"""`golden impact` between two versions of cis_checks/ and images/ (a git ref and an edited copy)."""

import datetime as dt
import json
import shutil

import pytest

from pipeline.checks.impact import impact, markdown
from pipeline.cli import main
from pipeline.errors import GoldenError

from .conftest import ROOT

EXCEPTION = """exceptions:
  - {id: EXC-9, controls: ["5.1.20"], scope: {roles: [general-purpose]}, why: migration, owner: ops@example.com,
     expires: 2026-12-05}
"""


@pytest.fixture
def edited(tmp_path):
    for part in ("cis_checks", "images", "feeds"):
        shutil.copytree(f"{ROOT}/{part}", tmp_path / part, ignore=shutil.ignore_patterns("drafts", "__pycache__"))
    baseline = tmp_path / "cis_checks" / "baseline.yaml"
    text = baseline.read_text()
    text = text.replace('"5.1.16": {sshd: {maxauthtries: {at_most: 4}}}', '"5.1.16": {sshd: {maxauthtries: {at_most: 3}}}')
    text = text.replace('"3.3.10": {sysctl: {net.ipv4.tcp_syncookies: 1}}',
                        '"3.3.10": {adopted: false, why: "SYN floods are absorbed upstream"}')
    baseline.write_text(text)
    rows = tmp_path / "cis_checks" / "3.3-network-parameters.yaml"
    rows.write_text("\n".join(l for l in rows.read_text().splitlines() if '"3.3.10"' not in l) + "\n")
    (tmp_path / "cis_checks" / "exceptions").mkdir(exist_ok=True)
    (tmp_path / "cis_checks" / "exceptions" / "ops.yaml").write_text(EXCEPTION)
    return tmp_path


def test_nothing_changed_between_a_ref_and_itself():
    report = impact("HEAD", "HEAD", today=dt.date(2026, 11, 26))
    assert report["controls"] == [] and report["exceptions"] == []


def test_changes_with_who_is_affected(edited):
    report = impact(ROOT, str(edited), today=dt.date(2026, 11, 26))
    by_id = {c["id"]: c for c in report["controls"]}
    assert set(by_id) == {"5.1.16", "3.3.10"}
    assert by_id["5.1.16"]["change"] == "changed" and by_id["5.1.16"]["fields"] == ["values"]
    assert by_id["5.1.16"]["services"] == ["sshd"] and "linux" in by_id["5.1.16"]["images"]
    assert set(by_id["5.1.16"]["roles"]) == {"general-purpose", "bastion", "admin", "control-plane", "web"}
    assert by_id["3.3.10"]["change"] == "removed" and "kernel" in by_id["3.3.10"]["services"]
    (exc,) = report["exceptions"]
    assert exc["id"] == "EXC-9" and exc["change"] == "added" and exc["expiring"] and exc["images"] == ["linux"]
    md = markdown(report)
    assert "| 5.1.16 Ensure sshd MaxAuthTries is configured | changed |" in md
    assert ("| EXC-9 | added (expiring) | 5.1.20 | roles: general-purpose | linux | ops@example.com | "
            "2026-12-05 (+9 d) |") in md


def test_cli_json(edited, capsys):
    assert main(["impact", "--from", ROOT, "--to", str(edited), "--json", "--as-of", "2026-11-26"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["controls_changed"] == 1 and report["summary"]["images_affected"] == ["bastion", "linux", "web"]


def test_unknown_ref():
    with pytest.raises(GoldenError, match="neither a directory with cis_checks/ nor a git ref"):
        impact("no-such-ref", "HEAD")
