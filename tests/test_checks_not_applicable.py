"""A mount-option check on a mount point that is not a separate mount is not applicable: skipped
with "not applicable: ..." and the JUnit property outcome=not-applicable, never reported as passed.
Run for real: pytest with the plugin, against this machine through testinfra's local backend."""

import os
import subprocess
import sys

import pytest

from pipeline.checks.facts import Facts
from pipeline.checks.kinds import KINDS, NotApplicable

from .conftest import ROOT
from .test_exceptions import junit_cases

BASELINE = open(os.path.join(ROOT, "cis_checks", "baseline.yaml")).read()
NO_MOUNT = "/golden-no-such-mount"
# Three option checks, whatever this machine mounts: on /, with an option every mount has, with one
# no mount has, and on a mount point that does not exist.
VALUES = {"1.1.2.2.2": "{mounts: {/: {options: [rw]}}}",
          "1.1.2.2.3": "{mounts: {/: {options: [golden-no-such-option]}}}",
          "1.1.2.3.2": f"{{mounts: {{{NO_MOUNT}: {{options: [nodev]}}}}}}"}


def run_checks(tmp_path):
    baseline = BASELINE
    for cis_id, value in VALUES.items():
        start = baseline.index(f'  "{cis_id}": ')
        end = baseline.index("\n", start)
        baseline = baseline[:start] + f'  "{cis_id}": {value}' + baseline[end:]
    (tmp_path / "baseline.yaml").write_text(baseline)
    checks = tmp_path / "cis_checks"
    checks.mkdir()
    (checks / "1.1.2-mounts.yaml").write_text("checks:\n" + "".join(
        f'  - {{id: "{cis_id}", violate: mount_without / nodev}}\n' for cis_id in VALUES))
    junit = tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(checks), "-p", "pipeline.checks.plugin",
                           "-p", "no:cacheprovider", "--hosts=local://", f"--baseline={tmp_path / 'baseline.yaml'}",
                           f"--controls={','.join(VALUES)}", f"--junitxml={junit}", "-o", "junit_family=xunit1",
                           "-rs", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return proc, junit_cases(junit)


@pytest.mark.skipif(os.geteuid() != 0, reason="the fact collector runs as root, as on the candidate")
def test_an_option_check_on_a_missing_mount_is_not_applicable_in_the_junit(tmp_path):
    proc, cases = run_checks(tmp_path)
    out = proc.stdout + proc.stderr
    assert cases["1.1.2.2.2"][0] == "passed", out
    assert cases["1.1.2.2.3"][0] == "failure" and "without golden-no-such-option" in cases["1.1.2.2.3"][2].find(
        "failure").get("message"), out
    status, props, case = cases["1.1.2.3.2"]
    assert status == "skipped" and props["outcome"] == "not-applicable", out
    assert case.find("skipped").get("message").startswith(f"not applicable: {NO_MOUNT} is not a separate mount")
    assert "outcome" not in cases["1.1.2.2.2"][1] and "outcome" not in cases["1.1.2.2.3"][1]
    assert proc.returncode == 1, out


def facts_with_mounts(*targets):
    rows = ",".join(f'{{"target": "{t}", "source": "/dev/vda1", "fstype": "ext4", "options": "rw"}}' for t in targets)
    return Facts({"mounts": f'{{"filesystems": [{rows}]}}', "fstab": "", "unit_files": "basic.target static"})


def test_only_what_was_asked_of_a_missing_mount_is_not_applicable():
    mounts = KINDS["mounts"]
    with pytest.raises(NotApplicable, match="/home is not a separate mount"):
        mounts.evaluate({"/home": {"options": ["nodev"]}}, facts_with_mounts("/"))
    # A separate mount that is missing is a finding, not "not applicable".
    assert mounts.evaluate({"/home": {"separate": True}}, facts_with_mounts("/")) == ["/home is not a separate mount"]
    assert mounts.evaluate({"/home": {"separate": True, "options": ["nodev"]}}, facts_with_mounts("/")) == [
        "/home is not a separate mount"]
    # Where one of the targets exists, it is judged and the missing one is left out, as CIS says.
    assert mounts.evaluate({"/home": {"options": ["nodev"]}, "/": {"options": ["nodev"]}},
                           facts_with_mounts("/")) == ["/ is mounted without nodev (options: rw)"]
