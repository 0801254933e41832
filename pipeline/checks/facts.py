"""Facts about a host, gathered in one remote round trip and read by every check.

Testinfra asks one remote command per attribute; with hundreds of controls that is the slow
part. Here the checks first declare what they need (a `Request`), one shell script gathers all
of it, and `Facts` parses the sections lazily.

    req = Request(); req.add("sshd"); req.add("stat", "/etc/passwd")
    facts = Facts.parse(run_as_root(req.script()))
    facts.sshd["maxauthtries"]           # ['4']
    facts.stat("/etc/passwd").mode       # 0o644
"""

import functools
import inspect
import json
import os
import re
import shlex
from dataclasses import dataclass

MARK = "@@golden-fact@@"

def cat_files(paths):
    """Shell: each existing file of `paths` (words, globs allowed) as a `### path` header and its
    text, read by the shell itself: a `cat` per file costs ~20 ms under emulation."""
    return (f"for f in {paths}; do [ -f \"$f\" ] && {{ echo \"### $f\"; "
            "while IFS= read -r l || [ -n \"$l\" ]; do printf '%s\\n' \"$l\"; done < \"$f\"; }; done")


LOGIN_SHELLS = "grep '^/' /etc/shells | grep -v '/nologin$'"     # CIS's "valid login shells"

# systemctl for checks: under emulation on a busy host a query can outlast systemd's default 25 s
# D-Bus timeout, and a timed-out query prints nothing (which a check must never read as "none").
BUS_TIMEOUT = "SYSTEMD_BUS_TIMEOUT=120"
SYSTEMCTL = f"{BUS_TIMEOUT} systemctl"

# Sections without parameters: name -> shell snippet (runs as root, stderr folded in where useful).
SECTIONS = {
    "uname": "uname -r",
    "sshd": "sshd -T 2>&1",
    "sysctl": "sysctl -a 2>/dev/null",
    "sysctl_files": "systemd-analyze cat-config sysctl.d 2>/dev/null",
    "lsmod": "cat /proc/modules",
    "modprobe_config": "modprobe --showconfig 2>/dev/null | grep -E '^(blacklist|install) '",
    "packages": "dpkg-query -W -f '${Package}\\t${db:Status-Status}\\t${Version}\\n' 2>/dev/null",
    "units": f"{SYSTEMCTL} list-units --all --no-legend --no-pager --plain 2>/dev/null",
    "mounts": "findmnt -J -l -o TARGET,SOURCE,FSTYPE,OPTIONS 2>/dev/null",
    "fstab": "cat /etc/fstab 2>/dev/null",
    "passwd": "getent passwd",
    "group": "getent group",
    "shadow": "cat /etc/shadow",
    "gshadow": "cat /etc/gshadow",
    "cmdline": "cat /proc/cmdline",
    "grub_cfg": "cat /boot/grub/grub.cfg 2>/dev/null",
    "pam": cat_files("/etc/pam.d/*"),
    "audit_loaded": "auditctl -l 2>&1",
    "audit_status": "auditctl -s 2>&1",
    "audit_files": cat_files("/etc/audit/rules.d/*.rules"),
    "sudoers": cat_files("/etc/sudoers /etc/sudoers.d/*"),
    "nft": "nft -j list ruleset 2>&1",
    "listening": "ss -Htulnp 2>/dev/null",
    # What runs now, less the collector itself: its shell ($$) and everything descended from it.
    "processes": "ps -eo pid=,ppid=,user=,comm=,args= | awk -v self=$$ '"
                 "{ line[NR] = $0; pid[NR] = $1; parent[$1] = $2 } "
                 "END { for (i = 1; i <= NR; i++) { p = pid[i]; n = 0; "
                 "while (p > 1 && p != self && n++ < 256) p = parent[p]; "
                 "if (p != self) { l = line[i]; sub(/^ *[0-9]+ +[0-9]+ +/, \"\", l); print l } } }'",
    "login_shells": LOGIN_SHELLS,
    "local_mounts": "findmnt -n -l -o TARGET -t ext2,ext3,ext4,xfs,btrfs,vfat,tmpfs",
    # The filesystem scans in one walk of every local filesystem, each path tagged: S (setuid or
    # setgid file; not on tmpfs), W (world writable; directories only without the sticky bit),
    # U (no user or no group: ids compared with those NSS lists once, as find's -nouser would ask
    # NSS about every file). Facts derive suid_sgid, world_writable and unowned from it.
    "fs_scan": "u=$(getent passwd | cut -d: -f3 | sed 's/.*/! -uid &/' | tr '\\n' ' '); "
               "g=$(getent group | cut -d: -f3 | sed 's/.*/! -gid &/' | tr '\\n' ' '); "
               "if [ -n \"$u\" ] && [ -n \"$g\" ]; then "
               "findmnt -n -l -o TARGET,FSTYPE -t ext2,ext3,ext4,xfs,btrfs,tmpfs | while read -r m t; do "
               "if [ \"$t\" = tmpfs ]; then s=-false; else s='-type f ( -perm -4000 -o -perm -2000 )'; fi; "
               "find \"$m\" -xdev \\( $s -printf 'S %p\\n' \\) , "
               "\\( \\( -type f -perm -0002 -o -type d -perm -0002 ! -perm -1000 \\) -printf 'W %p\\n' \\) , "
               "\\( \\( \\( $u \\) -o \\( $g \\) \\) -printf 'U %p\\n' \\) 2>/dev/null; done; "
               "echo @@scan-complete@@; fi",
    # Users with a login shell only (as login_shells lists them): the checks judge no other homes.
    "homes": f"s=\" $({LOGIN_SHELLS} | tr '\\n' ' ')\"; "
             "getent passwd | while IFS=: read -r u _ uid _ _ h sh; do case \"$s\" in *\" $sh \"*) ;; *) continue;; esac; "
             "[ -d \"$h\" ] && stat -L -c \"$u|$uid|$sh|%n|%a|%U|%G\" \"$h\" && "
             "find \"$h\" -maxdepth 1 -name '.*' -type f -exec stat -L -c \"$u|$uid|$sh|%n|%a|%U|%G\" {} +; done 2>/dev/null",
    "root_env": "su -l root -s /bin/bash -c 'echo \"PATH=$PATH\"; echo \"UMASK=$(umask)\"' 2>&1",
    "login_env": "su -l nobody -s /bin/bash -c 'echo \"UMASK=$(umask)\"; echo \"TMOUT=${TMOUT:-}\"; "
                 "readonly -p | grep -c TMOUT' 2>&1",
}

# Snapshots of what runs now: taken before any other section starts, so that no probe of the
# collector (`sshd -T`, `chronyd -p`, `modprobe -n`...) is running yet to be seen in them.
SNAPSHOTS = {"processes", "listening"}

# Configuration read as the program reads it: name -> (command, separator; None means whitespace).
CONFIG_SOURCES = {
    "journald": ("systemd-analyze cat-config systemd/journald.conf", "="),
    "coredump": ("systemd-analyze cat-config systemd/coredump.conf", "="),
    "auditd": ("cat /etc/audit/auditd.conf", "="),
    # libpwquality reads the drop-ins first and the main file last; pam_pwquality's arguments win over both.
    "pwquality": ("cat /etc/security/pwquality.conf.d/*.conf /etc/security/pwquality.conf 2>/dev/null; "
                  "sed -n 's/^[[:space:]]*-\\{0,1\\}password[[:space:]].*pam_pwquality\\.so//p' /etc/pam.d/common-password "
                  "| tr -s ' \\t' '\\n'", "="),
    # pam_faillock's arguments win over faillock.conf.
    "faillock": ("cat /etc/security/faillock.conf 2>/dev/null; "
                 "sed -n 's/^[[:space:]]*-\\{0,1\\}auth[[:space:]].*pam_faillock\\.so//p' /etc/pam.d/common-auth "
                 "| tr -s ' \\t' '\\n'", "="),
    "login_defs": ("cat /etc/login.defs", None),
    "useradd": ("useradd -D", "="),
    "rsyslog": ("cat /etc/rsyslog.conf /etc/rsyslog.d/*.conf", None),
    "chrony": ("cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources", None),
}

# Sections with parameters: name -> function(params) -> shell snippet printing one record per param.
GLOB_SAFE = re.compile(r"^/[A-Za-z0-9_./*?+@:-]+$")


def _stat_snippet(paths):
    # Plain paths: one stat for all (a process each costs ~20 ms under emulation); globs expand on
    # the host, each on its own (unquoted; GLOB_SAFE keeps them free of anything else the shell reads).
    plain = sorted(p for p in paths if not any(c in p for c in "*?"))
    parts = []
    if plain:
        quoted = " ".join(shlex.quote(p) for p in plain)
        parts.append(f"stat -L -c '%n|%n|%a|%U|%G|%F' {quoted} 2>/dev/null; "
                     f"for p in {quoted}; do [ -e \"$p\" ] || echo \"$p|absent\"; done")
    for p in sorted(set(paths) - set(plain)):
        parts.append(f"for p in {p}; do if [ -e \"$p\" ]; then stat -L -c '{p}|%n|%a|%U|%G|%F' \"$p\"; "
                     f"else echo '{p}|absent'; fi; done")
    return "; ".join(parts)


# A unit every systemd host has: listed with the asked units, so an empty answer means systemctl failed.
ALWAYS_UNIT = "basic.target"


def _unit_files_snippet(units):
    # Only the asked units: listing every unit file computes each one's state (7-11 s under emulation).
    quoted = " ".join(shlex.quote(u) for u in sorted(set(units) | {ALWAYS_UNIT}))
    return f"{SYSTEMCTL} list-unit-files --no-legend --no-pager --plain -- {quoted} 2>/dev/null"


def _modules_snippet(names):
    quoted = " ".join(shlex.quote(n) for n in sorted(names))
    # Lines joined by the shell, not by head and tr: two processes a module instead of four.
    return (f"set -f; for m in {quoted}; do set -- $(modinfo -n \"$m\" 2>/dev/null); "
            "p=$(modprobe -n -v \"$m\" 2>&1); printf '%s|%s|' \"$m\" \"${1:-}\"; echo $p; done")


def _config_snippet(sources):
    return "\n".join(f"echo '{MARK} config:{name}'; {CONFIG_SOURCES[name][0]} 2>/dev/null" for name in sorted(sources))


def _content_snippet(paths):
    quoted = " ".join(shlex.quote(p) for p in sorted(paths))
    return (f"for p in {quoted}; do echo \"### $p\"; if [ -f \"$p\" ] && [ -r \"$p\" ]; then "
            "while IFS= read -r l || [ -n \"$l\" ]; do printf '%s\\n' \"$l\"; done < \"$p\"; "
            "else echo '@@absent@@'; fi; done")


PARAM_SECTIONS = {"stat": _stat_snippet, "modules": _modules_snippet, "config": _config_snippet,
                  "content": _content_snippet, "unit_files": _unit_files_snippet}


# Sections that always print something on a working system: empty means the command failed. A host
# always runs processes the collector did not start (PID 1, the sshd the suite came in through), and
# something listens on it (that sshd): an empty snapshot is a failed ps or ss, not a quiet host.
NEVER_EMPTY = {"sshd", "sysctl", "packages", "unit_files", "units", "mounts", "passwd", "group", "shadow", "cmdline",
               "login_shells", "processes", "listening"}
# Filesystem scans end with a marker: without it the scan did not finish, and an empty list
# would wrongly read as "nothing found".
SCANS = {"suid_sgid": "S", "world_writable": "W", "unowned": "U"}     # derived from fs_scan by tag
SCAN_COMPLETE = "@@scan-complete@@"


# What every collector script runs under: a fixed locale and the system's own tools.
ENVIRONMENT = "export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin"


class FactError(RuntimeError):
    """A fact could not be gathered: the checks that need it error out (they never pass or fail on it)."""


class Request:
    """What a set of checks needs to know about a host."""

    def __init__(self):
        self.sections = set()
        self.params = {name: set() for name in PARAM_SECTIONS}

    def add(self, section, *params):
        if section in SCANS:
            section = "fs_scan"
        if section in PARAM_SECTIONS:
            self.params[section].update(params)
        elif section in SECTIONS:
            self.sections.add(section)
        else:
            raise KeyError(f"unknown fact section {section!r}")

    def merge(self, other):
        self.sections |= other.sections
        for name, values in other.params.items():
            self.params[name] |= values

    def names(self):
        return sorted(self.sections | {n for n, v in self.params.items() if v})

    def _named_parts(self):
        parts = [(name, f"echo '{MARK} {name}'; {SECTIONS[name]}") for name in sorted(self.sections)]
        for name, values in sorted(self.params.items()):
            if values and name == "config":
                parts.append((name, _config_snippet(values)))
            elif values:
                parts.append((name, f"echo '{MARK} {name}'; {PARAM_SECTIONS[name](values)}"))
        return parts

    def parts(self):
        """One shell snippet per section, each printing its own marker and records."""
        return [part for _, part in self._named_parts()]

    def script(self):
        """One script for the whole request. The snapshots (SNAPSHOTS) are taken first; then the
        other sections run concurrently (each its own output file, printed in order at the end):
        the scans wait on the disk while the rest runs."""
        lines = ["#!/bin/sh", ENVIRONMENT,
                 "d=$(mktemp -d) || exit 1", "trap 'rm -rf \"$d\"' EXIT"]
        named = self._named_parts()
        for snapshots in (True, False):
            lines += [f"(\n{part}\n) >\"$d/{i:04d}\" &" for i, (name, part) in enumerate(named)
                      if (name in SNAPSHOTS) == snapshots]
            lines.append("wait")
        lines.append("for f in \"$d\"/*; do [ -f \"$f\" ] && cat \"$f\"; done")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Stat:
    path: str
    exists: bool
    mode: int = 0
    owner: str = ""
    group: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Module:
    name: str
    file: str             # modinfo -n: path of the .ko, "(builtin)", or "" if the kernel has no such module
    modprobe: str         # what `modprobe -n -v` would do
    loaded: bool
    blacklisted: bool

    @property
    def available(self):
        """Loadable on request: present, and modprobe would not run a substitute command."""
        if not self.file:
            return False
        # modprobe -n -v lists the dependencies' insmods first, then the module's own command.
        return not re.search(r"(^|\s)install\s+/bin/(false|true)\b", self.modprobe)


class Facts:
    def __init__(self, sections):
        self.sections = sections

    @classmethod
    def parse(cls, text):
        sections, current = {}, None
        for line in text.splitlines():
            if line.startswith(MARK + " "):
                current = line[len(MARK) + 1:].strip()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
        return cls({k: "\n".join(v) for k, v in sections.items()})

    def to_json(self):
        return json.dumps(self.sections)

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))

    def _scanned(self, name):
        """One scan's paths out of the tagged fs_scan, sorted and unique."""
        text = self.sections["fs_scan"].rstrip()
        if not text.endswith(SCAN_COMPLETE):
            raise FactError(f"the {name} scan did not finish on the host")
        tag = SCANS[name] + " "
        return "\n".join(sorted({line[2:] for line in text.splitlines() if line.startswith(tag)}))

    def lines(self, name):
        """Non-empty lines of a section."""
        return [l for l in self.raw(name).splitlines() if l.strip()]

    def files(self, name):
        """A section made of `### path` headers and file contents: path -> text."""
        out, current = {}, None
        for line in self.raw(name).splitlines():
            if line.startswith("### "):
                current = line[4:].strip()
                out[current] = []
            elif current is not None:
                out[current].append(line)
        return {k: "\n".join(v) for k, v in out.items()}

    def content(self, path):
        """Text of a file asked for with request.add("content", path); None if it does not exist."""
        text = self.files("content").get(path)
        return None if text is None or text == "@@absent@@" else text

    def config(self, source):
        """Effective key -> value of a configuration source (the last setting wins; flags map to "")."""
        sep = CONFIG_SOURCES[source][1]
        out = {}
        for line in self.raw(f"config:{source}").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("["):
                continue
            if sep is None:
                key, *rest = line.split(None, 1)
                value = rest[0] if rest else ""
            elif sep in line:
                key, _, value = line.partition(sep)
            else:
                key, value = line, ""
            out[key.strip()] = value.strip().strip('"')
        return out

    def raw(self, name):
        if name in SCANS and name not in self.sections and "fs_scan" in self.sections:
            return self._scanned(name)
        if name not in self.sections:
            raise FactError(f"fact section {name!r} was not collected")
        if name in NEVER_EMPTY and not self.sections[name].strip():
            # A command that failed on the host must not read as "nothing installed/enabled".
            raise FactError(f"fact section {name!r} came back empty: `{SECTIONS.get(name, name)}` failed on the host")
        if name in SCANS:
            text = self.sections[name].rstrip()
            if not text.endswith(SCAN_COMPLETE):
                raise FactError(f"the {name} scan did not finish on the host")
            return text[:-len(SCAN_COMPLETE)]
        return self.sections[name]

    @functools.cached_property
    def sshd(self):
        """Effective sshd settings (`sshd -T`): lowercase keyword -> list of values."""
        out = {}
        for line in self.raw("sshd").splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                out.setdefault(key.lower(), []).append(value.strip())
        return out

    @functools.cached_property
    def sysctl(self):
        return _parse_sysctl(self.raw("sysctl").splitlines())

    @functools.cached_property
    def sysctl_persisted(self):
        """Values applied at boot: key -> (value, file), later files overriding earlier ones."""
        out, source = {}, None
        for line in self.raw("sysctl_files").splitlines():
            if line.startswith("# /"):
                source = line[2:].strip()
                continue
            for key, value in _parse_sysctl([line]).items():
                out[key.lstrip("-")] = (value, source)
        return out

    @functools.cached_property
    def modules(self):
        loaded = {line.split()[0] for line in self.raw("lsmod").splitlines() if line.strip()}
        blacklisted = set()
        for line in self.raw("modprobe_config").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "blacklist":
                blacklisted.add(words[1].replace("-", "_"))
        out = {}
        for line in self.raw("modules").splitlines():
            name, file, probe = (line.split("|", 2) + ["", ""])[:3]
            norm = name.replace("-", "_")
            out[name] = Module(name, file.strip(), probe.strip(), norm in loaded, norm in blacklisted)
        return out

    @functools.cached_property
    def _stats(self):
        out = {}
        for line in self.raw("stat").splitlines():
            parts = line.split("|")
            if len(parts) == 2 and parts[1] == "absent":
                out.setdefault(parts[0], [])
            elif len(parts) >= 6:
                out.setdefault(parts[0], []).append(Stat(parts[1], True, int(parts[2], 8), parts[3], parts[4], parts[5]))
        return out

    def stats(self, pattern):
        """Every file a path or glob asked for with request.add("stat", ...) matched (empty: none)."""
        return self._stats[pattern]

    def stat(self, path):
        found = self._stats[path]
        return found[0] if found else Stat(path, False)

    @functools.cached_property
    def packages(self):
        """Installed packages: name -> version (packages dpkg knows but has removed are left out)."""
        out = {}
        for line in self.raw("packages").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1] == "installed":
                out[parts[0].split(":")[0]] = parts[2]
        return out

    @functools.cached_property
    def unit_files(self):
        """unit name -> enablement state (enabled, disabled, masked, static, alias, ...)."""
        out = {}
        for line in self.raw("unit_files").splitlines():
            words = line.split()
            if len(words) >= 2:
                out[words[0]] = words[1]
        return out

    @functools.cached_property
    def units(self):
        """loaded unit name -> (load state, active state, sub state)."""
        out = {}
        for line in self.raw("units").splitlines():
            words = line.split()
            if len(words) >= 4:
                out[words[0]] = (words[1], words[2], words[3])
        return out

    @functools.cached_property
    def mounts(self):
        text = self.raw("mounts").strip()
        if not text:
            return {}
        return {fs["target"]: fs for fs in json.loads(text).get("filesystems", [])}

    def _table(self, name, width):
        rows = []
        for line in self.raw(name).splitlines():
            if line.strip():
                parts = line.split(":")
                rows.append(parts + [""] * (width - len(parts)))
        return rows

    @functools.cached_property
    def passwd(self):
        return self._table("passwd", 7)

    @functools.cached_property
    def group(self):
        return self._table("group", 4)

    @functools.cached_property
    def shadow(self):
        return self._table("shadow", 9)


def _parse_sysctl(lines):
    out = {}
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip().replace("/", ".")] = " ".join(value.split())
    return out


def register(name, snippet, snapshot=False):
    """Declare an extra fact section from a Python control module: `name` -> shell run as root;
    `snapshot=True` for a view of what runs now (taken before any probe starts, see SNAPSHOTS).

        facts.register("chrony_sources", "chronyc -n sources 2>&1")
    """
    # Another copy of the same check file may redefine it (impact analysis loads the file as it
    # is at another git ref); two different files may not.
    module = os.path.basename(inspect.stack()[1].filename)
    if SECTIONS.get(name, snippet) != snippet and _REGISTERED_BY.get(name) != module:
        raise ValueError(f"fact section {name!r} is already defined differently"
                         f" (by {_REGISTERED_BY.get(name, 'the collector')})")
    SECTIONS[name] = snippet
    _REGISTERED_BY[name] = module
    if snapshot:
        SNAPSHOTS.add(name)


_REGISTERED_BY = {}
