"""3.1.2 Wireless interfaces: none present, and the wireless stack cannot be loaded."""

from pipeline.checks import facts as fact_sections
from pipeline.checks.authoring import control, findings_for, require

# A wireless interface has a `wireless` (or `phy80211`) entry in sysfs; print it with its driver.
fact_sections.register("wireless", "for i in /sys/class/net/*; do if [ -e \"$i/wireless\" ] || [ -e \"$i/phy80211\" ]; "
                                   "then echo \"${i##*/} $(basename \"$(readlink -f \"$i/device/driver/module\")\")\"; fi; done")


def wireless_findings(text):
    return [f"wireless interface {line.split()[0]} exists (driver {line.split()[-1]})" for line in text.splitlines() if line.strip()]


@control("3.1.2", violate="module_available cfg80211", needs=["wireless"], services=["network", "kernel"])
def test_wireless_disabled(facts, control_values):
    """No wireless interface exists and cfg80211, which every Wi-Fi driver needs, is not loadable."""
    require(findings_for(control_values, facts) + wireless_findings(facts.raw("wireless")))
