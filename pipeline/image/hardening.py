"""The hardening plan: the baseline resolved for one image (role, level, exceptions) into rows
that packer/scripts/hardening-cis.sh applies, plus the choice of hardening script version.

    rows = plan_rows(baseline, role="general-purpose", level=1, skipped={"5.1.20": "EXC-7"})
    write_plan(provision_dir, rows, meta)     # plan.tsv + plan-meta.env
    path, version = resolve_script("current", work_dir)

plan.tsv: one row per value to apply, `id <TAB> kind <TAB> field...`, with targets already
computed from the expectation operators, so the shell needs no YAML or operator logic. An empty
field is written `-` (bash's `read` would merge consecutive tabs and shift the fields).
"""

import os
import re
import subprocess

from pipeline.checks import expect
from pipeline.errors import GoldenError
from pipeline.paths import PACKER_DIR, ROOT

SCRIPT = os.path.join(PACKER_DIR, "scripts", "hardening-cis.sh")
_VERSION_RE = re.compile(r'^HARDENING_VERSION="?(\d+\.\d+\.\d+)"?', re.M)
TAG_PREFIX = "hardening-v"


def script_version(path=SCRIPT):
    with open(path, encoding="utf-8") as fh:
        m = _VERSION_RE.search(fh.read())
    if not m:
        raise GoldenError("no HARDENING_VERSION=\"X.Y.Z\" line", file=path)
    return m.group(1)


def resolve_script(version, work_dir, repo=ROOT):
    """The hardening script to run: the working tree's, or a released one from git tag hardening-vX.Y.Z.

    Releasing a hardening version is tagging the commit: `git tag hardening-v1.1.0`. A spec pins an
    earlier one with `hardening: {version: 1.0.0}` (the rollback path).
    """
    script = os.path.join(repo, os.path.relpath(SCRIPT, ROOT))
    current = script_version(script)
    if version in ("current", current):
        return script, current
    tag = f"{TAG_PREFIX}{version}"
    rel = os.path.relpath(SCRIPT, ROOT)
    proc = subprocess.run(["git", "-C", repo, "show", f"{tag}:{rel}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise GoldenError(f"hardening version {version} is not released: no git tag {tag} with {rel} "
                          f"({proc.stderr.strip() or 'git failed'})", field="hardening.version")
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, f"hardening-cis-{version}.sh")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(proc.stdout)
    os.chmod(path, 0o755)
    found = script_version(path)
    if found != version:
        raise GoldenError(f"tag {tag} holds hardening version {found}, not {version}", field="hardening.version")
    return path, version


def _clean(value):
    text = str(value)
    if any(c in text for c in "\t\n"):
        raise GoldenError(f"baseline value {text!r} contains a tab or newline", field="baseline")
    return text


def _flat_args(args):
    out = []
    for name, spec in (args or {}).items():
        if spec is True:
            out.append(name)
        elif spec is not False:
            out.append(f"{name}={expect.target(spec)}")
    return " ".join(out)


def _rows_for(cis_id, kind, value):
    """Rows of the plan for one kind's value; each kind has one applier in hardening-cis.sh."""
    if kind in ("sysctl", "sshd", "kernel_cmdline"):
        return [(cis_id, kind, key, expect.target(spec)) for key, spec in value.items()]
    if kind == "config":
        return [(cis_id, kind, source, key, expect.target(spec))
                for source, settings in value.items() for key, spec in settings.items()]
    if kind in ("kernel_modules", "packages_absent", "packages_present", "services_enabled", "audit_rules"):
        return [(cis_id, kind, name) for name in value]
    if kind == "services_not_in_use":
        return [(cis_id, kind, pkg, unit) for pkg, units in value.items() for unit in units]
    if kind == "files":
        out = []
        for path, want in value.items():
            group = want.get("group", "")
            groups = "|".join(group) if isinstance(group, list) else group
            out.append((cis_id, kind, path, want.get("mode", ""), want.get("owner", ""), groups,
                        "absent_ok" if want.get("absent_ok") else ""))
        return out
    if kind == "mounts":
        return [(cis_id, kind, target, ",".join(want.get("options", [])),
                 "separate" if want.get("separate") else "") for target, want in value.items()]
    if kind == "banners":
        return [(cis_id, kind, path, text.strip().replace("\\", "\\\\").replace("\n", "\\n"))
                for path, text in value.items()]
    if kind == "pam":
        return [(cis_id, kind, name, rule["type"], rule["module"], _flat_args(rule.get("args")),
                 "absent" if rule.get("present", True) is False else "present")
                for name, rules in value.items() for rule in rules]
    if kind == "params":
        return [(cis_id, kind, key, " ".join(map(str, v)) if isinstance(v, list) else expect.normalize(v))
                for key, v in value.items()]
    raise GoldenError(f"the hardening has no applier for kind {kind!r}", field=f"controls.{cis_id}")


def plan_rows(baseline, role, level, skipped=None):
    """Rows to apply and the controls left alone (with why), in benchmark order."""
    skipped = skipped or {}
    rows, skips = [], []
    for rec in baseline.catalogue:
        if not baseline.applies(rec.id, role, level):
            continue
        if rec.id in skipped:
            skips.append((rec.id, "skip", skipped[rec.id]))
            continue
        values = baseline.values(rec.id)
        for kind, value in values.items():
            rows.extend(_rows_for(rec.id, kind, value))
        if rec.assessment == "automated":
            rows.append((rec.id, "control"))     # logic-shaped part, if any: a function in hardening-cis.sh
    for row in rows:
        for field in row:
            if field is None:
                raise GoldenError(f"no value to apply for {row[0]} {row[1]}: its expectation has no target "
                                  "(use a plain value or at_most/at_least/one_of/subset_of)", field="baseline")
    return rows + skips


def write_plan(directory, rows, meta):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "plan.tsv"), "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write("\t".join(_clean(f) or "-" for f in row) + "\n")
    with open(os.path.join(directory, "plan-meta.env"), "w", encoding="utf-8") as fh:
        for key, value in meta.items():
            fh.write(f"GOLDEN_{key.upper()}='{_clean(value)}'\n")
