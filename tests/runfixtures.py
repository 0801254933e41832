"""Run directories on disk with real files, for the gate, store and report tests."""

import hashlib
import json
import os
import types
import re

from pipeline.evidence import suite
from pipeline.checks.coverage import coverage
from pipeline.evidence.junit import junit_name
from pipeline.evidence.rundir import Run

ATTEMPT = "7d0c2a52-6f0e-4c57-9a59-0f6b1e0c5a10"
ROLE, LEVEL = "general-purpose", 1
SSH_CASE = """<testcase classname="cis_checks.5.1-ssh-server.yaml" name="5.1.20" time="0.01">
  <properties><property name="cis_id" value="5.1.20"/><property name="title" value="Ensure sshd PermitRootLogin is disabled"/><property name="level" value="1"/></properties>
</testcase>"""


def _checked_nodeids():
    """A node id per checked control of the fixture's role and level, as the suite collects them."""
    ids = []
    for row in coverage(ROLE, LEVEL):
        if row["status"] == "checked":
            ids.append(f"{row['check'].split(':')[0]}::{row['id']}")
    return ids


SUITE_TESTS = [*_checked_nodeids(), "acceptance/test_boot.py::test_reached_multi_user"]
HYGIENE_TESTS = ["acceptance/test_hygiene.py::test_no_ssh_host_keys"]
PASSING_CASES = len(SUITE_TESTS) + len(HYGIENE_TESTS) + 1      # and the reboot case


def junit_document(nodeids, suite="pytest"):
    """A passing JUnit of these node ids, as pytest writes it (xunit1)."""
    cases = []
    for nodeid in nodeids:
        classname, name = junit_name(nodeid)
        if name == "5.1.20":
            cases.append(SSH_CASE)
        elif classname.startswith("cis_checks."):
            cases.append(f'<testcase classname="{classname}" name="{name}" time="0.01"><properties>'
                         f'<property name="cis_id" value="{name}"/></properties></testcase>')
        else:
            cases.append(f'<testcase classname="{classname}" name="{name}" time="0.2"/>')
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuites><testsuite name="{suite}" errors="0" failures="0" skipped="0" tests="{len(cases)}">\n'
            + "\n".join(cases) + "\n</testsuite></testsuites>\n")


PASSING_JUNIT = junit_document(SUITE_TESTS)

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

HYGIENE_JUNIT = junit_document(HYGIENE_TESTS)

EMPTY_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="0"></testsuite></testsuites>
"""


def make_run(root, version="golden-linux-2026.11.26+1", junit=PASSING_JUNIT, boot=True, test_exit=0,
             payload=b"qcow2 bytes of a candidate\n" * 1000, scan="pass", attempt=ATTEMPT):
    """A run directory whose current attempt (`attempt`) wrote every record, each carrying its id."""
    run_dir = os.path.join(root, version)
    os.makedirs(os.path.join(run_dir, "boot"), exist_ok=True)
    run = Run(run_dir)
    with open(run.artifact, "wb") as fh:
        fh.write(payload)
    digest = hashlib.sha256(payload).hexdigest()
    _dump(run.path("artifact.json"), {"path": run.artifact, "sha256": digest})
    _dump(run.path("run.json"), {"version": version, "image": "linux", "role": ROLE, "level": LEVEL,
                                 "commit": "test", "attempt": {"id": attempt}})
    if boot:
        _dump(run.path("boot", "boot.json"), {"attempt": attempt, "seconds_to_ssh": 30.0, "sha256_before": digest,
                                              "sha256_after": digest})
    if test_exit is not None:
        spec = types.SimpleNamespace(role=ROLE, level=LEVEL, name="linux", path="")
        _dump(run.path("test.json"), {"attempt": attempt, "exit_code": test_exit, "command": suite.driver_command(
            run, "test", suite.pytest_command(run, "127.0.0.1:2222", spec))})
        _dump(run.path("hygiene.json"), {"attempt": attempt, "exit_code": 0, "command": suite.driver_command(
            run, "hygiene", suite.hygiene_args(run, spec))})
        _dump(run.path("reboot.json"), {"attempt": attempt, "seconds_to_ssh": 40.0, "system_state": "running"})
        _dump(run.path("expected-tests.json"), {"attempt": attempt, "tests": SUITE_TESTS})
        _dump(run.path("expected-hygiene.json"), {"attempt": attempt, "tests": HYGIENE_TESTS})
        for name, text in (("junit-reboot.xml", REBOOT_JUNIT), ("junit-hygiene.xml", HYGIENE_JUNIT)):
            write_junit(run.path(name), text, attempt)
    if junit is not None:
        write_junit(run.path("junit.xml"), junit, attempt)
    if scan is not None:
        _dump(run.path("scan.json"), {"decision": scan, "reasons": [] if scan == "pass" else
                                      ["CVE-2026-0001 in openssl 3.0.15-1~deb12u1: fixable at high"],
                                      "counts": {}})
    return run


def write_junit(path, text, attempt=ATTEMPT):
    """A JUnit file whose suites carry the attempt id, as the driver's sessions write it."""
    prop = f'<properties><property name="attempt_id" value="{attempt}"/></properties>'
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(re.sub(r"(<testsuite\b[^>]*[^/]>)", lambda m: m.group(1) + prop, text))


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
