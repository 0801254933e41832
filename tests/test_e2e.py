"""End to end on real Packer and QEMU: the default spec goes from base to a published, signed image;
a variant that violates a control fails the gate and is not published; the same candidate passes
with the failure waived by an exception and fails again once the exception expires; every violation
scenario makes its check fail on a booted candidate (the bastion image, Level 2); an emergency
rebuild of the bastion spec proves a CVE gone."""

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pipeline.checks.scenarios import acceptance, collect
from pipeline.evidence.suite import reboot_check
from pipeline.supply.sbom import build_sbom, packages_in, validate_sbom
from pipeline.vm.boot import booted

from .conftest import ROOT, golden

pytestmark = [pytest.mark.e2e, pytest.mark.vm]
TODAY = dt.datetime.now(dt.timezone.utc).date()


def test_default_spec_is_built_tested_gated_signed_and_published(default_run, published, e2e_dirs):
    summary = default_run["summary"]
    assert summary["decision"] == "pass" and summary["published"], summary
    run_dir = summary["run_dir"]
    gate = json.load(open(os.path.join(run_dir, "gate.json")))
    assert gate["counts"]["passed"] >= 20 and gate["counts"]["failed"] == gate["counts"]["error"] == 0
    assert gate["artifact"]["sha256"] == published[2]
    stages = [s["stage"] for s in json.load(open(os.path.join(run_dir, "timings.json")))["stages"]]
    assert stages == ["base", "build", "hygiene", "boot", "test", "reboot", "sbom", "scan", "gate", "sign", "publish"]
    for name in ("packer.log", "packer-manifest.json", "build-console.log", "boot/candidate-console.log", "junit.xml",
                 "junit-hygiene.xml", "junit-reboot.xml", "report.html", "artifact.json", "sbom.cdx.json", "scan.json",
                 "provenance.intoto.jsonl", "test-result.intoto.jsonl"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    boot = json.load(open(os.path.join(run_dir, "boot", "boot.json")))
    assert boot["seconds_to_ssh"] > 0 and boot["systemd_analyze"], boot
    manifest = json.load(open(os.path.join(run_dir, "packer-manifest.json")))
    assert manifest["builds"][0]["builder_type"] == "qemu"
    listing = golden("list", dirs=e2e_dirs)
    assert listing.returncode == 0 and summary["version"] in listing.stdout
    report = open(os.path.join(run_dir, "report.html")).read()
    assert "5.1 Configure SSH Server" in report and "5.1.20" in report and summary["version"] in report


def test_the_sbom_is_read_from_the_artifact_itself(default_run, published):
    version, image, _ = published
    before = os.stat(image)
    doc = validate_sbom(build_sbom(image, name="linux", version=version, sha256=published[2]))
    binaries, sources = packages_in(doc)
    by_name = {b["name"]: b for b in binaries}
    assert by_name["openssh-server"]["source"]["name"] == "openssh" and "openssh" in {s["name"] for s in sources}
    assert by_name["openssh-server"]["purl"].startswith("pkg:deb/debian/openssh-server@1:9.2p1-")
    assert doc["metadata"]["component"]["version"] == version
    after = os.stat(image)
    assert (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)


def test_the_published_image_verifies_and_explains_itself(published, e2e_dirs):
    version, image, sha = published
    proc = golden("verify", version, dirs=e2e_dirs)
    checks = ("image digest", "signatures", "signer", "byproducts", "gate", "scan", "package index", "revocation")
    assert proc.returncode == 0 and proc.stdout.count("OK ") == len(checks), proc.stdout + proc.stderr
    assert all(f"OK   {name}" in proc.stdout for name in checks), proc.stdout
    assert "source packages" in proc.stdout.split("OK   package index")[1].splitlines()[0], proc.stdout
    story = json.loads(golden("explain", image, "--json", dirs=e2e_dirs).stdout)
    assert story["version"] == version and story["sha256"] == sha and story["signed_by"].startswith("SHA256:")
    assert story["built_from"]["base"]["sha256"] and story["scan"]["feeds"]


# What hardened roles do to themselves: an sshd AllowUsers list without the account the logins come
# through. The running sshd keeps its configuration; the next boot's reads the new one.
LOCK_OUT = "echo 'AllowUsers golden-admin' > /etc/ssh/sshd_config.d/00-golden-lockout.conf"


def test_the_web_spec_extends_the_published_default_image_and_serves_its_page(web_published, published, e2e_dirs):
    """images/golden-web.yaml (`extends:` the default spec, base = its published image on the candidate
    channel): nginx serving the page that names the image, within the allowlists, a CIS pass as usual."""
    version, _, sha = web_published
    run_dir = e2e_dirs["runs"] / version
    run = json.load(open(run_dir / "run.json"))
    assert (run["image"], run["role"]) == ("web", "web") and run["base"]["version"] == published[0], run["base"]
    gate = json.load(open(run_dir / "gate.json"))
    assert gate["decision"] == "pass" and gate["artifact"]["sha256"] == sha, gate["reasons"]
    cases = {(c.get("classname"), c.get("name")): c for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase")}
    for classname, name in (("acceptance.test_agents", "test_agent_enabled_running_and_answering[nginx-"),
                            ("acceptance.test_unnecessary", "test_listeners_within_the_allowlist["),
                            ("acceptance.test_unnecessary", "test_no_enabled_service_outside_the_allowlist["),
                            ("acceptance.test_stamp", "test_the_stamp_names_this_image[")):
        (case,) = [c for (k, n), c in cases.items() if k == classname and n.startswith(name)]
        assert not list(case), (name, [child.tag for child in case])      # no failure, error or skip
    assert sum(k.startswith("cis_checks.") for k, _ in cases) >= 150
    stamp = json.load(open(run_dir / "artifact.json"))
    assert stamp["hardening"] == "applied", stamp


def test_a_candidate_that_locks_itself_out_fails_the_reboot_check(published, tmp_path, e2e_dirs):
    """The reboot check on a candidate that answers now but not after a reboot: the JUnit case fails,
    and the console shows the second boot got as far as starting sshd (the lock-out, not a broken
    boot, is what failed it)."""
    _, image, _ = published
    run = type("Run", (), {"path": lambda self, name: str(tmp_path / name), "attempt": "lock-out"})()
    logged = []
    with booted(image, tmp_path / "boot", cache_dir=e2e_dirs["cache"], log=logged.append) as cand:
        cand.vm.run(f"sudo sh -c {shlex.quote(LOCK_OUT)}")
        assert cand.vm.run("sudo sshd -T")[1].count("allowusers golden-admin") == 1
        came_back = reboot_check(run, cand, logged.append, timeout=150)
        console = open(cand.vm.console, encoding="utf-8", errors="replace").read()
    assert not came_back
    case = ET.parse(tmp_path / "junit-reboot.xml").getroot().find(".//testcase")
    failure = case.find("failure")
    assert failure is not None and "did not come back after a reboot" in failure.get("message")
    assert "no SSH login as golden-test" in failure.text and "Authentication failed" in failure.text, failure.text
    second_boot = console.split("Linux version")[2]
    assert "Started \x1b[0;1;39mssh.service" in second_boot or "Started ssh.service" in second_boot


def test_a_variant_that_violates_a_control_fails_the_gate_and_is_not_published(violating_run, e2e_dirs):
    run, summary, published_version = violating_run
    assert run["exit"] == 1, run["stderr"][-3000:]
    assert summary["decision"] == "fail" and not summary["published"]
    assert any("CIS 5.1.16" in r for r in summary["reasons"]), summary["reasons"]
    gate = json.load(open(os.path.join(summary["run_dir"], "gate.json")))
    assert "5.1.16" in [f["cis_id"] for f in gate["failures"]]
    index = json.load(open(e2e_dirs["store"] / "index.json"))
    assert published_version in index["images"] and not any(v.startswith("golden-max-auth-tries") for v in index["images"])
    assert not any(n.startswith("golden-max-auth-tries") for n in os.listdir(e2e_dirs["store"] / "images"))


def test_a_waived_failure_passes_the_gate_until_the_exception_expires(violating_run, e2e_dirs, tmp_path):
    _, summary, _ = violating_run
    expires = TODAY + dt.timedelta(days=10)
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(f"exceptions:\n  - id: EXC-E2E-1\n    controls: [\"5.1.16\"]\n    scope: {{roles: [general-purpose]}}\n"
                       f"    why: Legacy jump clients retry keys; tracked for removal.\n    owner: ops-oncall@example.com\n"
                       f"    ticket: SEC-4242\n    expires: {expires}\n")
    run = summary["version"]
    # The variant's own failures other than 5.1.16 would keep the gate shut: only 5.1.16 failed.
    gate = json.load(open(os.path.join(summary["run_dir"], "gate.json")))
    assert {f["cis_id"] for f in gate["failures"]} == {"5.1.16"}, gate["failures"]
    tested = golden("test", "--run", run, "--exceptions", str(waivers), dirs=e2e_dirs)
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    passed = golden("gate", "--run", run, dirs=e2e_dirs)
    record = json.loads(passed.stdout)
    assert passed.returncode == 0 and record["decision"] == "pass", record
    (waived,) = record["waived"]
    assert waived["cis_id"] == "5.1.16" and waived["waiver"]["owner"] == "ops-oncall@example.com"
    junit = open(os.path.join(summary["run_dir"], "junit.xml")).read()
    assert 'name="outcome" value="waived"' in junit and "ops-oncall@example.com" in junit
    golden("report", "--run", run, dirs=e2e_dirs)
    report = open(os.path.join(summary["run_dir"], "report.html")).read()
    assert "Waived" in report and "ops-oncall@example.com" in report and "SEC-4242" in report
    expired = golden("gate", "--run", run, "--as-of", str(expires + dt.timedelta(days=1)), dirs=e2e_dirs)
    record = json.loads(expired.stdout)
    assert expired.returncode == 1 and record["decision"] == "fail"
    assert any(f"EXC-E2E-1 (owner ops-oncall@example.com) for CIS 5.1.16 expired on {expires}" in r
               for r in record["reasons"]), record["reasons"]


CONNECTION_FAILURE = ("paramiko.", "EOFError", "SSHException", "fact collection failed")


def _violated_session(image, spec, violate, paths, workdir, e2e_dirs):
    """One boot of IMAGE with the VIOLATE scenarios applied, running the tests under PATHS, started in
    the background; _violations_found reads what it found."""
    junit, boot_dir = workdir / "violated.xml", workdir / "boot"
    out = open(workdir / "pytest.out", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *paths, "-m", "not hygiene", f"--image={image}",
         f"--spec={spec}", "--role=bastion", "--image-name=bastion", f"--violate={violate}",
         f"--boot-dir={boot_dir}", f"--junitxml={junit}", "-o", "junit_family=xunit1",
         "-p", "no:cacheprovider", "-q", "-n", "2"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, GOLDEN_CACHE=str(e2e_dirs["cache"])))
    return proc, out, junit, boot_dir


def _violations_found(session, timeout=2400):
    """The scenarios a _violated_session applied, the checks that ran and found their violation, the tests
    that could not reach the candidate, and the scenarios that failed to apply."""
    proc, out, junit, boot_dir = session
    try:
        proc.wait(timeout=timeout)          # on a timeout the caller kills every session
    finally:
        out.seek(0)
        printed = out.read()
        out.close()
    assert junit.exists(), printed[-6000:]
    record = json.load(open(boot_dir / "violations.json"))
    applied = record["applied"]
    caught, unreachable = set(), []
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        failure = case.find("failure")
        # Only a check that ran and found the violation counts; an error, or a failure to reach
        # the host, proves nothing about the check.
        if failure is None and props.get("outcome") != "waived":
            continue
        if failure is not None and any(m in (failure.get("message") or "") for m in CONNECTION_FAILURE):
            unreachable.append(case.get("name"))
            continue
        if props.get("cis_id"):
            caught.add(props["cis_id"])
        if case.get("classname", "").startswith("acceptance."):
            caught.add("acceptance:" + case.get("name").split("[")[0])
    return set(applied), caught, unreachable, record["failed_to_apply"]


def test_every_violation_scenario_makes_its_check_fail(emergency, tmp_path, e2e_dirs):
    """Every scenario (Level 1 and Level 2, and the acceptance tests') applied to the published bastion
    image: each check it targets runs and fails, or is reported waived where an exception covers it.

    Two boots, at once (two guests on two cores). The live SSH scenarios restart sshd, which would
    then also load the other scenarios' sshd settings (5.1.22's UsePAM no locks the suite's own
    account out), so they get a boot of their own. Everything else shares one boot: sshd is not
    restarted there, and the CIS checks read sshd's effective configuration with `sshd -T`, which
    reads the files as they now are."""
    summary = emergency["summary"]
    assert emergency["exit"] == 0 and summary["published"], emergency["stderr"][-3000:]
    index = json.load(open(e2e_dirs["store"] / "index.json"))
    image = str(e2e_dirs["store"] / index["images"][summary["version"]]["file"])
    live_ssh = sorted(k for k, s in acceptance().items() if "test_ssh_live.py" in s.where)
    assert live_ssh, "no live SSH scenarios found"
    everything = set(collect()) | set(acceptance())
    sessions = [("*," + ",".join("!" + k for k in live_ssh), ["cis_checks", "acceptance"]),
                (",".join(live_ssh), ["acceptance/test_ssh_live.py"])]
    applied, caught, unreachable, failed = set(), set(), [], {}
    started = []
    for i, (violate, paths) in enumerate(sessions):
        workdir = tmp_path / f"boot{i}"
        workdir.mkdir()
        started.append(_violated_session(image, emergency["spec"], violate, paths, workdir, e2e_dirs))
    try:
        found = [_violations_found(session) for session in started]
    finally:                                   # a failed or timed-out wait leaves no session behind (QEMU dies with it)
        for proc, *_ in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for a, c, u, f in found:
        applied |= a
        caught |= c
        unreachable += u
        failed.update(f)
    assert applied == everything, f"not applied: {sorted(everything - applied)}; why: {failed}"
    assert not unreachable, f"tests that could not reach the candidate: {unreachable[:20]}"
    not_caught = sorted(applied - caught)
    assert not not_caught, f"scenarios applied but their checks still passed: {not_caught}"


def test_emergency_rebuild_proves_the_cve_gone_and_records_the_mttr(emergency, e2e_dirs):
    before = emergency["before"]
    assert before.returncode == 1 and json.loads(before.stdout)[0]["verdict"] == "affected", before.stdout
    summary = emergency["summary"]
    assert emergency["exit"] == 0 and summary["published"], emergency["stderr"][-3000:]
    record = json.load(open(os.path.join(summary["run_dir"], "emergency.json")))
    assert record["gone"] and record["published"] and record["mttr_seconds"] > 0, record
    gate = json.load(open(os.path.join(summary["run_dir"], "gate.json")))
    assert gate["decision"] == "pass" and gate["counts"]["failed"] == 0, gate["reasons"]
    fixed = golden("cve", "CVE-2099-0001", "--feed", emergency["feed"], "--json", dirs=e2e_dirs)
    assert fixed.returncode == 0 and {r["verdict"] for r in json.loads(fixed.stdout)} == {"not-affected"}
