"""6.1 System logging: the judgements that are not a table of values (the rest: 6.1-logging.yaml)."""

import fnmatch
import re

from pipeline.checks.facts import cat_files, register
from pipeline.checks.authoring import control, require

# Every file under /var/log (symlinks followed, as a reader of the logs would): path|mode|owner|group.
register("var_log_files", "find -L /var/log -type f -exec stat -L -c '%n|%a|%U|%G' {} + 2>/dev/null")

# logrotate's configuration, `### path` and the text of each file: the files a rotation will create.
register("logrotate_conf", cat_files("/etc/logrotate.conf /etc/logrotate.d/*"))

# rsyslog inputs that receive from the network, in the legacy and the RainerScript syntax.
NETWORK_INPUT = re.compile(r"\b(imtcp|imudp|imrelp)\b|\$(InputTCPServerRun|UDPServerRun|InputRELPServerRun)\b",
                           re.IGNORECASE)


@control("6.1.3.7", violate="rsyslog_set 'module(load=\"imtcp\")' 'input(type=\"imtcp\" port=\"514\")'",
         needs=[("config", "rsyslog"), "listening"], services=["logging"])
def test_rsyslog_does_not_receive_remote_logs(facts):
    """rsyslog is only a client: no network input in its configuration, and no socket it listens on."""
    findings = [f"rsyslog configuration receives from the network: {line.strip()}"
                for line in facts.raw("config:rsyslog").splitlines()
                if not line.lstrip().startswith("#") and NETWORK_INPUT.search(line)]
    for line in facts.lines("listening"):
        if '"rsyslogd"' in line:
            netid, _, _, _, local, *_ = line.split()
            findings.append(f"rsyslogd listens on {netid} {local}")
    require(findings)


def log_classes(entries):
    """Baseline classes `globs:mode:owners:groups` as (globs, mode, owners, groups), in order."""
    for entry in entries:
        globs, mode, owners, groups = entry.split(":")
        yield globs.split(","), int(mode, 8), owners.split("|"), groups.split("|")


SCRIPTS = {"prerotate", "postrotate", "firstaction", "lastaction", "preremove"}


def rotation_creates(files):
    """What logrotate will create at a rotation: (config file, log path glob, mode, owner, group) for each
    path of a stanza whose effective `create` names them (None where it leaves one as the old file's).
    A stanza with `copytruncate` or `nocreate` creates nothing; directives outside a stanza, in
    /etc/logrotate.conf before its `include`, are every stanza's defaults."""
    defaults, out = {}, []
    for name, text in sorted(files.items(), key=lambda kv: kv[0] != "/etc/logrotate.conf"):
        paths, stanza, script = [], None, False
        for raw in text.splitlines():
            words = raw.split()
            if not words or words[0].startswith("#"):
                continue
            if script:
                script = words[0] != "endscript"
            elif words[0] in SCRIPTS:
                script = True
            elif stanza is None and words[-1].endswith("{"):
                paths += [w.strip('"') for w in words[:-1] + [words[-1][:-1]] if w.strip('"')]
                stanza = {}
            elif stanza is None and not (words[0].startswith("/") or words[0].startswith('"')):
                defaults[words[0]] = words[1:]
            elif stanza is None:
                paths += [w.strip('"') for w in words]
            elif words[0] == "}":
                settings = {**defaults, **stanza}
                for negation, cancelled in (("nocopytruncate", "copytruncate"), ("create", "nocreate"),
                                            ("nocreate", "create")):
                    if negation in stanza:
                        settings.pop(cancelled, None)
                create = settings.get("create")
                if create and not {"copytruncate", "nocreate"} & settings.keys():   # bare `create`: as the old file
                    mode, owner, group = (create + [None, None, None])[:3]
                    out += [(name, path, mode, owner, group) for path in paths]
                paths, stanza = [], None
            else:
                stanza[words[0]] = words[1:]
    return out


@control("6.1.4.1", violate="touch /var/log/auth.log && chmod 0644 /var/log/auth.log",
         needs=["var_log_files", "logrotate_conf"], services=["logging"])
def test_log_files_access(facts, control_values):
    """Each log file has at most the mode, and one of the owners and groups, of its class (first name
    match); so does each file logrotate's `create` will make (the files of tomorrow: nginx's stock
    `create 0640 www-data adm` passes today and fails after the first rotation)."""
    classes = list(log_classes(control_values["params"]["classes"]))

    def judge(what, name, mode, owner, group):
        match = next((c for c in classes if any(fnmatch.fnmatchcase(name, g) for g in c[0])), None)
        if match is None:
            return [f"{what} is in no log file class of the baseline"]
        _, limit, owners, groups = match
        found = []
        if mode is not None and int(mode, 8) & ~limit & 0o7777:
            found.append(f"{what} has mode {int(mode, 8):04o}, more permissive than {limit:04o}")
        if owner is not None and owner not in owners:
            found.append(f"{what} is owned by {owner}, expected {' or '.join(owners)}")
        if group is not None and group not in groups:
            found.append(f"{what} has group {group}, expected {' or '.join(groups)}")
        return found
    findings = []
    for line in facts.lines("var_log_files"):
        path, mode, owner, group = line.rsplit("|", 3)
        findings += judge(path, path.rsplit("/", 1)[-1], mode, owner, group)
    for conf, path, mode, owner, group in rotation_creates(facts.files("logrotate_conf")):
        if path.startswith("/var/log/"):
            findings += judge(f"{path} as logrotate creates it ({conf})", path.rsplit("/", 1)[-1], mode, owner, group)
    require(findings)
