"""1.6.1 Message of the day: what a user is shown after login, static and dynamic."""

from pipeline.checks import facts as fact_sections
from pipeline.checks.kinds import KINDS
from pipeline.checks.authoring import control, findings_for, require

# pam_motd shows /etc/motd after the output of the /etc/update-motd.d scripts (/run/motd.dynamic).
fact_sections.register("motd_dynamic", "run-parts --lsbsysinit /etc/update-motd.d 2>/dev/null")


def dynamic_motd_findings(text):
    leak = KINDS["banners"].LEAKS.search(text)
    return [f"/etc/update-motd.d prints {leak.group(0)!r} at login: {text.strip()[:80]!r}"] if leak else []


@control("1.6.1", violate="echo 'Welcome to Debian GNU/Linux 12 (bookworm)' > /etc/motd",
         needs=["motd_dynamic"], services=["accounts"])
def test_motd(facts, control_values):
    """/etc/motd is the company banner and neither it nor the dynamic motd names the OS or kernel."""
    require(findings_for(control_values, facts) + dynamic_motd_findings(facts.raw("motd_dynamic")))
