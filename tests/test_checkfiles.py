"""Bad check files and baselines stop collection with the file, line and reason (no VM needed)."""

import os
import subprocess
import sys

import pytest

from .conftest import ROOT

BASELINE = open(os.path.join(ROOT, "cis_checks", "baseline.yaml")).read()


def collect(tmp_path, files, baseline=BASELINE):
    checks = tmp_path / "cis_checks"
    checks.mkdir()
    for name, text in files.items():
        (checks / name).write_text(text)
    (tmp_path / "baseline.yaml").write_text(baseline)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(checks), "--collect-only", "-q", "-p",
                           "pipeline.checks.plugin", "-p", "no:cacheprovider", f"--baseline={tmp_path / 'baseline.yaml'}"],
                          cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return proc.returncode, proc.stdout + proc.stderr


def test_a_good_file_collects(tmp_path):
    code, out = collect(tmp_path, {"5.1-ssh.yaml": 'checks:\n  - {id: "5.1.20", violate: sshd_option PermitRootLogin yes}\n'})
    assert code == 0 and "1 test collected" in out, out


@pytest.mark.parametrize("text,where,reason", [
    ('checks:\n  - {id: "9.9.9", violate: "true"}\n', "5.1-ssh.yaml:2", "unknown CIS id '9.9.9'"),
    ('checks:\n  - {id: "5.1.20"}\n', "5.1-ssh.yaml:2", "checks[0].violate: is required"),
    ('checks:\n  - {id: "5.1.20", violate: "  "}\n', "5.1-ssh.yaml:2", "must be a non-empty shell script"),
    ('checks:\n  - {id: "1.2.1.1", violate: "true"}\n', "5.1-ssh.yaml:2", "manual recommendation"),
    ('checks:\n  - {id: "7.2.5", violate: "true"}\n', "5.1-ssh.yaml:2", "no expected values for 7.2.5"),
    ('checks:\n  - {id: "5.1.20", violate: x, colour: red}\n', "5.1-ssh.yaml:2", "checks[0].colour: unknown field"),
    ('checks:\n  - {id: 5.1, violate: x}\n', "5.1-ssh.yaml:2", "checks[0].id: must be a string, not float"),
    ('checks:\n  - {id: "5.1.20", violate: x\n', "5.1-ssh.yaml:3", "malformed YAML"),
])
def test_bad_rows(tmp_path, text, where, reason):
    code, out = collect(tmp_path, {"5.1-ssh.yaml": text})
    assert code != 0 and where in out and reason in out, out


def test_duplicate_ids_across_files(tmp_path):
    row = 'checks:\n  - {id: "5.1.20", violate: sshd_option PermitRootLogin yes}\n'
    code, out = collect(tmp_path, {"5.1-a.yaml": row, "5.1-b.yaml": row})
    assert code != 0 and "duplicate check for CIS 5.1.20: also defined at" in out, out


@pytest.mark.parametrize("old,new,reason", [
    ('"5.1.16": {sshd: {maxauthtries: {at_most: 4}}}', '"5.1.16": {sshd: {maxauthtries: {at_most: four}}}',
     "controls.5.1.16.sshd: maxauthtries: at_most needs an integer"),
    ('"5.1.16": {sshd: {maxauthtries: {at_most: 4}}}', '"5.1.99": {sshd: {maxauthtries: 4}}', "unknown CIS id '5.1.99'"),
    ('"7.1.9": {files:', '"7.1.9": {filez:', "controls.7.1.9.filez: unknown check kind"),
    ("general-purpose: {level: 1,", "general-purpose: {level: one,", "roles.general-purpose.level: must be an integer"),
])
def test_bad_baseline_values(tmp_path, old, new, reason):
    assert old in BASELINE
    code, out = collect(tmp_path, {}, BASELINE.replace(old, new))
    assert code != 0 and "baseline.yaml:" in out and reason in out, out
