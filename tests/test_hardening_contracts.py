"""The contracts between the Python plan and the shell hardening, named once and checked here:
every check kind has a plan branch and an applier, every configuration source a writer, the plan's
columns are bound by name, and the file names scenarios rely on are the ones the hardening writes."""

import json
import glob
import os
import re
import shutil
import subprocess

import pytest

from pipeline.checks.baseline import Baseline
from pipeline.checks.facts import CONFIG_SOURCES, LOGIN_SHELLS
from pipeline.checks.kinds import KINDS
from pipeline.errors import GoldenError
from pipeline.image import hardening
from pipeline.paths import ROOT

SCRIPTS = os.path.join(ROOT, "packer", "scripts")
HARDENING_FILES = sorted(glob.glob(os.path.join(hardening.LIBRARY, "**", "*.sh"), recursive=True) + [hardening.SCRIPT])


def text(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def code(path):
    """A script without its comments."""
    return "\n".join(re.sub(r"(^|\s)#\s.*$", "", line) for line in text(path).splitlines()
                     if not line.lstrip().startswith("#"))


def baseline_values_by_kind():
    baseline, out = Baseline.load(), {}
    for rec in baseline.catalogue:
        for kind, value in (baseline.values(rec.id) or {}).items():
            out.setdefault(kind, (rec.id, value))
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_check_kind_has_a_plan_branch_and_an_applier(kind):
    cis_id, value = baseline_values_by_kind()[kind]
    rows = hardening._rows_for(cis_id, kind, value)
    assert rows and all(len(r) == 2 + len(hardening.PLAN_COLUMNS[kind]) for r in rows), rows
    applier = os.path.join(hardening.LIBRARY, "appliers", f"{kind}.sh")
    assert re.search(rf'\beach {kind} |== "{kind}"', code(applier)), f"{applier} reads no rows of kind {kind}"


def test_every_row_kind_the_shell_reads_has_named_columns_and_every_named_kind_is_read():
    read = set()
    for path in HARDENING_FILES:
        read |= set(re.findall(r"\b(?:each|rows) ([a-z_]+)\b", code(path)))
    assert read == set(hardening.PLAN_COLUMNS), read ^ set(hardening.PLAN_COLUMNS)


def test_only_the_two_readers_open_the_plan_and_no_rows_are_cut_by_position():
    readers = {os.path.relpath(p, hardening.LIBRARY) for p in HARDENING_FILES if '"$PLAN"' in code(p)}
    assert readers == {"lib.sh", os.path.join("appliers", "params.sh")}, readers
    for path in HARDENING_FILES:
        assert not re.search(r"\brows [a-z_]+ \|", code(path)), path


def test_every_configuration_source_has_a_writer():
    assert set(hardening.CONFIG_WRITERS) == set(CONFIG_SOURCES)
    assert all(bool(w.section) != bool(w.separator) for w in hardening.CONFIG_WRITERS.values())


def test_a_source_without_a_writer_is_refused_at_plan_time():
    with pytest.raises(GoldenError) as err:
        hardening._rows_for("9.9.9", "config", {"ntpd": {"restrict": "default"}})
    assert err.value.field == "controls.9.9.9.config.ntpd" and "no writer" in err.value.reason


def test_write_plan_refuses_a_row_its_columns_do_not_name(tmp_path):
    with pytest.raises(GoldenError, match=r"does not match PLAN_COLUMNS\['sysctl'\]"):
        hardening.write_plan(tmp_path, [("1.5.1", "sysctl", "kernel.randomize_va_space")], {})


def shell(provision, body):
    """Run `body` in bash with the plan's meta and the hardening's parts sourced, as the driver does."""
    script = (f"set -euo pipefail; GOLDEN_PROVISION={provision}; HARDENING_VERSION=test; "
              ". $GOLDEN_PROVISION/plan-meta.env; "
              "for p in $GOLDEN_PROVISION/hardening/lib.sh $GOLDEN_PROVISION/hardening/appliers/*.sh "
              "$GOLDEN_PROVISION/hardening/cis/*.sh; do . $p; done\n" + body)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def provision(tmp_path):
    rows = hardening.plan_rows(Baseline.load(), "bastion", 2, skipped={"5.1.20": "EXC-7"})
    hardening.write_plan(tmp_path, rows, {"role": "bastion", "level": 2, "image": "t", "baseline_sha256": "x"})
    hardening.stage_library(hardening.SCRIPT, tmp_path)
    return tmp_path, rows


def test_the_shell_binds_every_kinds_columns_by_name(provision):
    directory, rows = provision
    for kind, columns in hardening.PLAN_COLUMNS.items():
        names = ("id", "kind", *columns)
        body = f"show() {{ printf '%s\\n' \"{'|'.join('$' + n for n in names)}\"; }}; each {kind} show"
        want = [r for r in [*rows, *hardening.table_rows()] if r[1] == kind]
        got = shell(directory, body).splitlines()
        assert got == ["|".join("" if f == hardening.EMPTY else str(f) for f in r) for r in want], kind


def test_params_and_config_separators_reach_the_shell_unchanged(provision):
    directory, _ = provision
    out = shell(directory, "param 5.4.3.2 tmout; param 4.3.4 table\n"
                           "w() { printf '[%s]\\n' \"$(printf '%b' \"$form_text\")\"; }; each config_writer w")
    writers = [f"[{w.section or w.separator}]" for w in hardening.CONFIG_WRITERS.values()]
    assert out.splitlines() == ["900", "inet filter", *writers]


def test_accounts_use_the_login_shells_the_checks_use(provision):
    directory, _ = provision
    shells = set(subprocess.run(["sh", "-c", LOGIN_SHELLS], capture_output=True, text=True).stdout.split())
    want = []
    for line in text("/etc/passwd").splitlines():
        f = line.split(":")
        want.append(f"{f[0]} {f[2]} {f[3]} {f[5]} {'login' if f[6] in shells else 'nologin'}")
    assert shell(directory, "accounts").splitlines() == want
    assert not any("/etc/shells" in text(p) and "nologin$" in text(p) for p in HARDENING_FILES if "lib.sh" in p)


def test_the_local_filesystems_are_walked_once():
    walks = [p for p in HARDENING_FILES if re.search(r"\bfind \"\$mount\" -xdev", text(p))]
    assert walks == [os.path.join(hardening.LIBRARY, "lib.sh")]


def test_allow_lists_take_owner_group_and_mode_from_the_plan():
    cron = text(os.path.join(hardening.LIBRARY, "cis", "2-services.sh"))
    body = cron[cron.index("allow_list_row()"):cron.index("# 2.4.1.8")]
    assert not re.search(r"0640|crontab|daemon|root:", body) and '"$mode"' in body and "$owner" in body


# Files the hardening writes whose names a check or violation scenario also spells.
GOLDEN_FILE_RE = re.compile(r"/etc/[\w./-]*(?:\d\d[-_]golden[-_][\w.-]*|golden/hardening\.json)")


def test_files_scenarios_name_are_the_ones_the_hardening_writes():
    named = set()
    for path in glob.glob(os.path.join(ROOT, "cis_checks", "**", "*.*"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "acceptance", "**", "*.py"), recursive=True):
        if path.endswith((".py", ".yaml", ".sh")):
            named |= set(GOLDEN_FILE_RE.findall(text(path)))
    assert named and named <= set(hardening.HARDENED_FILES.values()), named - set(hardening.HARDENED_FILES.values())


def test_the_shell_reads_shared_file_names_from_the_plan_and_writes_none_itself():
    scripts = "".join(text(p) for p in HARDENING_FILES)
    for name, path in hardening.HARDENED_FILES.items():
        assert path not in scripts, f"{path} is spelled in the shell; use $GOLDEN_FILE_{name.upper()}"
    used = set(re.findall(r"\$\{?GOLDEN_FILE_([A-Z_]+)", scripts))
    assert used == {n.upper() for n in hardening.HARDENED_FILES}


def test_the_plans_empty_field_is_named_once(provision):
    directory, _ = provision
    assert f"GOLDEN_PLAN_EMPTY={hardening.EMPTY}" in (directory / "plan-meta.env").read_text()
    assert not any(re.search(r"= -\b|\"-\"|= - ]", code(p)) for p in HARDENING_FILES)


def shellcheck(*paths):
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.fail("shellcheck is not installed (Debian package shellcheck; ./setup.sh installs it)")
    return subprocess.run([tool, "-x", "-S", "warning", *paths], capture_output=True, text=True)


def test_shellcheck_passes_over_packer_scripts():
    paths = sorted(glob.glob(os.path.join(SCRIPTS, "**", "*.sh"), recursive=True))
    proc = shellcheck(*paths)
    assert proc.returncode == 0, proc.stdout


def test_shellcheck_catches_a_broken_applier(tmp_path):
    broken = tmp_path / "sysctl.sh"
    broken.write_text(text(os.path.join(hardening.LIBRARY, "appliers", "sysctl.sh")).replace(
        'header > "$out"', 'header > "$out"\n    local unused=1'))
    proc = shellcheck(str(broken))
    assert proc.returncode != 0 and "SC2034" in proc.stdout, proc.stdout


def test_the_record_lists_applied_and_skipped_controls(provision, tmp_path):
    import json
    directory, _ = provision
    record = tmp_path / "hardening.json"
    shell(directory, f"GOLDEN_FILE_RECORD={record}; applied 5.1.16; applied 1.5.10; applied 1.5.9; write_record")
    data = json.loads(record.read_text())
    assert data["applied"] == ["1.5.9", "1.5.10", "5.1.16"] and data["skipped"] == [{"id": "5.1.20", "reason": "EXC-7"}]
    assert (data["role"], data["level"], data["hardening_version"]) == ("bastion", 2, "test")


def test_a_layer_already_hardened_by_the_same_code_plan_and_packages_is_left_as_its_record_says(provision, tmp_path):
    """The record keeps the fingerprint the hardening left; a layer on that image with nothing changed has
    nothing to apply. Another plan, another hardening version or another package set applies again."""
    directory, _ = provision
    record = tmp_path / "record" / "hardening.json"
    check = (f'GOLDEN_FILE_RECORD={record}; if already_hardened "$(hardening_fingerprint)"; then echo skip; '
             'else echo apply; fi')
    assert shell(directory, check).strip() == "apply"                       # no record yet
    shell(directory, f"GOLDEN_FILE_RECORD={record}; applied 1.1.1; write_record")
    written = json.loads(record.read_text())
    assert len(written["fingerprint"]) == 64 and written["applied"] == ["1.1.1"]
    assert shell(directory, check).strip() == "skip"
    assert shell(directory, "HARDENING_VERSION=9.9.9; " + check).strip() == "apply"
    packages = "dpkg-query() { command dpkg-query \"$@\"; echo extra-package 1.0 all; }; "
    assert shell(directory, packages + check).strip() == "apply"
    with open(directory / "plan.tsv", "a") as fh:
        fh.write("9.9.9\tsysctl\tkernel.golden_test\t1\n")
    assert shell(directory, check).strip() == "apply"


def test_the_build_records_whether_the_hardening_applied_or_found_it_done(tmp_path):
    from pipeline.image.build import _hardening_outcome
    out = tmp_path / "packer-output.txt"
    out.write_text("    qemu.local: hardening-cis 1.3.0: role web, level 1, 180 controls in the plan\n")
    assert _hardening_outcome(out) == "applied"
    out.write_text("    qemu.local: hardening-cis 1.3.0: already applied: /etc/golden/hardening.json records ...\n")
    assert _hardening_outcome(out) == "already applied"
    assert _hardening_outcome(tmp_path / "missing.txt") == "unknown"
