"""Run directories on disk with real files, for the gate, store and report tests."""

import hashlib
import json
import os

from pipeline.evidence.rundir import Run

PASSING_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="2">
<testcase classname="cis_checks.5.1-ssh-server.yaml" name="5.1.20" time="0.01">
  <properties><property name="cis_id" value="5.1.20"/><property name="title" value="Ensure sshd PermitRootLogin is disabled"/><property name="level" value="1"/></properties>
</testcase>
<testcase classname="acceptance.test_boot" name="test_reached_multi_user" time="0.2"/>
</testsuite></testsuites>
"""

FAILING_JUNIT = PASSING_JUNIT.replace('failures="0"', 'failures="1"').replace(
    '<property name="level" value="1"/></properties>',
    '<property name="level" value="1"/></properties><failure message="sshd permitrootlogin is yes">detail</failure>')

COLLECTION_ERROR_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="1">
<testcase classname="" name="cis_checks.5.1-ssh-server.yaml" time="0"><error message="collection failure">bad row</error></testcase>
</testsuite></testsuites>
"""

REBOOT_JUNIT = """<?xml version="1.0" ?>
<testsuites><testsuite name="reboot" tests="1" failures="0" errors="0" skipped="0">
<testcase name="test_reachable_and_running_after_reboot" classname="acceptance.reboot" time="48.0"/>
</testsuite></testsuites>
"""

HYGIENE_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="1">
<testcase classname="acceptance.test_hygiene" name="test_no_ssh_host_keys" time="0.01"/>
</testsuite></testsuites>
"""

EMPTY_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="0"></testsuite></testsuites>
"""


def make_run(root, version="golden-linux-2026.11.26+1", junit=PASSING_JUNIT, boot=True, test_exit=0,
             payload=b"qcow2 bytes of a candidate\n" * 1000, scan="pass"):
    run_dir = os.path.join(root, version)
    os.makedirs(os.path.join(run_dir, "boot"), exist_ok=True)
    run = Run(run_dir)
    with open(run.artifact, "wb") as fh:
        fh.write(payload)
    digest = hashlib.sha256(payload).hexdigest()
    _dump(run.path("artifact.json"), {"path": run.artifact, "sha256": digest})
    _dump(run.path("run.json"), {"version": version, "image": "linux", "role": "general-purpose", "level": 1,
                                 "commit": "test"})
    if boot:
        _dump(run.path("boot", "boot.json"), {"seconds_to_ssh": 30.0, "sha256_before": digest,
                                              "sha256_after": digest})
    if test_exit is not None:
        _dump(run.path("test.json"), {"exit_code": test_exit})
        _dump(run.path("hygiene.json"), {"exit_code": 0})
        for name, text in (("junit-reboot.xml", REBOOT_JUNIT), ("junit-hygiene.xml", HYGIENE_JUNIT)):
            with open(run.path(name), "w", encoding="utf-8") as fh:
                fh.write(text)
    if junit is not None:
        with open(run.path("junit.xml"), "w", encoding="utf-8") as fh:
            fh.write(junit)
    if scan is not None:
        _dump(run.path("scan.json"), {"decision": scan, "reasons": [] if scan == "pass" else
                                      ["CVE-2026-0001 in openssl 3.0.15-1~deb12u1: fixable at high"],
                                      "counts": {}})
    return run


def _dump(path, data):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def signing_key(directory):
    """A real ECDSA P-256 key pair for tests: (private path, public path)."""
    from pipeline.supply import attest
    path = os.path.join(directory, "test-signing.key")
    if os.path.exists(path):
        return path, path[:-4] + ".pub"
    return attest.generate_key(path)


def gated_and_signed(run, key_dir):
    """Decide the gate and sign the run, as the pipeline's gate and sign stages do; returns the public key."""
    from pipeline.evidence.gate import decide
    from pipeline.supply import attest
    decide(run)
    key, public = signing_key(key_dir)
    attest.attest(run, key)
    return public
