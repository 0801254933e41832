"""1.5 Process hardening that is not a single value: core dumps."""

from pipeline.checks import facts as fact_sections
from pipeline.checks.authoring import control, findings_for, require

# pam_limits reads limits.conf, then limits.d/*.conf in C-locale order, as if concatenated.
fact_sections.register("limits", "for f in /etc/security/limits.conf /etc/security/limits.d/*.conf; do "
                                 "[ -f \"$f\" ] && { echo \"### $f\"; cat \"$f\"; }; done")


def core_limit_findings(files, limit):
    """Findings on the hard core-size limit: the last `*` entry must be `limit`, and no named user
    or group may be given another (it would override the wildcard for them)."""
    wildcard, findings = None, []
    for path, text in files.items():
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) != 4 or words[1] not in ("hard", "-") or words[2] != "core":
                continue
            if words[0] == "*":
                wildcard = (words[3], path)
            elif words[3] != str(limit):
                findings.append(f"{path}: {words[0]} may dump core (hard core {words[3]})")
    if wildcard is None:
        findings.insert(0, "no '* hard core' limit in /etc/security/limits.conf or limits.d")
    elif wildcard[0] != str(limit):
        findings.insert(0, f"{wildcard[1]}: '* hard core {wildcard[0]}', expected {limit}")
    return findings


@control("1.5.3", violate="echo '* hard core unlimited' > /etc/security/limits.d/99-violation.conf",
         needs=["limits"], services=["kernel"])
def test_core_dumps_restricted(facts, control_values):
    """No core dumps: hard limit 0 for every login, none from setuid programs, none kept by systemd-coredump."""
    limit = control_values["params"]["hard_core_limit"]
    require(findings_for(control_values, facts) + core_limit_findings(facts.files("limits"), limit))
