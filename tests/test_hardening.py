"""The hardening plan from the baseline, and pinning an earlier hardening version (rollback): in made-up
repositories, and for every release packer/scripts/hardening-releases.tsv lists, from this repository's
own history, with what each release reads of the plan checked against what today's plan provides."""

import ast
import glob
import os
import re
import shutil
import subprocess

import pytest

from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.image import hardening
from pipeline.image.hardening import (
    SCRIPT,
    plan_rows,
    resolve_script,
    script_version,
    stage_library,
    table_rows,
    write_plan,
)
from pipeline.paths import IMAGES_DIR, ROOT


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


# ---------------------------------------------------------------- released versions, from the real history

HISTORY_MISSING = ("this checkout has no full git history of packer/scripts/hardening-cis.sh (a shallow clone, or "
                   "no .git): the released hardening versions are extracted from it, so the rollback path cannot "
                   "be proven. Clone main with its history (no --depth), or run `git fetch --unshallow`")


def repo_git(*args, repo=ROOT):
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}"
    return proc.stdout


def release_files(commit):
    """{path: text} of a release: its driver and hardening/ directory as the commit holds them."""
    paths = repo_git("ls-tree", "-r", "--name-only", commit, "--", os.path.relpath(SCRIPT, ROOT),
                     os.path.relpath(hardening.LIBRARY, ROOT)).decode().split()
    return {p: repo_git("show", f"{commit}:{p}").decode() for p in paths}


@pytest.fixture(scope="module")
def history():
    """{version: the first commit whose hardening-cis.sh states it}, oldest first, from this repository."""
    shallow = subprocess.run(["git", "-C", ROOT, "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
    assert shallow.returncode == 0, f"{HISTORY_MISSING} ({shallow.stderr.strip()})"
    if shallow.stdout.strip() == "true":       # the checkout lacks the data, not the code its behaviour
        pytest.skip(HISTORY_MISSING)
    rel = os.path.relpath(SCRIPT, ROOT)
    first = {}
    for commit in repo_git("log", "--reverse", "--format=%H", "--", rel).decode().split():
        m = hardening._VERSION_RE.search(repo_git("show", f"{commit}:{rel}").decode())
        if m:
            first.setdefault(m.group(1), commit)
    assert len(first) > 1, f"{HISTORY_MISSING} (versions found: {first})"
    return first


RELEASED = hardening.released_versions()


def test_the_release_list_names_the_commit_where_each_version_first_appeared(history):
    assert RELEASED, f"{hardening.RELEASES} lists no released hardening version: there is nothing to roll back to"
    wrong = {v: (c, history.get(v)) for v, c in RELEASED.items() if history.get(v) != c}
    assert not wrong, f"listed commit, first commit stating the version: {wrong}"
    # The spec's example of pinning names a release.
    example = re.search(r"released version, e\.g\. (\d+\.\d+\.\d+)", open(os.path.join(IMAGES_DIR, "golden-linux.yaml")).read())
    assert example and example.group(1) in RELEASED and example.group(1) != script_version(), example


@pytest.fixture(scope="module")
def moved_on(tmp_path_factory, history):
    """A clone sharing this repository's history whose working tree has moved on to hardening 99.0.0 (and
    has no tags), so that every listed release, the current one too, resolves from the list and the history."""
    clone = tmp_path_factory.mktemp("moved-on") / "repo"
    repo_git("clone", "-q", "--shared", "--no-checkout", "--no-tags", ROOT, str(clone))
    for tag in repo_git("tag", "-l", repo=clone).decode().split():
        repo_git("tag", "-d", tag, repo=clone)
    script = clone / os.path.relpath(SCRIPT, ROOT)
    script.parent.mkdir(parents=True)
    script.write_text(open(SCRIPT).read().replace(f'HARDENING_VERSION="{script_version()}"', 'HARDENING_VERSION="99.0.0"'))
    shutil.copy(hardening.RELEASES, clone / os.path.relpath(hardening.RELEASES, ROOT))
    return clone


@pytest.mark.parametrize("version", sorted(RELEASED))
def test_every_release_resolves_and_stages_from_the_history(version, moved_on, tmp_path):
    commit = RELEASED[version]
    expected = release_files(commit)
    path, resolved = resolve_script(version, tmp_path / "w", repo=str(moved_on))
    assert resolved == version == script_version(path)
    provision = tmp_path / "provision"
    stage_library(path, provision)
    lib = os.path.relpath(hardening.LIBRARY, ROOT)
    released = {os.path.relpath(p, lib): text for p, text in expected.items() if p.startswith(lib + os.sep)}
    staged_dir = provision / "hardening"
    staged = {str(f.relative_to(staged_dir)): f.read_text() for f in staged_dir.rglob("*") if f.is_file()}
    assert staged == released and bool(released) == (tuple(map(int, version.split("."))) >= (1, 2, 0))  # hardening/ since 1.2.0
    assert open(path).read() == expected[os.path.relpath(SCRIPT, ROOT)]
    if version != script_version():     # this repository resolves it the same way (no tags needed)
        here, _ = resolve_script(version, tmp_path / "here")
        assert open(here).read() == open(path).read()


def test_a_release_whose_commit_the_clone_lacks_is_refused_with_the_reason(moved_on, tmp_path):
    listing = moved_on / os.path.relpath(hardening.RELEASES, ROOT)
    original = listing.read_text()
    try:
        listing.write_text(original + "9.8.7\t" + "0" * 40 + "\n")
        with pytest.raises(GoldenError, match="names commit 0{40}, which this clone does not hold"):
            resolve_script("9.8.7", tmp_path / "w", repo=str(moved_on))
        listing.write_text(original + "1.1.1\t" + RELEASED["1.2.0"] + "\n")
        with pytest.raises(GoldenError, match="version 1.1.1 is listed twice"):
            resolve_script("1.1.1", tmp_path / "w", repo=str(moved_on))
        listing.write_text(original + "1.1.0\t" + RELEASED["1.2.0"] + "\n")
        with pytest.raises(GoldenError, match=r"commit \w+ \(packer/scripts/hardening-releases.tsv\) holds hardening "
                                              r"version 1.2.0, not 1.1.0"):
            resolve_script("1.1.0", tmp_path / "w", repo=str(moved_on))
    finally:
        listing.write_text(original)


# What a release reads of the plan, read from its code. Releases before 1.2.0 cut rows by position:
# `while IFS=$'\t' read -r id kind A B ...; done < <(rows KIND)` (its variable names, as they name the
# fields, with the two it named otherwise) and awk's $N; from 1.2.0 they bind plan-columns.tsv by name.
POSITIONAL_NAMES = {("files", "pattern"): "path", ("services_not_in_use", "pkg"): "package"}
# The fields 1.1.1 cuts with awk by number, and what it takes each to be.
POSITIONAL_FIELDS = {("params", 3): "key", ("params", 4): "value", ("config", 4): "key", ("config", 5): "value",
                     ("mounts", 3): "target", ("mounts", 4): "options", ("mounts", 5): "separate", ("skip", 3): "reason"}
AWK = re.compile(r"""awk((?:\s+-F'[^']*'|\s+-F\S+|\s+-v\s+\w+=(?:"[^"]*"|\S+))*)\s+'([^']*)'([^\n]*)""")


def strip_comments(text):
    return "\n".join(re.sub(r"(^|\s)#\s.*$", "", line) for line in text.splitlines() if not line.lstrip().startswith("#"))


def plan_reads(files):
    """What a release's code reads of the plan: kinds, positional reads, columns by name, meta, params..."""
    code = "\n".join(strip_comments(t) for t in files.values())
    reads = {"kinds": set(re.findall(r"\b(?:rows|each) ([a-z_]+)\b", code)), "positional": [], "fields": set(),
             "named": set(), "by_name": "plan-columns.tsv" in code,
             "meta": set(re.findall(r"\$\{?(GOLDEN_[A-Z0-9_]+)", code)) - {"GOLDEN_PROVISION"}
             - set(re.findall(r"\b(GOLDEN_[A-Z0-9_]+)=", code)),
             "params": set(re.findall(r"\bparam ([0-9][0-9.]*) ([a-z_]+)\b", code)),
             "sources": None, "pam_layout": None}
    lines = code.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)while IFS=\$'\\t' read -r id kind((?: \w+)*); do", line)
        if m:
            done = next(l for l in lines[i + 1:] if l.startswith(m.group(1) + "done"))
            source = re.search(r"done < <\(rows (\w+)\)\s*$", done)
            if source:
                kind = source.group(1)
                reads["positional"].append((kind, tuple(POSITIONAL_NAMES.get((kind, n), n) for n in m.group(2).split())))
    for m in AWK.finditer(code):
        program, after = m.group(2), m.group(3)
        before = code[code.rfind("\n", 0, m.start()) + 1:m.start()]
        piped = re.findall(r"\brows (\w+) \|", before)
        if not ('"$PLAN"' in after or piped):
            continue
        kinds = set(piped) | set(re.findall(r'\$(?:2|col\["kind"\]) == "(\w+)"', program))
        reads["kinds"] |= kinds
        for n in {int(n) for n in re.findall(r"\$(\d+)", program)} - {0, 1, 2}:
            reads["fields"] |= {(k, n) for k in kinds} or {("?", n)}
        for name in set(re.findall(r'col\["(\w+)"\]', program)) - {"id", "kind"}:
            reads["named"] |= {(k, name) for k in kinds}
    if "config_writer" not in reads["kinds"]:     # the release writes configuration sources itself
        reads["sources"] = set(re.findall(r"^\s+([a-z_]+)\) (?:dropin_kv|set_kv) ", code, re.M))
    if "pam_profile" not in reads["kinds"]:       # ... and lays out the PAM stacks from its own table
        layout = re.search(r"<<'LAYOUT'\n(.*?)\nLAYOUT\n", "\n".join(files.values()), re.S)
        reads["pam_layout"] = {(f[2].lower(), f[4], f[5]) for f in
                               (line.split("|") for line in layout.group(1).splitlines())} if layout else set()
    return reads


def release_reads(commit):
    """plan_reads of a release, with the PLAN_COLUMNS its own commit's plan writer named (the columns
    a release that binds them by name may read; none for a release that reads by position)."""
    reads = plan_reads(release_files(commit))
    reads["known_columns"] = None
    if reads["by_name"]:
        source = repo_git("show", f"{commit}:pipeline/image/hardening.py").decode()   # its place since 1.2.0
        assigned = next(n for n in ast.parse(source).body
                        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "PLAN_COLUMNS")
        reads["known_columns"] = ast.literal_eval(assigned.value)
    return reads


@pytest.fixture(scope="module")
def todays_plans(tmp_path_factory):
    """What today's pipeline writes for the hardening of every image spec: the rows, columns and meta."""
    from pipeline.image.build import prepare_provision
    from pipeline.image.spec import ImageSpec

    baseline = Baseline.load()
    plans = {"rows": [], "meta": set(), "columns": {}, "baseline": baseline}
    for path in sorted(glob.glob(os.path.join(IMAGES_DIR, "*.yaml"))):
        spec = ImageSpec.load(path, baseline)
        directory = tmp_path_factory.mktemp(spec.name)
        prepare_provision(spec, baseline, str(directory), "golden-test-1")
        plans["rows"] += [tuple(line.split("\t")) for line in (directory / "plan.tsv").read_text().splitlines()]
        plans["meta"] |= {line.split("=", 1)[0] for line in (directory / "plan-meta.env").read_text().splitlines()}
        plans["columns"] = {f[0]: tuple(f[3:]) for f in (line.split("\t")
                            for line in (directory / "plan-columns.tsv").read_text().splitlines())}
    return plans


def incompatibilities(reads, plans):
    """What a release reads that today's plan does not provide, or provides that the release cannot apply."""
    columns, problems = plans["columns"], []
    data_kinds = {r[1] for r in plans["rows"] if r[0] != hardening.EMPTY}
    problems += [f"reads rows of kind {k}, which the plan no longer has" for k in sorted(reads["kinds"] - set(columns))]
    problems += [f"reads no rows of kind {k}: it would leave those values unapplied" for k in sorted(data_kinds - reads["kinds"])]
    for kind, names in reads["positional"]:
        if kind in columns and names != columns[kind]:
            problems.append(f"reads {kind} rows by position as {names}; the plan's columns are {columns[kind]}")
    for kind, n in sorted(reads["fields"]):
        meant = POSITIONAL_FIELDS.get((kind, n))
        if meant is None:
            problems.append(f"cuts field ${n} of {kind} rows by position: say what it takes it to be in POSITIONAL_FIELDS")
        elif kind in columns and columns[kind][n - 3:n - 2] != (meant,):
            problems.append(f"takes field ${n} of {kind} rows to be {meant}; the plan's columns are {columns[kind]}")
    if reads["positional"] or reads["fields"]:
        if hardening.EMPTY != "-":
            problems.append(f"reads an empty field as '-'; the plan writes {hardening.EMPTY!r}")
    if reads["by_name"]:
        known = reads["known_columns"]
        named = set(reads["named"]) | {(k, c) for k in reads["kinds"] for c in known.get(k, ())}
        problems += [f"binds column {c} of {k} rows by name; the plan's columns are {columns.get(k)}"
                     for k, c in sorted(named) if c not in columns.get(k, ())]
    problems += [f"reads ${m} from plan-meta.env, which the plan no longer writes"
                 for m in sorted(reads["meta"] - plans["meta"])]
    baseline = plans["baseline"]
    problems += [f"reads `param {i} {k}`, which the baseline no longer has"
                 for i, k in sorted(reads["params"])
                 if k not in ((baseline.controls[i].values.get("params") or {}) if i in baseline.controls else {})]
    if reads["sources"] is not None:
        problems += [f"has no writer for configuration source {s}" for s in
                     sorted({r[2] for r in plans["rows"] if r[1] == "config" and r[0] != hardening.EMPTY} - reads["sources"])]
    if reads["pam_layout"] is not None:
        def mode(args):
            return next((m for m in ("preauth", "authfail") if f" {m} " in f" {args} "), "")
        needed = {(r[3], r[4], mode(r[5])) for r in plans["rows"] if r[1] == "pam" and r[6] == "present"}
        problems += [f"lays out no PAM line for {n}" for n in sorted(needed - reads["pam_layout"])]
    return problems


@pytest.mark.parametrize("version", sorted(RELEASED))
def test_what_each_release_reads_of_the_plan_is_what_todays_plan_provides(version, history, todays_plans):
    reads = release_reads(RELEASED[version])
    assert reads["kinds"] and (reads["positional"] or reads["known_columns"]), reads     # its reading code was found
    assert incompatibilities(reads, todays_plans) == []


def test_the_compatibility_check_finds_what_an_unlisted_release_could_not_apply(history, todays_plans):
    first = incompatibilities(release_reads(history["1.0.0"]), todays_plans)
    assert "reads rows of kind login_defs, which the plan no longer has" in first
    assert "reads no rows of kind pam: it would leave those values unapplied" in first
    early = incompatibilities(release_reads(history["1.1.0"]), todays_plans)
    assert "reads no rows of kind mounts: it would leave those values unapplied" in early
    moved = dict(todays_plans, columns=dict(todays_plans["columns"], files=("path", "owner", "mode", "groups", "absent"),
                                             params=("name", "value")))
    assert set(incompatibilities(release_reads(RELEASED["1.1.1"]), moved)) == {
        "reads files rows by position as ('path', 'mode', 'owner', 'groups', 'absent'); the plan's columns are "
        "('path', 'owner', 'mode', 'groups', 'absent')",
        "takes field $3 of params rows to be key; the plan's columns are ('name', 'value')"}
    assert set(incompatibilities(release_reads(RELEASED["1.2.0"]), moved)) == {
        "binds column key of params rows by name; the plan's columns are ('name', 'value')"}
