"""Time: one synchronisation daemon, configured with the spec's servers, actually synchronised,
and the guest clock close to the test host's."""

import time

from pipeline.checks.facts import SYSTEMCTL
from pipeline.checks.authoring import violates

DAEMONS = ("chrony.service", "systemd-timesyncd.service", "ntp.service", "ntpsec.service", "openntpd.service")
TOLERANCE_SECONDS = 2.0


# Two more daemons, so two or more run whatever chrony does: another scenario stops chrony, and
# chrony.service conflicts with ntpsec.service (starting one stops the other).
@violates("fake_package systemd-timesyncd systemd-timesyncd.service && fake_package openntpd openntpd.service")
def test_exactly_one_time_daemon(host):
    active = [d for d in DAEMONS if host.run(f"{SYSTEMCTL} is-active --quiet {d}").rc == 0]
    assert len(active) == 1, f"expected exactly one time synchronisation daemon running, found: {active or 'none'}"


@violates("echo 'server 192.0.2.123 iburst' > /etc/chrony/sources.d/golden.sources && "
          "{ chronyc reload sources || true; }")   # chronyd may be stopped by another scenario
def test_configured_with_the_specs_time_servers(host, image_spec):
    sources = host.run("chronyc -n sources").stdout
    configured = {line.split()[1] for line in sources.splitlines() if line[:2] in ("^*", "^+", "^-", "^?", "^x", "^~")}
    missing = [s for s in image_spec.time_servers if s not in configured]
    extra = sorted(configured - set(image_spec.time_servers))
    assert not missing and not extra, f"chrony sources {sorted(configured)}; spec time servers {image_spec.time_servers}"


@violates("systemctl stop chrony.service")
def test_synchronises_with_its_time_server(host, image_spec):
    deadline = time.monotonic() + 90
    tracking = sources = ""
    while time.monotonic() < deadline:
        sources = host.run("chronyc -n sources").stdout
        tracking = host.run("chronyc -n tracking").stdout
        synced = [l for l in sources.splitlines() if l.startswith("^*") and l.split()[1] in image_spec.time_servers]
        if synced and "Leap status     : Normal" in tracking:
            return
        time.sleep(3)
    raise AssertionError(f"chrony did not synchronise with {image_spec.time_servers} within 90s:\n{sources}\n{tracking}")


@violates("systemctl stop chrony.service && date -s @$(( $(date +%s) - 3600 )) > /dev/null")
def test_clock_close_to_the_test_host(host):
    before = time.time()
    guest = float(host.run("date +%s.%N").stdout.strip())
    after = time.time()
    offset = guest - (before + after) / 2
    assert abs(offset) <= TOLERANCE_SECONDS + (after - before) / 2, (
        f"guest clock is {offset:+.2f}s off the test host's (tolerance {TOLERANCE_SECONDS}s)")
