"""6.3 Integrity checking with AIDE: installed with a database to come, and protecting the audit
tools (the rest: 6.3-integrity.yaml)."""

import re

from pipeline.checks.facts import register
from pipeline.checks.authoring import control, findings_for, require

DATABASE = "/var/lib/aide/aide.db"     # aide.conf database_in

# AIDE's selection lines for programs in (/usr)/sbin and /bin, as `file:line`, in the order AIDE
# reads its configuration: aide.conf, then aide.conf.d (@@x_include). One grep: a loop over the
# ~200 snippet files takes most of a minute under emulation.
register("aide_sbin_rules", "grep -H -E '^[[:space:]]*=?/(usr/)?s?bin/' /etc/aide/aide.conf "
                            "/etc/aide/aide.conf.d/* 2>/dev/null")

# Debian's aide.conf includes only the aide.conf.d files whose names match this.
INCLUDED = re.compile(r"^[a-zA-Z0-9_-]+$")


def _init_timer(values):
    return [("unit_files", values["params"]["init_timer"])]


@control("6.3.1", violate="dpkg --remove --force-depends aide", needs=[("stat", DATABASE), _init_timer],
         services=["filesystem"])
def test_aide_installed_with_database(facts, control_values):
    """AIDE's packages are installed, and its database exists or is built at first boot (init timer)."""
    findings = findings_for(control_values, facts)
    timer = control_values["params"]["init_timer"]
    if not facts.stat(DATABASE).exists and facts.unit_files.get(timer) != "enabled":
        findings.append(f"AIDE has no database ({DATABASE}) and {timer}, which builds it, is "
                        f"{facts.unit_files.get(timer, 'not installed')}")
    require(findings)


# Read as text, like CIS's own audit: `aide --path-check` answers exactly, but parses the whole
# configuration for each path (about 30 s per path under emulation).
@control("6.3.3", violate="sed -i 's/+sha512//' /etc/aide/aide.conf.d/70_golden_cis_audit_tools",
         needs=["aide_sbin_rules"], services=["auditd", "filesystem"])
def test_audit_tools_protected_by_aide(facts, control_values):
    """Every audit tool has an AIDE selection line with the baseline's attributes, and none with fewer."""
    tools = control_values["params"]["tools"]
    wanted = set(control_values["params"]["attributes"].split("+"))
    rules = {tool: [] for tool in tools}
    for entry in facts.lines("aide_sbin_rules"):
        path, _, line = entry.partition(":")
        if path != "/etc/aide/aide.conf" and not INCLUDED.match(path.rsplit("/", 1)[-1]):
            continue
        words = line.split("#", 1)[0].split()
        selected = words[0].lstrip("=").rstrip("$") if len(words) >= 2 else None
        if selected in rules:
            rules[selected].append(set(words[-1].split("+")))
    findings = []
    for tool, found in rules.items():
        if not found:
            findings.append(f"AIDE has no selection line for {tool}")
        for attributes in found:
            if wanted - attributes:
                findings.append(f"AIDE checks {tool} without {'+'.join(sorted(wanted - attributes))}")
    require(findings)
