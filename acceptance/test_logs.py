"""Logs: a marker sent with logger reaches the journal and the syslog files; the journal persists."""

import time
import uuid

from pipeline.checks.authoring import violates


@violates("systemctl disable --now rsyslog.service syslog.socket 2>/dev/null; systemctl mask rsyslog.service")
def test_marker_reaches_journal_and_syslog(host):
    marker = f"golden-acceptance-{uuid.uuid4()}"
    host.run(f"logger -t golden-acceptance {marker}")
    deadline, in_journal, in_syslog = time.monotonic() + 20, False, False
    while time.monotonic() < deadline and not (in_journal and in_syslog):
        in_journal = marker in host.run("journalctl -t golden-acceptance --no-pager -q").stdout
        in_syslog = host.run(f"grep -rqs -- {marker} /var/log/syslog /var/log/messages").rc == 0
        time.sleep(1)
    assert in_journal and in_syslog, f"marker in journal: {in_journal}; in /var/log/syslog: {in_syslog}"


@violates("mkdir -p /etc/systemd/journald.conf.d && "
          "printf '[Journal]\\nStorage=volatile\\n' > /etc/systemd/journald.conf.d/99-violate.conf && "
          "rm -rf /var/log/journal")
def test_journal_persists_as_the_baseline_says(host, baseline):
    storage = baseline.values("6.1.2.4").get("config", {}).get("journald", {}).get("Storage", "persistent")
    effective = host.run("systemd-analyze cat-config systemd/journald.conf").stdout
    settings = [l.split("=", 1)[1].strip() for l in effective.splitlines() if l.strip().startswith("Storage=")]
    actual = settings[-1] if settings else "auto"
    machine_id = host.run("cat /etc/machine-id").stdout.strip()
    on_disk = host.run(f"sudo ls /var/log/journal/{machine_id}/").stdout.split()
    assert actual == storage, f"journald Storage is {actual}, the baseline says {storage}"
    assert any(f.endswith(".journal") for f in on_disk), f"no journal files in /var/log/journal/{machine_id}/"
