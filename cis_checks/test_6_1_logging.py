"""6.1 System logging: the judgements that are not a table of values (the rest: 6.1-logging.yaml)."""

import fnmatch
import re

from pipeline.checks.facts import register
from pipeline.checks.authoring import control, require

# Every file under /var/log (symlinks followed, as a reader of the logs would): path|mode|owner|group.
register("var_log_files", "find -L /var/log -type f -exec stat -L -c '%n|%a|%U|%G' {} + 2>/dev/null")

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


@control("6.1.4.1", violate="touch /var/log/auth.log && chmod 0644 /var/log/auth.log",
         needs=["var_log_files"], services=["logging"])
def test_log_files_access(facts, control_values):
    """Each log file has at most the mode, and one of the owners and groups, of its class (first name match)."""
    classes = list(log_classes(control_values["params"]["classes"]))
    findings = []
    for line in facts.lines("var_log_files"):
        path, mode, owner, group = line.rsplit("|", 3)
        name = path.rsplit("/", 1)[-1]
        match = next((c for c in classes if any(fnmatch.fnmatchcase(name, g) for g in c[0])), None)
        if match is None:
            findings.append(f"{path} is in no log file class of the baseline")
            continue
        _, limit, owners, groups = match
        extra = int(mode, 8) & ~limit & 0o7777
        if extra:
            findings.append(f"{path} has mode {int(mode, 8):04o}, more permissive than {limit:04o}")
        if owner not in owners:
            findings.append(f"{path} is owned by {owner}, expected {' or '.join(owners)}")
        if group not in groups:
            findings.append(f"{path} has group {group}, expected {' or '.join(groups)}")
    require(findings)
