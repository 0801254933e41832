"""1.3.1 AppArmor: the profiles the kernel has loaded, and the processes they confine."""

import re

from pipeline.checks import facts as fact_sections
from pipeline.checks.authoring import control, findings_for, require

# The text report: apparmor 3.0's `aa-status --json` prints invalid JSON when a process is
# unconfined although its profile is loaded, the very case these controls look for. It lists
# processes, so it is a snapshot: taken before the collector's probes (chronyd -p...) start.
fact_sections.register("apparmor_status", "aa-status 2>&1", snapshot=True)

HEADING = re.compile(r"^(\d+) (profiles|processes) (?:are|have) (.*)\.$")


def apparmor_modes(text):
    """`aa-status` report -> ({profile: mode}, {"/exe (pid)": mode}); mode "unconfined" for a
    process whose profile is loaded but which runs without it."""
    profiles, processes, current = {}, {}, None
    for line in text.splitlines():
        heading = HEADING.match(line.strip())
        if heading:
            what, state = heading.group(2), heading.group(3)
            mode = re.fullmatch(r"in (\S+) mode", state)
            current = None
            if mode:
                current = (profiles if what == "profiles" else processes, mode.group(1))
            elif state == "unconfined but have a profile defined":
                current = (processes, "unconfined")
        elif current and line.startswith(" ") and line.strip():
            table, mode = current
            name = line.strip() if table is profiles else " ".join(line.split()[:2])
            table[name] = mode
    return profiles, processes


def confinement_findings(text, allowed):
    if "apparmor module is loaded" not in text:
        return [f"AppArmor is not active: {text.strip()[:200]}"]
    profiles, processes = apparmor_modes(text)
    findings = [] if profiles else ["no AppArmor profile is loaded"]
    findings += [f"profile {name} is in {mode} mode" for name, mode in sorted(profiles.items()) if mode not in allowed]
    findings += [f"process {name} is {mode}" for name, mode in sorted(processes.items()) if mode not in allowed]
    return findings


@control("1.3.1.3", violate="apparmor_unconfined_process", needs=["apparmor_status"], services=["apparmor"])
def test_apparmor_profiles_enforce_or_complain(facts, control_values):
    """Every loaded profile enforces or complains and confines its processes; AppArmor starts at boot."""
    require(findings_for(control_values, facts) +
            confinement_findings(facts.raw("apparmor_status"), ("enforce", "complain")))


@control("1.3.1.4", violate="apparmor_parser -r -C /etc/apparmor.d/lsb_release && "
                           "ln -sf /etc/apparmor.d/lsb_release /etc/apparmor.d/force-complain/lsb_release",
         needs=["apparmor_status"], services=["apparmor"])
def test_apparmor_profiles_enforcing(facts):
    """Level 2: every loaded profile, and every process it confines, is in enforce mode."""
    require(confinement_findings(facts.raw("apparmor_status"), ("enforce",)))
