"""CIS 5.4: password ageing of every account, root and the system accounts, the login environment.

Accounts are read from passwd/shadow; the environment from real login shells (`su -l`), so
every file a login shell reads counts. The per-boot test account is left out by name.
"""

import datetime
import re

from pipeline.checks import expect
from pipeline.checks import facts as collector
from pipeline.checks.authoring import control, require

collector.register("clock", "date +%s")
# root's login PATH, one `kind|dir|mode|owner` line per entry (kind: dir, file, absent or empty).
collector.register("root_path", (
    "su -l root -s /bin/bash -c 'printf \"%s\\n\" \"$PATH\"' 2>/dev/null | tail -n 1 | tr ':' '\\n' | "
    "while IFS= read -r d; do if [ -z \"$d\" ]; then echo 'empty|||'; "
    "elif [ -d \"$d\" ]; then stat -L -c 'dir|%n|%a|%U' \"$d\"; elif [ -e \"$d\" ]; then echo \"file|$d||\"; "
    "else echo \"absent|$d||\"; fi; done"))
collector.register("login_tmout", "su -l nobody -s /bin/bash -c 'declare -p TMOUT' 2>&1")

SYSTEM_SHELL_EXEMPT = {"root", "halt", "sync", "shutdown", "nfsnobody"}   # CIS: their shell is their job
GID_0_ALLOWED = {"root", "sync", "shutdown", "halt", "operator"}          # CIS 5.4.2.2


def _login_shells(facts):
    """CIS's valid login shells: /etc/shells without nologin. None at all means the fact failed."""
    shells = set(facts.lines("login_shells"))
    if not shells:
        raise collector.FactError("no login shell found in /etc/shells")
    return shells


def _days_ok(value, spec):
    """A day count meets the expectation; empty or negative (-1) means "never", which never does."""
    return (value or "").strip().isdigit() and expect.check(value, spec)


def _ageing(facts, control_values, test_user, source, key, field):
    """The default for new accounts, and the same bound on every account that has a password."""
    spec = control_values["config"][source][key]
    default = facts.config(source).get(key)
    findings = [] if _days_ok(default, spec) else [
        f"{source} {key} is {default or 'unset'}, expected {expect.describe(spec)}"]
    for row in facts.shadow:
        if row[1].startswith("$") and row[0] != test_user and not _days_ok(row[field], spec):
            findings.append(f"{row[0]}: {key} in /etc/shadow is {row[field] or 'unset'}, "
                            f"expected {expect.describe(spec)}")
    return findings


@control("5.4.1.1", violate='login_defs_set PASS_MAX_DAYS "$(violating PASS_MAX_DAYS)"', needs=["shadow"])
def test_password_expiration(facts, control_values, test_user):
    """Passwords expire: PASS_MAX_DAYS for new accounts and for every account with a password."""
    require(_ageing(facts, control_values, test_user, "login_defs", "PASS_MAX_DAYS", 4))


@control("5.4.1.3", violate='login_defs_set PASS_WARN_AGE "$(violating PASS_WARN_AGE)"', needs=["shadow"])
def test_password_expiry_warning(facts, control_values, test_user):
    """Users are warned before their password expires, new accounts and existing ones alike."""
    require(_ageing(facts, control_values, test_user, "login_defs", "PASS_WARN_AGE", 5))


@control("5.4.1.5", violate="useradd -D -f -1", needs=["shadow"])
def test_inactive_password_lock(facts, control_values, test_user):
    """An expired password locks its account after INACTIVE days, for new and existing accounts."""
    require(_ageing(facts, control_values, test_user, "useradd", "INACTIVE", 6))


@control("5.4.1.6", violate='chage --lastday "$(date -d "+30 days" +%F)" mail', needs=["shadow", "clock"])
def test_password_changes_in_past(facts, test_user):
    """No password was last changed in the future, which would postpone its expiry."""
    today = int(facts.raw("clock").strip()) // 86400
    findings = []
    for name, _, changed, *_ in facts.shadow:
        if name != test_user and changed.isdigit() and int(changed) > today:
            day = datetime.date(1970, 1, 1) + datetime.timedelta(days=int(changed))
            findings.append(f"{name}: last password change is {day}, in the future")
    require(findings)


@control("5.4.2.1", violate="useradd -o -u 0 -g users -M -s /usr/sbin/nologin toor", needs=["passwd"])
def test_root_only_uid_0(facts, test_user):
    """Only root has UID 0: any other UID 0 account is root under another name."""
    require([f"{row[0]} has UID 0" for row in facts.passwd if row[2] == "0" and row[0] not in ("root", test_user)])


@control("5.4.2.2", violate="usermod -g 0 news", needs=["passwd"])
def test_root_only_gid_0(facts, test_user):
    """root's primary group is GID 0, and no other account's is (but the shutdown helpers')."""
    findings = [f"{row[0]} has primary GID 0" for row in facts.passwd
                if row[3] == "0" and row[0] not in GID_0_ALLOWED | {test_user}]
    findings += [f"root has primary GID {row[3]}, expected 0" for row in facts.passwd
                 if row[0] == "root" and row[3] != "0"]
    require(findings)


@control("5.4.2.3", violate="groupadd -o -g 0 rootgrp2", needs=["group"])
def test_root_only_gid_0_group(facts):
    """Only the group root has GID 0."""
    require([f"group {row[0]} has GID 0" for row in facts.group if row[2] == "0" and row[0] != "root"])


@control("5.4.2.4", violate="passwd -d root", needs=["shadow"])
def test_root_access_controlled(facts):
    """root has a password or is locked (! or *), never an empty password."""
    row = next((r for r in facts.shadow if r[0] == "root"), None)
    require(["root has no entry in /etc/shadow"] if row is None else
            ["root's password is empty"] if row[1] == "" else [])


@control("5.4.2.5", violate="echo 'PATH=\"$PATH:.\"' >> /root/.profile", needs=["root_path"])
def test_root_path_integrity(facts):
    """Every directory in root's PATH is absolute, exists, is root's and writable by root alone."""
    findings = [] if facts.lines("root_path") else ["could not read root's PATH from a root login shell"]
    for line in facts.lines("root_path"):
        kind, path, mode, owner = (line.split("|") + ["", "", ""])[:4]
        if kind == "empty":
            findings.append("root's PATH has an empty entry, which means the current directory")
        elif not path.startswith("/"):
            findings.append(f"root's PATH has the relative entry {path!r}")
        elif kind != "dir":
            findings.append(f"{path} in root's PATH {'is not a directory' if kind == 'file' else 'does not exist'}")
        elif owner != "root":
            findings.append(f"{path} in root's PATH is owned by {owner}, not root")
        elif int(mode, 8) & 0o022:
            findings.append(f"{path} in root's PATH is writable by group or others (mode {int(mode, 8):04o})")
    require(findings)


def _umask_findings(env, want, who):
    """`UMASK=` of a login shell's environment masks at least the bits `want` masks."""
    actual = next((line[6:].strip() for line in env.splitlines() if line.startswith("UMASK=")), None)
    if actual is None:
        return [f"could not read the umask of {who}: {env.strip()[:200]}"]
    if int(actual, 8) & int(want, 8) != int(want, 8):
        return [f"the umask of {who} is {actual}, expected {want} or more restrictive"]
    return []


@control("5.4.2.6", violate="echo 'umask 022' >> /root/.bashrc", needs=["root_env"])
def test_root_umask(facts, control_values):
    """Files root creates are not group-writable nor open to others (root login shell's umask)."""
    require(_umask_findings(facts.raw("root_env"), control_values["params"]["umask"], "root's login shell"))


@control("5.4.2.7", violate="usermod -s /bin/sh _chrony", needs=["passwd", "login_shells", ("config", "login_defs")])
def test_system_accounts_no_shell(facts, test_user):
    """System accounts (below UID_MIN, and nobody) have no login shell: nobody logs in as a service."""
    shells = _login_shells(facts)
    uid_min = int(facts.config("login_defs").get("UID_MIN", "1000"))
    require([f"{row[0]} (UID {row[2]}) has the login shell {row[6]}" for row in facts.passwd
             if row[0] not in SYSTEM_SHELL_EXEMPT | {test_user} and row[6] in shells
             and row[2].isdigit() and (int(row[2]) < uid_min or int(row[2]) == 65534)])


@control("5.4.2.8",
         violate="usermod -p '$y$j9T$violation$0123456789abcdef' lp && chage --maxdays 365 --warndays 7 --inactive 45 lp",
         needs=["passwd", "shadow", "login_shells"])
def test_no_shell_accounts_locked(facts, test_user):
    """Accounts without a login shell (root aside) have a locked password: no other way in for them."""
    shells = _login_shells(facts)
    passwords = {row[0]: row[1] for row in facts.shadow}
    require([f"{row[0]} has no login shell ({row[6]}) but its password is not locked" for row in facts.passwd
             if row[0] not in ("root", test_user) and row[6] not in shells
             and not passwords.get(row[0], row[1]).startswith(("!", "*"))])


@control("5.4.3.1", violate="add-shell /usr/sbin/nologin", needs=[("content", "/etc/shells")])
def test_nologin_not_a_shell(facts):
    """nologin is not in /etc/shells, which would make it a valid shell for services that ask."""
    lines = (facts.content("/etc/shells") or "").splitlines()
    require([f"/etc/shells lists {line.strip()}" for line in lines if line.strip().endswith("/nologin")])


@control("5.4.3.2", violate="printf 'TMOUT=3600\\nreadonly TMOUT\\nexport TMOUT\\n' > /etc/profile.d/00-local-tmout.sh",
         needs=["login_tmout"])
def test_shell_timeout(facts, control_values):
    """Idle login shells end: TMOUT is set, at most the baseline's, read-only and exported."""
    limit = int(control_values["params"]["tmout"])
    found = re.search(r'^declare -(\S+) TMOUT="?(\d*)"?$', facts.raw("login_tmout"), re.M)
    if not found:
        require([f"TMOUT is not set in login shells ({(facts.lines('login_tmout') or [''])[-1].strip()})"])
    flags, value = found.groups()
    findings = [] if value.isdigit() and 0 < int(value) <= limit else [
        f"TMOUT is {value or 'empty'}, expected 1 to {limit} seconds"]
    findings += [] if "r" in flags else ["TMOUT is not read-only: a user can lift it"]
    findings += [] if "x" in flags else ["TMOUT is not exported"]
    require(findings)


@control("5.4.3.3", violate="echo 'umask 022' > /etc/profile.d/zz-local-umask.sh", needs=["login_env"])
def test_default_umask(facts, control_values):
    """Files users create are not group-writable nor open to others (a login shell's umask)."""
    require(_umask_findings(facts.raw("login_env"), control_values["params"]["umask"], "users' login shells"))
