"""Audit: auditd running, the baseline's rules for this image loaded, and a watched action recorded."""

import re
import time
import uuid

import pytest

from pipeline.checks.kinds import _audit_normal
from pipeline.checks.authoring import violates

# auditd.service restarts on failure: masked (until the next boot) first, it stays dead.
KILL_AUDITD = "systemctl mask --runtime auditd.service && systemctl kill -s KILL auditd.service; sleep 1"


@violates(KILL_AUDITD)
def test_auditd_running_with_the_baselines_rules(host, baseline, image_spec):
    assert host.service("auditd").is_running, "auditd is not running"
    expected = [rule for rec in baseline.catalogue if baseline.applies(rec.id, image_spec.role, image_spec.level)
                for rule in baseline.values(rec.id).get("audit_rules", [])]
    loaded = {_audit_normal(l) for l in host.run("sudo auditctl -l").stdout.splitlines()}
    missing = [r for r in expected if _audit_normal(r) not in loaded]
    assert not missing, f"{len(missing)} baseline audit rules not loaded, e.g. {missing[:3]}"


@violates(KILL_AUDITD)
def test_a_watched_action_produces_an_audit_record(host):
    rules = host.run("sudo auditctl -l").stdout
    watch = re.search(r"^-w (\S+) -p \S*w\S* -k (\S+)$", rules, re.M)
    if watch:
        path, key = watch.groups()
    else:
        if "enabled 2" in host.run("sudo auditctl -s").stdout:
            pytest.fail("no write-watch rule is loaded and the rules are immutable")
        path, key = "/etc/golden/hardening.json", "golden-acceptance"
        assert host.run(f"sudo auditctl -w {path} -p wa -k {key}").rc == 0
    # Only a record of this write counts (the key may match earlier writes, and the guest clock may
    # have been moved): the command line, which the record carries, names a file nothing else does.
    marker = f"/run/golden-audit-{uuid.uuid4().hex[:12]}"
    assert host.run(f"sudo touch {path} {marker}; rm -f {marker}").rc == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if marker in host.run(f"sudo ausearch --input-logs -k {key} -i </dev/null 2>/dev/null").stdout:
            return
        time.sleep(1)
    raise AssertionError(f"no audit record with key {key} for the write to {path} just made")
