"""5.2 Privilege escalation: the sudoers rules sudo reads, its settings in effect, and su's PAM stack.

sudo reads /etc/sudoers and, at its `@includedir /etc/sudoers.d`, every file there whose name has
no `.` and does not end in `~`, in name order; Defaults later in that order win.
"""

import re
from dataclasses import dataclass

from pipeline.checks import facts as fact_sections
from pipeline.checks.kinds import pam_rules
from pipeline.checks.authoring import control, require

# Run by root, `sudo -V` prints the settings every user gets (compiled defaults and global Defaults).
fact_sections.register("sudo_settings", "sudo -V 2>&1")

INCLUDEDIR = re.compile(r"^[@#]includedir\s+/etc/sudoers\.d/?\s*$")
COMMENT = re.compile(r"(^|\s)#(?!\d|include).*$")          # `#1000` is a uid, `#includedir` a directive
DEFAULTS = re.compile(r"^Defaults([:@>!]\S+)?\s+(.*)$")
ALIAS = re.compile(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\s")
USER_SPEC = re.compile(r"^((?:[^\s,]+\s*,\s*)*[^\s,]+)\s+(.*)$")


@dataclass(frozen=True)
class Default:
    path: str
    scope: str          # "" for everyone, else the `:user`, `@host`, `>runas` or `!cmnd` suffix
    name: str
    negated: bool
    value: str | None


def _logical_lines(text):
    out, pending = [], ""
    for raw in text.splitlines():
        line = pending + COMMENT.sub("", raw).strip()
        pending = line[:-1] + " " if line.endswith("\\") else ""
        if not pending and line:
            out.append(line)
    return out


def sudoers_lines(facts):
    """The lines sudo reads, in its order: [(path, line)]."""
    files = facts.files("sudoers")
    included = sorted(p for p in files if p.startswith("/etc/sudoers.d/")
                      and "." not in p.rsplit("/", 1)[1] and not p.endswith("~"))
    out = []
    for line in _logical_lines(files.get("/etc/sudoers", "")):
        if INCLUDEDIR.match(line):
            out += [(path, l) for path in included for l in _logical_lines(files[path])]
        else:
            out.append(("/etc/sudoers", line))
    return out


def _options(text):
    return [o.strip() for o in re.findall(r'(?:[^,"]|"[^"]*")+', text) if o.strip()]


def defaults(facts):
    """Every Defaults option sudo reads, in its order."""
    out = []
    for path, line in sudoers_lines(facts):
        m = DEFAULTS.match(line)
        for option in _options(m.group(2)) if m else []:
            parts = re.match(r"^!*\s*(\w+)\s*([+-]?=)?\s*(.*)$", option)
            if parts:
                name, op, value = parts.groups()
                out.append(Default(path, m.group(1) or "", name, option.startswith("!"),
                                   value.strip('"') if op else None))
    return out


def user_specs(facts):
    """User specification lines: [(path, [users], rest of the line)]."""
    out = []
    for path, line in sudoers_lines(facts):
        if DEFAULTS.match(line) or ALIAS.match(line) or line.startswith(("@include", "#include")):
            continue
        m = USER_SPEC.match(line)
        if m:
            out.append((path, [u.strip() for u in m.group(1).split(",")], m.group(2)))
    return out


def effective(facts, name):
    """The global Default `name` as sudo applies it (the last one read), or None if never set."""
    found = [d for d in defaults(facts) if d.name == name and not d.scope]
    return found[-1] if found else None


@control("5.2.2", violate="sudoers_dropin 'Defaults !use_pty'", needs=["sudoers"], services=["accounts"])
def test_sudo_uses_pty(facts):
    """Commands run in their own pseudo-terminal, so a process left behind cannot inject into the user's."""
    setting = effective(facts, "use_pty")
    findings = [] if setting and not setting.negated else [
        f"use_pty is {'turned off in ' + setting.path if setting else 'not set'} for everyone"]
    findings += [f"{d.path}: Defaults{d.scope} !use_pty" for d in defaults(facts)
                 if d.name == "use_pty" and d.scope and d.negated]
    require(findings)


@control("5.2.3", violate="sudoers_dropin 'Defaults !logfile'", needs=["sudoers"], services=["accounts"])
def test_sudo_log_file(facts, control_values):
    """sudo keeps its own log of what was run, in the company's place."""
    want = control_values["params"]["logfile"]
    setting = effective(facts, "logfile")
    if setting is None or setting.negated or setting.value != want:
        shown = "not set" if setting is None else "off" if setting.negated else setting.value
        require([f"sudo logfile is {shown}, expected {want}"])


@control("5.2.4", violate="sudoers_dropin '%sudo ALL=(ALL:ALL) NOPASSWD: ALL'", needs=["sudoers"],
         services=["accounts"])
def test_sudo_requires_password(facts, test_user):
    """No sudo rule waives the password (the suite's own per-boot account excepted by name)."""
    require([f"{path}: {', '.join(users)} {rest}" for path, users, rest in user_specs(facts)
             if re.search(r"\bNOPASSWD\s*:", rest) and users != [test_user]])


@control("5.2.5", violate="sudoers_dropin 'Defaults !authenticate'", needs=["sudoers"],
         services=["accounts"])
def test_sudo_reauthentication_not_disabled(facts):
    """No Defaults turns authentication off, for anyone."""
    require([f"{d.path}: Defaults{d.scope} !authenticate" for d in defaults(facts)
             if d.name == "authenticate" and d.negated])


@control("5.2.6", violate="sudoers_dropin 'Defaults timestamp_timeout=60'", needs=["sudoers", "sudo_settings"],
         services=["accounts"])
def test_sudo_timestamp_timeout(facts, control_values):
    """A sudo authentication is reused for a bounded time, never forever (a negative timeout)."""
    limit = control_values["params"]["timestamp_timeout"]
    m = re.search(r"^Authentication timestamp timeout: (-?[\d.]+) minutes", facts.raw("sudo_settings"), re.M)
    timeouts = [("everyone (sudo -V)", m.group(1) if m else None)]
    timeouts += [(f"{d.path}: Defaults{d.scope}", d.value) for d in defaults(facts)
                 if d.name == "timestamp_timeout" and d.scope]
    require([f"{who}: timestamp_timeout is {value}, expected 0 to {limit} minutes" for who, value in timeouts
             if value is None or not 0 <= float(value) <= limit])


@control("5.2.7", violate="sed -i 's/^auth.*pam_wheel.so/# &/' /etc/pam.d/su", needs=["pam", "group", "passwd"],
         services=["pam", "accounts"])
def test_su_restricted(facts, control_values):
    """su asks pam_wheel for membership of a group kept empty, so only root can use it."""
    group = control_values["params"]["group"]
    wheel = [r for r in pam_rules(facts).get("su", []) if r[0] == "auth" and r[2] == "pam_wheel.so"]
    ok = [r for r in wheel if r[1] in ("required", "requisite") and "use_uid" in r[3] and f"group={group}" in r[3]]
    findings = [] if ok else [f"/etc/pam.d/su has no `auth required pam_wheel.so use_uid group={group}` (found: "
                              f"{'; '.join(' '.join([r[1], *r[3]]) for r in wheel) or 'no pam_wheel'})"]
    entry = next((g for g in facts.group if g[0] == group), None)
    if entry is None:
        findings.append(f"group {group} does not exist")
    else:
        members = [m for m in entry[3].split(",") if m]
        members += [p[0] for p in facts.passwd if p[3] == entry[2]]
        if members:
            findings.append(f"group {group} has members: {', '.join(members)}")
    require(findings)
