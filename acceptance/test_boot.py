"""The candidate booted cleanly and carries the record of its hardening."""

import json

from pipeline.checks.facts import SYSTEMCTL
from pipeline.checks.authoring import violates

BROKEN_UNIT = ("printf '[Unit]\\nDescription=golden scenario\\n[Service]\\nExecStart=/bin/false\\n' "
               "> /etc/systemd/system/golden-broken.service && systemctl daemon-reload && "
               "(systemctl start golden-broken.service || true)")


@violates(BROKEN_UNIT)
def test_reached_multi_user_with_no_failed_units(host):
    state = host.run(f"{SYSTEMCTL} is-system-running").stdout.strip()
    failed = host.check_output(f"{SYSTEMCTL} list-units --state=failed --no-legend --plain").strip()
    assert state == "running" and not failed, f"system is {state}; failed units:\n{failed}"


@violates("rm -f /etc/golden/hardening.json")
def test_hardening_record_present(host):
    record = host.file("/etc/golden/hardening.json")
    assert record.exists, "no /etc/golden/hardening.json: the image was not hardened by hardening-cis.sh"
    data = json.loads(record.content_string)
    assert data["hardening_version"] and data["applied"], data
