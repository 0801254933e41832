"""End to end on real Packer and QEMU: the default spec goes from base to a published image; a
variant that violates a check fails the gate and is not published; every violation scenario
makes its check fail on a booted candidate."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pipeline.checks.scenarios import collect

from .conftest import ROOT, golden

pytestmark = [pytest.mark.e2e, pytest.mark.vm]


def test_default_spec_is_built_tested_gated_and_published(default_run, published, e2e_dirs):
    summary = default_run["summary"]
    assert summary["decision"] == "pass" and summary["published"], summary
    run_dir = summary["run_dir"]
    gate = json.load(open(os.path.join(run_dir, "gate.json")))
    assert gate["counts"]["passed"] >= 20 and gate["counts"]["failed"] == gate["counts"]["error"] == 0
    assert gate["artifact"]["sha256"] == published[2]
    stages = [s["stage"] for s in json.load(open(os.path.join(run_dir, "timings.json")))["stages"]]
    assert stages == ["base", "build", "boot", "test", "gate", "publish"]
    for name in ("packer.log", "packer-manifest.json", "build-console.log", "boot/candidate-console.log",
                 "junit.xml", "report.html", "artifact.json"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    manifest = json.load(open(os.path.join(run_dir, "packer-manifest.json")))
    assert manifest["builds"][0]["builder_type"] == "qemu"
    listing = golden("list", dirs=e2e_dirs)
    assert listing.returncode == 0 and summary["version"] in listing.stdout
    report = open(os.path.join(run_dir, "report.html")).read()
    assert "5.1 Configure SSH Server" in report and "5.1.20" in report and summary["version"] in report


def test_a_variant_that_permits_root_login_fails_the_gate_and_is_not_published(published, e2e_dirs, tmp_path):
    version, image, sha = published
    spec = tmp_path / "permit-root.yaml"
    spec.write_text(f"name: permit-root\nrole: general-purpose\nbase:\n  image: {image}\n  sha256: \"{sha}\"\n"
                    f"customize: [{os.path.join(ROOT, 'tests', 'data', 'permit-root-login.sh')}]\n")
    proc = golden("run", "--spec", str(spec), dirs=e2e_dirs)
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["decision"] == "fail" and not summary["published"]
    assert any("CIS 5.1.20" in r for r in summary["reasons"]), summary["reasons"]
    gate = json.load(open(os.path.join(summary["run_dir"], "gate.json")))
    assert [f["cis_id"] for f in gate["failures"]] == ["5.1.20"]
    index = json.load(open(e2e_dirs["store"] / "index.json"))
    assert list(index["images"]) == [version]
    assert not any(n.startswith("golden-permit-root") for n in os.listdir(e2e_dirs["store"] / "images"))


def test_every_violation_scenario_makes_its_check_fail(published, tmp_path, e2e_dirs):
    _, image, _ = published
    junit = tmp_path / "violated.xml"
    boot_dir = tmp_path / "boot"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "cis_checks", f"--image={image}", "--violate=*", f"--boot-dir={boot_dir}",
         f"--junitxml={junit}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider", "-q", "-n", "2"],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, GOLDEN_CACHE=str(e2e_dirs["cache"])))
    assert junit.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    applied = json.load(open(boot_dir / "violations.json"))["applied"]
    expected = {cis_id for cis_id in collect()}
    assert set(applied) == expected
    results = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        status = "failed" if case.find("failure") is not None else "error" if case.find("error") is not None \
            else "passed"
        results[props.get("cis_id")] = (status, case.get("name"))
    not_caught = sorted(i for i in applied if results.get(i, ("missing",))[0] != "failed")
    assert not not_caught, {i: results.get(i) for i in not_caught}
    assert all(results[i][1].startswith(i) or i in results[i][1] for i in applied)
