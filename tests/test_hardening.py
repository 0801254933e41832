"""The hardening plan from the baseline, and pinning an earlier hardening version (rollback)."""

import os
import shutil
import subprocess

import pytest

from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.image.hardening import (
    SCRIPT,
    plan_rows,
    resolve_script,
    script_version,
    stage_library,
    table_rows,
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


def test_write_plan_is_tab_separated_with_named_columns(tmp_path):
    write_plan(tmp_path, [("1.5.1", "sysctl", "kernel.randomize_va_space", "2")], {"role": "r s", "level": 1})
    lines = (tmp_path / "plan.tsv").read_text().splitlines()
    assert lines[0] == "1.5.1\tsysctl\tkernel.randomize_va_space\t2"
    assert lines[1:] == ["\t".join(f or "-" for f in row) for row in table_rows()]
    assert "sysctl\tid\tkind\tkey\tvalue\n" in (tmp_path / "plan-columns.tsv").read_text()
    assert "GOLDEN_ROLE='r s'\n" in (tmp_path / "plan-meta.env").read_text()


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


def test_rolling_back_takes_the_whole_hardening_directory_of_the_tag(tmp_path):
    """A split hardening (driver + hardening/) released at a tag is staged as the tag holds it, and an
    older single-file release still resolves, with no library staged for it."""
    repo = tmp_path / "repo"
    scripts = repo / "packer" / "scripts"
    scripts.mkdir(parents=True)
    git(tmp_path, "init", "-q", str(repo))
    (scripts / "hardening-cis.sh").write_text('#!/bin/bash\nHARDENING_VERSION="1.1.1"\necho single\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hardening 1.1.1")
    git(repo, "tag", "hardening-v1.1.1")
    shutil.copy(SCRIPT, scripts / "hardening-cis.sh")
    shutil.copytree(os.path.join(os.path.dirname(SCRIPT), "hardening"), scripts / "hardening")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hardening split")
    git(repo, "tag", f"hardening-v{script_version()}")
    released = (scripts / "hardening" / "appliers" / "sysctl.sh").read_text()
    (scripts / "hardening-cis.sh").write_text((scripts / "hardening-cis.sh").read_text().replace(
        f'HARDENING_VERSION="{script_version()}"', 'HARDENING_VERSION="9.0.0"'))
    (scripts / "hardening" / "appliers" / "sysctl.sh").write_text("# changed after the release\n")
    git(repo, "commit", "-qam", "hardening 9.0.0")

    path, version = resolve_script(script_version(), tmp_path / "w", repo=str(repo))
    provision = tmp_path / "provision"
    stage_library(path, provision)
    assert version == script_version() and open(path).read() == open(SCRIPT).read()
    assert (provision / "hardening" / "appliers" / "sysctl.sh").read_text() == released
    assert sorted(p.name for p in (provision / "hardening" / "cis").iterdir()) == \
        sorted(os.listdir(os.path.join(os.path.dirname(SCRIPT), "hardening", "cis")))

    path, version = resolve_script("1.1.1", tmp_path / "w", repo=str(repo))
    stage_library(path, provision)
    assert version == "1.1.1" and "echo single" in open(path).read() and not (provision / "hardening").exists()


def test_the_baseline_docstring_shows_the_value_the_plan_applies():
    import ast
    import re

    from pipeline.checks import baseline as module
    shown = re.search(r'bl\.values\("([\d.]+)"\)\s+# (.+)', module.__doc__)
    cis_id, value = shown.group(1), ast.literal_eval(shown.group(2))
    assert Baseline.load().values(cis_id) == value
    assert (cis_id, "sshd", "maxauthtries", "4") in plan_rows(Baseline.load(), "general-purpose", 1)
