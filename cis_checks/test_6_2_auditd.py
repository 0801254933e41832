"""6.2 auditd: audit rules whose content depends on the system, and the lock on the rules (the rest:
6.2-auditd.yaml). Rules are judged loaded (`auditctl -l`) and on disk for the next boot (rules.d)."""

import re

from pipeline.checks.kinds import KINDS
from pipeline.checks.authoring import control, findings_for, require

SUDO_LOGFILE = re.compile(r"^\s*Defaults\b.*\blogfile\s*=\s*\"?([^\",\s]+)")


@control("6.2.3.3", violate="audit_rule_drop ' -k sudo_log_file'", needs=["sudoers"])
def test_sudo_log_file_changes_are_collected(facts, control_values):
    """The baseline's watch rules are in place, and they watch the file sudo actually logs to (5.2.3)."""
    findings = findings_for(control_values, facts)
    logfiles = {m.group(1) for line in facts.raw("sudoers").splitlines() if (m := SUDO_LOGFILE.match(line))}
    watched = {rule.split()[1] for rule in control_values["audit_rules"] if rule.startswith("-w ")}
    if not logfiles:
        findings.append("sudo has no log file (no `Defaults logfile=` in sudoers, CIS 5.2.3): nothing to watch")
    findings += [f"sudo logs to {path}, which no audit rule watches" for path in sorted(logfiles - watched)]
    require(findings)


@control("6.2.3.6", violate="install -m 4755 /usr/bin/true /usr/local/bin/golden-violation-suid",
         needs=["suid_sgid", "audit_loaded", "audit_files"], services=["auditd"])
def test_privileged_commands_are_collected(facts, control_values):
    """Every setuid or setgid program on a local filesystem has its execution audit rule."""
    template = control_values["params"]["rule"]
    wanted = [template.format(path=path) for path in facts.lines("suid_sgid")]
    require(KINDS["audit_rules"].evaluate(wanted, facts) if wanted else ["no setuid/setgid program was found"])


@control("6.2.3.20", violate="audit_rule_drop '-e 2'", needs=["audit_status", "audit_files"],
         services=["auditd"])
def test_audit_configuration_is_immutable(facts, control_values):
    """The kernel's audit rules are locked now, and the rules loaded at boot end by locking them again."""
    want = str(control_values["params"]["enabled"])
    status = dict(line.split(None, 1) for line in facts.lines("audit_status") if " " in line.strip())
    findings = []
    if status.get("enabled", "").strip() != want:
        findings.append(f"auditctl -s reports enabled {status.get('enabled', '(nothing)').strip()}, expected {want}")
    # augenrules reads rules.d in name order and keeps only the last -e.
    flags = [line.split()[1] for text in facts.files("audit_files").values() for line in text.splitlines()
             if line.split()[:1] == ["-e"] and len(line.split()) > 1]
    if not flags or flags[-1] != want:
        findings.append(f"the last -e in /etc/audit/rules.d is {flags[-1] if flags else '(none)'}, expected -e {want}")
    require(findings)
