"""The hardening plan from the baseline, and pinning an earlier hardening version (rollback)."""

import os
import subprocess

import pytest

from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.image.hardening import (
    SCRIPT,
    plan_rows,
    resolve_script,
    script_version,
    write_plan,
)


def test_plan_rows_carry_targets_not_operators():
    rows = plan_rows(Baseline.load(), "general-purpose", 1)
    assert ("5.1.16", "sshd", "maxauthtries", "4") in rows
    assert ("3.3.1", "sysctl", "net.ipv4.ip_forward", "0") in rows
    assert ("5.4.1.1", "config", "login_defs", "PASS_MAX_DAYS", "365") in rows
    assert all(r[0] != "1.1.1.6" for r in rows)          # Level 2 only: not in a Level 1 plan


def test_skipped_controls_are_recorded_not_applied():
    rows = plan_rows(Baseline.load(), "general-purpose", 1, skipped={"5.1.20": "EXC-7"})
    assert ("5.1.20", "skip", "EXC-7") in rows
    assert not any(r[0] == "5.1.20" and r[1] != "skip" for r in rows)


def test_write_plan_is_tab_separated(tmp_path):
    write_plan(tmp_path, [("1.5.1", "sysctl", "kernel.randomize_va_space", "2")], {"role": "r", "level": 1})
    assert (tmp_path / "plan.tsv").read_text() == "1.5.1\tsysctl\tkernel.randomize_va_space\t2\n"
    assert "GOLDEN_ROLE='r'" in (tmp_path / "plan-meta.env").read_text()


def test_the_script_states_its_version():
    assert script_version() == script_version(SCRIPT)


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@t"))


def test_pinning_a_released_version_takes_it_from_its_git_tag(tmp_path):
    repo = tmp_path / "repo"
    script = repo / "packer" / "scripts" / "hardening-cis.sh"
    script.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q", str(repo))
    script.write_text('#!/bin/bash\nHARDENING_VERSION="1.0.0"\necho old\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hardening 1.0.0")
    git(repo, "tag", "hardening-v1.0.0")
    script.write_text('#!/bin/bash\nHARDENING_VERSION="1.1.0"\necho new\n')
    git(repo, "commit", "-qam", "hardening 1.1.0")
    assert resolve_script("current", tmp_path / "w", repo=str(repo)) == (str(script), "1.1.0")
    path, version = resolve_script("1.0.0", tmp_path / "w", repo=str(repo))
    assert version == "1.0.0" and "echo old" in open(path).read()
    with pytest.raises(GoldenError, match="hardening version 0.9.0 is not released: no git tag hardening-v0.9.0"):
        resolve_script("0.9.0", tmp_path / "w", repo=str(repo))
