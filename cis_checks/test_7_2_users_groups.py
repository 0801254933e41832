"""CIS 7.2: the local account and group databases, and interactive users' homes and dot files.

Interactive users are accounts whose shell is listed in /etc/shells and is not nologin. The
per-boot test account is left out by name.
"""

from collections import Counter

from pipeline.checks.facts import FactError
from pipeline.checks.authoring import control, require



def _duplicates(names):
    return sorted(name for name, count in Counter(names).items() if count > 1)


@control("7.2.1", violate="sed -i 's/^uucp:x:/uucp:*:/' /etc/passwd", needs=["passwd"])
def test_shadowed_passwords(facts, test_user):
    """Password hashes live in /etc/shadow, readable by root alone: /etc/passwd holds only `x`."""
    require([f"{row[0]} has its password in /etc/passwd, not /etc/shadow" for row in facts.passwd
             if row[1] != "x" and row[0] != test_user])


@control("7.2.2", violate="useradd -m -s /bin/bash emptypw && passwd -d emptypw", needs=["shadow"])
def test_no_empty_passwords(facts, test_user):
    """No account has an empty password (locked ones start with ! or *)."""
    require([f"{row[0]} has an empty password" for row in facts.shadow if row[1] == "" and row[0] != test_user])


@control("7.2.3", violate=r"sed -i -E 's/^(proxy:[^:]*:[^:]*:)[^:]*:/\14242:/' /etc/passwd", needs=["passwd", "group"])
def test_primary_groups_exist(facts, test_user):
    """Every account's primary group exists: a group created later with that GID would own its files."""
    gids = {row[2] for row in facts.group}
    require([f"{row[0]} has primary GID {row[3]}, which is not in /etc/group" for row in facts.passwd
             if row[3] not in gids and row[0] != test_user])


@control("7.2.4", violate="gpasswd -a backup shadow", needs=["passwd", "group"])
def test_shadow_group_empty(facts, test_user):
    """Nobody is in group shadow, which can read every password hash."""
    shadow = next((row for row in facts.group if row[0] == "shadow"), ["shadow", "", None, ""])
    findings = [f"{name} is a member of group shadow" for name in shadow[3].split(",") if name and name != test_user]
    findings += [f"{row[0]} has group shadow as its primary group" for row in facts.passwd
                 if row[3] == shadow[2] and row[0] != test_user]
    require(findings)


@control("7.2.5", violate="useradd -o -u 1 -M -s /usr/sbin/nologin daemon2", needs=["passwd"])
def test_no_duplicate_uids(facts, test_user):
    """Each UID belongs to one account: two would share every file and every audit record."""
    uids = [row[2] for row in facts.passwd if row[0] != test_user]
    require([f"UID {uid} is used by " + ", ".join(r[0] for r in facts.passwd if r[2] == uid)
             for uid in _duplicates(uids)])


@control("7.2.6", violate="groupadd -o -g 1 daemon3", needs=["group"])
def test_no_duplicate_gids(facts):
    """Each GID belongs to one group."""
    require([f"GID {gid} is used by groups " + ", ".join(r[0] for r in facts.group if r[2] == gid)
             for gid in _duplicates(row[2] for row in facts.group)])


@control("7.2.7", violate="sed -n 's/^irc:x:39:/irc:x:4243:/p' /etc/passwd >> /etc/passwd", needs=["passwd"])
def test_no_duplicate_user_names(facts, test_user):
    """Each user name is one account: otherwise which one logs in depends on file order."""
    require([f"user name {name} is defined more than once"
             for name in _duplicates(r[0] for r in facts.passwd if r[0] != test_user)])


@control("7.2.8", violate="sed -n 's/^list:x:38:/list:x:4244:/p' /etc/group >> /etc/group", needs=["group"])
def test_no_duplicate_group_names(facts):
    """Each group name is one group."""
    require([f"group name {name} is defined more than once" for name in _duplicates(r[0] for r in facts.group)])


def _interactive(facts, test_user):
    """passwd rows of the accounts with a login shell, the test account left out."""
    shells = set(facts.lines("login_shells"))
    if not shells:
        raise FactError("no login shell found in /etc/shells")
    return [row for row in facts.passwd if row[6] in shells and row[0] != test_user]


def _homes(facts):
    """(user, path) -> (mode, owner, group) of home directories and the dot files in them."""
    out = {}
    for line in facts.lines("homes"):
        user, _, _, path, mode, owner, group = line.split("|")
        out[(user, path)] = (int(mode, 8), owner, group)
    return out


@control("7.2.9", violate="chmod 0755 /root", needs=["passwd", "homes", "login_shells"])
def test_interactive_homes(facts, test_user):
    """Every interactive user has a home directory, owns it, and it is closed to others (at most 0750)."""
    homes, findings = _homes(facts), []
    for row in _interactive(facts, test_user):
        name, home = row[0], row[5]
        if (name, home) not in homes:
            findings.append(f"{name}: home directory {home} does not exist")
            continue
        mode, owner, _ = homes[(name, home)]
        if owner != name:
            findings.append(f"{name}: home directory {home} is owned by {owner}")
        if mode & 0o027:
            findings.append(f"{name}: home directory {home} has mode {mode:04o}, more permissive than 0750")
    require(findings)


DOT_FILE_LIMITS = {".netrc": 0o600, ".bash_history": 0o600}   # other dot files: at most 0644
FORBIDDEN_DOT_FILES = {".forward", ".rhosts"}                  # mail forwarding and rsh trust


@control("7.2.10", violate="echo ops@example.com > /root/.forward",
         needs=["passwd", "group", "homes", "login_shells"])
def test_interactive_dot_files(facts, test_user):
    """Interactive users' dot files: no .forward or .rhosts, nothing writable by others, all their own."""
    group_names = {}
    for row in facts.group:
        group_names.setdefault(row[2], row[0])        # the first group of a GID is the one ls shows
    homes, findings = _homes(facts), []
    for row in _interactive(facts, test_user):
        name, group, home = row[0], group_names.get(row[3], row[3]), row[5].rstrip("/")
        for (user, path), (mode, owner, file_group) in sorted(homes.items()):
            base = path.rsplit("/", 1)[-1]
            if user != name or path.rsplit("/", 1)[0] != home or not base.startswith("."):
                continue
            limit = DOT_FILE_LIMITS.get(base, 0o644)
            if base in FORBIDDEN_DOT_FILES:
                findings.append(f"{path} exists")
            elif mode & ~limit & 0o7777:
                findings.append(f"{path} has mode {mode:04o}, more permissive than {limit:04o}")
            if owner != name or file_group != group:
                findings.append(f"{path} is owned by {owner}:{file_group}, expected {name}:{group}")
    require(findings)
