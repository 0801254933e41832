"""The hardening plan: the baseline resolved for one image (role, level, exceptions) into rows
that packer/scripts/hardening-cis.sh applies, plus the choice of hardening script version.

    rows = plan_rows(baseline, role="general-purpose", level=1, skipped={"5.1.20": "EXC-7"})
    write_plan(provision_dir, rows, meta)     # plan.tsv, plan-columns.tsv, plan-meta.env

plan.tsv: one row per value to apply, `id <TAB> kind <TAB> field...`, with targets already
computed from the expectation operators, so the shell needs no YAML or operator logic. The fields
of each kind are named once, in PLAN_COLUMNS, written to plan-columns.tsv; the shell binds them by
name (hardening/lib.sh `each`). An empty field is written EMPTY (bash's `read` would merge
consecutive tabs and shift the fields). Tables the shell reads the same way (CONFIG_WRITERS,
PAM_PROFILES) are rows too, with id EMPTY, and plan-meta.env carries the names both sides share.
"""

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from pipeline.checks import expect
from pipeline.checks.facts import LOGIN_SHELLS
from pipeline.errors import GoldenError
from pipeline.paths import PACKER_DIR, ROOT

SCRIPT = os.path.join(PACKER_DIR, "scripts", "hardening-cis.sh")
LIBRARY = os.path.join(PACKER_DIR, "scripts", "hardening")     # uploaded as $GOLDEN_PROVISION/hardening
_VERSION_RE = re.compile(r'^HARDENING_VERSION="?(\d+\.\d+\.\d+)"?', re.M)
TAG_PREFIX = "hardening-v"
RELEASES = os.path.join(PACKER_DIR, "scripts", "hardening-releases.tsv")   # released version -> commit
EMPTY = "-"

# The fields after `id kind` of every row kind of plan.tsv, by name.
PLAN_COLUMNS = {
    "sysctl": ("key", "value"),
    "sshd": ("key", "value"),
    "kernel_cmdline": ("key", "value"),
    "config": ("source", "key", "value"),
    "kernel_modules": ("name",),
    "packages_absent": ("name",),
    "packages_present": ("name",),
    "services_enabled": ("unit",),
    "audit_rules": ("rule",),
    "services_not_in_use": ("package", "unit"),
    "files": ("path", "mode", "owner", "groups", "absent"),
    "mounts": ("target", "options", "separate"),
    "banners": ("path", "text"),
    "pam": ("file", "type", "module", "args", "present"),
    "params": ("key", "value"),
    "control": (),
    "skip": ("reason",),
    "config_writer": ("source", "file", "writer_kind", "form_text", "owned"),
    "pam_profile": ("profile", "priority", "section", "control", "module", "mode"),
}


@dataclass(frozen=True)
class ConfigWriter:
    """How the hardening writes one configuration source (facts.CONFIG_SOURCES) of the baseline.

    ConfigWriter("/etc/login.defs", separator="\t")                 # KEY<TAB>VALUE, edited in place
    ConfigWriter("/etc/systemd/journald.conf.d/60-golden-cis.conf", section="Journal", owned=True)
    """
    file: str
    separator: str | None = None    # a KEY<separator>VALUE line (printf %b escapes in the plan)
    section: str | None = None      # a systemd drop-in section
    owned: bool = False             # the hardening's own file, removed and written whole


CONFIG_WRITERS = {
    "journald": ConfigWriter("/etc/systemd/journald.conf.d/60-golden-cis.conf", section="Journal", owned=True),
    "coredump": ConfigWriter("/etc/systemd/coredump.conf.d/60-golden-cis.conf", section="Coredump", owned=True),
    "pwquality": ConfigWriter("/etc/security/pwquality.conf.d/60-golden-cis.conf", separator=" = ", owned=True),
    "faillock": ConfigWriter("/etc/security/faillock.conf", separator=" = "),
    "auditd": ConfigWriter("/etc/audit/auditd.conf", separator=" = "),
    "login_defs": ConfigWriter("/etc/login.defs", separator="\t"),
    "useradd": ConfigWriter("/etc/default/useradd", separator="="),
    "rsyslog": ConfigWriter("/etc/rsyslog.d/60-golden-cis.conf", separator=" ", owned=True),
    # chrony.conf reads conf.d/*.conf (confdir); 2.3.3.2's `user` goes to the same drop-in.
    "chrony": ConfigWriter("/etc/chrony/conf.d/60-golden-cis.conf", separator=" ", owned=True),
}

# pam-auth-update profiles the baseline's PAM rules are written into: profile, priority, section,
# control flag, module, and the rule's mode (the pam_faillock argument that tells its lines apart).
PAM_PROFILES = (
    ("golden-faillock-notify", 1024, "Auth", "requisite", "pam_faillock.so", "preauth"),
    ("golden-faillock-notify", 1024, "Account", "required", "pam_faillock.so", ""),
    ("golden-pwquality", 1024, "Password", "requisite", "pam_pwquality.so", ""),
    ("golden-pwhistory", 512, "Password", "requisite", "pam_pwhistory.so", ""),
    ("golden-unix", 256, "Auth", "[success=end default=ignore]", "pam_unix.so", ""),
    ("golden-unix", 256, "Account", "[success=end new_authtok_reqd=done default=ignore]", "pam_unix.so", ""),
    ("golden-unix", 256, "Session", "required", "pam_unix.so", ""),
    ("golden-unix", 256, "Password", "[success=end default=ignore]", "pam_unix.so", ""),
    ("golden-faillock", 0, "Auth", "[default=die]", "pam_faillock.so", "authfail"),
)

# Files the hardening writes that violation scenarios and checks name too (plan-meta.env GOLDEN_FILE_*).
HARDENED_FILES = {
    "sshd": "/etc/ssh/sshd_config.d/50-golden-cis.conf",
    "grub_password": "/etc/grub.d/01_golden-password",
    "aide_audit_tools": "/etc/aide/aide.conf.d/70_golden_cis_audit_tools",
    "chrony": CONFIG_WRITERS["chrony"].file,
    "record": "/etc/golden/hardening.json",
}


def table_rows():
    """The tables the shell reads like plan rows: config writers, PAM profiles."""
    rows = []
    for source, w in CONFIG_WRITERS.items():
        kind, form = ("dropin", w.section) if w.section else ("set_kv", w.separator.replace("\t", "\\t"))
        rows.append((EMPTY, "config_writer", source, w.file, kind, form, "owned" if w.owned else ""))
    rows.extend((EMPTY, "pam_profile", *map(str, p)) for p in PAM_PROFILES)
    return rows


def contract_meta():
    """plan-meta.env entries both sides name once: the empty field, the login shells, shared files."""
    meta = {"plan_empty": EMPTY, "login_shells": LOGIN_SHELLS}
    meta.update({f"file_{name}": path for name, path in HARDENED_FILES.items()})
    return meta


def script_version(path=SCRIPT):
    with open(path, encoding="utf-8") as fh:
        m = _VERSION_RE.search(fh.read())
    if not m:
        raise GoldenError("no HARDENING_VERSION=\"X.Y.Z\" line", file=path)
    return m.group(1)


def released_versions(repo=ROOT):
    """{version: commit} of the released hardening versions RELEASES lists in `repo` (none if it has no list)."""
    path = os.path.join(repo, os.path.relpath(RELEASES, ROOT))
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return {}
    out = {}
    for n, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or not re.fullmatch(r"\d+\.\d+\.\d+", fields[0]) or not re.fullmatch(r"[0-9a-f]{40}", fields[1]):
            raise GoldenError(f"expected `X.Y.Z COMMIT` (a full 40-digit commit id), not {line.strip()!r}",
                              file=path, line=n)
        if fields[0] in out:
            raise GoldenError(f"version {fields[0]} is listed twice", file=path, line=n)
        out[fields[0]] = fields[1]
    return out


def _git_has(repo, obj):
    return subprocess.run(["git", "-C", repo, "cat-file", "-e", obj], capture_output=True, text=True)


def resolve_script(version, work_dir, repo=ROOT):
    """The hardening driver to run: the working tree's, or a released one.

    A released version X.Y.Z is found at git tag hardening-vX.Y.Z, or else at the commit RELEASES
    (packer/scripts/hardening-releases.tsv) lists for it: tags need not reach every clone, the
    history does. Releasing a version is adding its line there (and, optionally, the tag). A spec
    pins an earlier one with `hardening: {version: 1.2.0}` (the rollback path). A released version
    is the driver and its hardening/ directory (none before 1.2.0) as that commit holds them, under
    work_dir, and must state the version it was asked for.
    """
    rel = os.path.relpath(SCRIPT, ROOT)
    script = os.path.join(repo, rel)
    current = script_version(script)
    if version in ("current", current):
        return script, current
    tag = f"{TAG_PREFIX}{version}"
    listing = os.path.relpath(RELEASES, ROOT)
    proc = _git_has(repo, f"{tag}:{rel}")
    if proc.returncode == 0:
        ref, source = tag, f"tag {tag}"
    else:
        commit = released_versions(repo).get(version)
        if commit is None:
            raise GoldenError(f"hardening version {version} is not released: no git tag {tag} with {rel} "
                              f"({proc.stderr.strip() or 'git failed'}), and {listing} does not list it",
                              field="hardening.version")
        listed = _git_has(repo, f"{commit}:{rel}")
        if listed.returncode != 0:
            raise GoldenError(f"hardening version {version}: {listing} names commit {commit}, which this clone "
                              f"does not hold with {rel} (a shallow clone? fetch the history): "
                              f"{listed.stderr.strip() or 'git failed'}", field="hardening.version")
        ref, source = commit, f"commit {commit} ({listing})"
    lib = os.path.relpath(LIBRARY, ROOT)
    has_lib = _git_has(repo, f"{ref}:{lib}").returncode == 0
    dest = os.path.join(work_dir, f"hardening-{version}")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", repo, "archive", "--format=tar", ref, "--", rel, *([lib] if has_lib else [])],
                             capture_output=True)
    untar = subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, capture_output=True)
    if archive.returncode != 0 or untar.returncode != 0:
        raise GoldenError(f"could not extract hardening {version} from {source}: "
                          f"{(archive.stderr or untar.stderr).decode(errors='replace').strip()}", field="hardening.version")
    path = os.path.join(dest, rel)
    found = script_version(path)
    if found != version:
        raise GoldenError(f"{source} holds hardening version {found}, not {version}", field="hardening.version")
    return path, version


def stage_library(script, provision_dir):
    """Put the driver's hardening/ directory (if its version has one) into the files uploaded to the build VM."""
    dest = os.path.join(provision_dir, "hardening")
    shutil.rmtree(dest, ignore_errors=True)
    lib = os.path.join(os.path.dirname(script), "hardening")
    if os.path.isdir(lib):
        shutil.copytree(lib, dest)


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
    """Rows of the plan for one kind's value; each kind has its applier, packer/scripts/hardening/appliers/KIND.sh."""
    if kind in ("sysctl", "sshd", "kernel_cmdline"):
        return [(cis_id, kind, key, expect.target(spec)) for key, spec in value.items()]
    if kind == "config":
        for source in value:
            if source not in CONFIG_WRITERS:
                raise GoldenError(f"configuration source {source!r} has no writer in the hardening "
                                  f"(pipeline/image/hardening.py CONFIG_WRITERS: {', '.join(CONFIG_WRITERS)})",
                                  field=f"controls.{cis_id}.config.{source}")
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
            rows.append((rec.id, "control"))     # logic-shaped part, if any: a cis_* function in hardening/cis/
    for row in rows:
        for field in row:
            if field is None:
                raise GoldenError(f"no value to apply for {row[0]} {row[1]}: its expectation has no target "
                                  "(use a plain value or at_most/at_least/one_of/subset_of)", field="baseline")
    return rows + skips


def write_plan(directory, rows, meta):
    """plan.tsv (the rows and the tables), plan-columns.tsv (PLAN_COLUMNS), plan-meta.env (meta and contract_meta())."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "plan.tsv"), "w", encoding="utf-8") as fh:
        for row in [*rows, *table_rows()]:
            columns = PLAN_COLUMNS.get(row[1])
            if columns is None or len(row) != 2 + len(columns):
                raise GoldenError(f"plan row {row!r} does not match PLAN_COLUMNS[{row[1]!r}] = {columns}")
            fh.write("\t".join(_clean(f) or EMPTY for f in row) + "\n")
    with open(os.path.join(directory, "plan-columns.tsv"), "w", encoding="utf-8") as fh:
        for kind, columns in PLAN_COLUMNS.items():
            fh.write("\t".join((kind, "id", "kind", *columns)) + "\n")
    with open(os.path.join(directory, "plan-meta.env"), "w", encoding="utf-8") as fh:
        for key, value in {**meta, **contract_meta()}.items():
            fh.write(f"GOLDEN_{key.upper()}={shlex.quote(_clean(value))}\n")
