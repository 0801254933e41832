"""`golden verify` and `golden explain` on a published image; tampering of any part fails loudly."""

import json
import os

import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.store.store import Store
from pipeline.supply import attest
from pipeline.supply.verify import explain, explain_text, verify

from .runfixtures import PASSING_CASES, gated_and_signed, make_run, signing_key


@pytest.fixture
def published(tmp_path):
    store = Store(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    write_supply_records(run)
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path / "keys"))
    directory = tmp_path / "store" / "images" / run.version
    return store, run.version, directory


def write_supply_records(run):
    """An SBOM, a scan with a finding and its VEX, as the sbom and scan stages write them, before signing."""
    components = [{"type": "library", "name": n, "version": "1.0", "purl": f"pkg:deb/debian/{n}@1.0"}
                  for n in ("openssl", "libc6", "zlib1g", "bash")]
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components}
    scan = {"decision": "pass", "reasons": [], "counts": {"states": {"not_affected": 1}},
            "findings": [{"cve": "CVE-2026-0001", "package": "openssl", "state": "not_affected"}]}
    vex = {"bomFormat": "CycloneDX", "specVersion": "1.6", "vulnerabilities": [{"id": "CVE-2026-0001"}]}
    for name, data in (("sbom.cdx.json", sbom), ("scan.json", scan), ("scan.cdx.json", vex)):
        with open(run.path(name), "w", encoding="utf-8") as fh:
            json.dump(data, fh)


def writable(path):
    os.chmod(os.path.dirname(path), 0o755)
    os.chmod(path, 0o644)


def test_a_published_image_verifies(published):
    store, version, directory = published
    _, findings = verify(store, version)
    assert [(n, ok) for n, ok, _ in findings] == [("image digest", True), ("signatures", True), ("signer", True),
                                                  ("byproducts", True), ("gate", True), ("scan", True),
                                                  ("package index", True), ("revocation", True)]
    assert verify(store, str(directory / f"{version}.qcow2"))[0] == version       # by file, found by sha256


def test_a_changed_byte_in_the_image_fails(published):
    store, version, directory = published
    image = directory / f"{version}.qcow2"
    writable(image)
    data = bytearray(image.read_bytes())
    data[100] ^= 1
    image.write_bytes(bytes(data))
    findings = dict((n, ok) for n, ok, _ in verify(store, version)[1])
    assert findings["image digest"] is False


def test_a_changed_attestation_fails(published):
    store, version, directory = published
    path = directory / attest.PROVENANCE_FILE
    writable(path)
    envelope = json.loads(path.read_text())
    envelope["payload"] = envelope["payload"][:-8] + ("A" * 8 if envelope["payload"][-8:] != "A" * 8 else "B" * 8)
    path.write_text(json.dumps(envelope) + "\n")
    _, findings = verify(store, version)
    (name, ok, detail), = [f for f in findings if f[0] == "signatures"]
    assert not ok and attest.PROVENANCE_FILE in detail


def test_the_wrong_key_fails(published, tmp_path):
    store, version, _ = published
    _, other = attest.generate_key(str(tmp_path / "other.key"))
    (keyfile,) = os.listdir(tmp_path / "store" / "keys")
    with open(other, "rb") as src, open(tmp_path / "store" / "keys" / keyfile, "wb") as dst:
        dst.write(src.read())
    assert main(["verify", version, "--store", str(tmp_path / "store")]) == 1


def test_explain_answers_the_audit_question(published, capsys):
    store, version, _ = published
    story = explain(store, version)
    assert story["version"] == version and story["signed_by"].startswith("SHA256:")
    assert story["tests"]["counts"]["passed"] == PASSING_CASES and story["scan"]["decision"] == "pass"
    text = explain_text(story)
    assert version in text and story["sha256"] in text and "signed by" in text
    assert main(["explain", version, "--json", "--store", str(store.root)]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == story["sha256"]


def _edit_json(path, change):
    writable(path)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


EDITS = {
    "gate.json": lambda g: (g["failures"].append({"cis_id": "5.1.20", "message": "PermitRootLogin yes"}),
                            g["counts"].update(failed=1)),
    "sbom.cdx.json": lambda s: s.update(components=s["components"][3:]),
    "scan.json": lambda s: s.update(findings=[]),
    "scan.cdx.json": lambda s: s.update(vulnerabilities=[]),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_signed_byproduct_edited_after_publish_fails(published, name):
    store, version, directory = published
    _edit_json(directory / name, EDITS[name])
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["byproducts"][0] is False and name in findings["byproducts"][1]
    assert "changed after signing" in findings["byproducts"][1]
    assert main(["verify", version, "--store", str(store.root)]) == 1


def test_an_edited_junit_file_fails(published):
    store, version, directory = published
    path = directory / "junit.xml"
    writable(path)
    path.write_text(path.read_text().replace('name="5.1.20"', 'name="5.1.21"'))
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["byproducts"] == (False, findings["byproducts"][1]) and "junit.xml" in findings["byproducts"][1]


def test_a_removed_byproduct_fails(published):
    store, version, directory = published
    os.chmod(directory, 0o755)
    os.unlink(directory / "sbom.cdx.json")
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["byproducts"][0] is False and "signed byproduct is missing" in findings["byproducts"][1]


def _resign(store, version, directory, tmp_path):
    """Sign the published image's records again with a new key, as an operator with write access could."""
    from pipeline.evidence.rundir import Run
    copy = tmp_path / "resign" / version
    copy.mkdir(parents=True)
    for name in os.listdir(directory):
        (copy / name).write_bytes((directory / name).read_bytes())
    key, public = signing_key(str(tmp_path / "other"))
    attest.attest(Run(str(copy)), key)
    for name in (attest.PROVENANCE_FILE, attest.TEST_RESULT_FILE):
        writable(directory / name)
        (directory / name).write_bytes((copy / name).read_bytes())
    return public


def test_a_foreign_key_copied_into_keys_is_not_trusted(published, tmp_path):
    store, version, directory = published
    public = _resign(store, version, directory, tmp_path)
    (tmp_path / "store" / "keys" / "other.pub").write_bytes(open(public, "rb").read())
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["signatures"][0] is False and "no trusted key verifies it" in findings["signatures"][1]


def test_a_signer_other_than_the_recorded_one_fails_until_a_rotation_is_recorded(published, tmp_path):
    store, version, directory = published
    recorded = store.entry(version)["signed_by"]
    public = _resign(store, version, directory, tmp_path)
    new = store.trust(public, "second signer")
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["signatures"] == (True, findings["signatures"][1]) and new in findings["signatures"][1]
    assert findings["signer"][0] is False and new in findings["signer"][1] and recorded in findings["signer"][1]
    story = explain(store, version)
    assert story["signed_by"] == new and story["recorded_signer"] == recorded
    assert f"signed by  {new} (recorded at publish: {recorded})" in explain_text(story)
    assert main(["store", "rotate", recorded, public, "--reason", "yearly", "--store", str(store.root)]) == 0
    assert main(["verify", version, "--store", str(store.root)]) == 0
    assert [e["action"] for e in store.events()][-2:] == ["trust", "rotate"]


def test_the_package_index_is_published_and_an_edited_one_fails(published):
    """`golden cve` reads packages.json, not the SBOM: a package removed from it would blind cve, so
    verify compares it with the signed SBOM."""
    store, version, directory = published
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["package index"] == (True, "0 source packages")     # this SBOM's components are libraries
    _edit_json(directory / "packages.json", lambda i: i["sources"].append(
        {"name": "openssl", "version": "3.0.0-1", "binaries": ["libssl3"], "tracked": ["openssl", "3.0.0-1"]}))
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["package index"][0] is False and "differs from the stored SBOM" in findings["package index"][1]
    assert main(["verify", version, "--store", str(store.root)]) == 1


# ---- the run records explain reads (what the image was built from) are signed too

RECORD_EDITS = {
    "run.json-commit": ("run.json", lambda r: r.update(commit="0" * 40)),
    "run.json-role": ("run.json", lambda r: r.update(role="bastion", level=2)),
    "artifact.json-hardening": ("artifact.json", lambda a: a.update(hardening_version="9.9.9")),
    "artifact.json-base": ("artifact.json", lambda a: a.update(base={"sha256": "f" * 64, "origin": "elsewhere"})),
}


def test_a_published_image_explains_its_records_as_signed(published):
    store, version, _ = published
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["byproducts"][0] and "artifact.json" in findings["byproducts"][1]
    assert "run.json" in findings["byproducts"][1] and "not signed" not in findings["byproducts"][1]
    story = explain(store, version)
    assert story["built_from"]["not_as_signed"] is None and "NOT vouched" not in explain_text(story)


@pytest.mark.parametrize("edit", sorted(RECORD_EDITS))
def test_an_edited_run_record_fails_verify_and_explain_says_so(published, capsys, edit):
    store, version, directory = published
    name, change = RECORD_EDITS[edit]
    _edit_json(directory / name, change)
    findings = {n: (ok, d) for n, ok, d in verify(store, version)[1]}
    assert findings["byproducts"][0] is False, findings["byproducts"]
    assert str(directory / name) in findings["byproducts"][1] and "changed after signing" in findings["byproducts"][1]
    assert main(["verify", version, "--store", str(store.root)]) == 1
    assert name in capsys.readouterr().err
    story = explain(store, version)
    assert name in story["built_from"]["not_as_signed"]
    assert f"NOT vouched for by the signature: {directory / name}" in explain_text(story)


@pytest.mark.parametrize("name", attest.SIGNED_RECORDS)
def test_publish_refuses_a_run_record_edited_after_signing(tmp_path, name):
    run = make_run(tmp_path / "runs")
    public = gated_and_signed(run, tmp_path / "keys")
    data = json.load(open(run.path(name)))
    with open(run.path(name), "w") as fh:
        json.dump(data | {"commit" if name == "run.json" else "hardening_version": "edited"}, fh)
    with pytest.raises(GoldenError, match="changed after signing") as exc:
        Store(tmp_path / "store").publish(run, public_key=public, log=lambda m: None)
    assert exc.value.file == run.path(name)


def test_an_image_signed_before_the_records_were_still_verifies_and_says_so(tmp_path, monkeypatch):
    """Backward compatible: a provenance with no internalParameters.records (signed by an earlier version)
    verifies on its byproducts; verify and explain say its records are not signed."""
    made = attest.provenance

    def without_records(run, **kw):
        predicate = made(run, **kw)
        del predicate["buildDefinition"]["internalParameters"]["records"]
        return predicate
    monkeypatch.setattr(attest, "provenance", without_records)
    store = Store(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path / "keys"))
    findings = {n: (ok, d) for n, ok, d in verify(store, run.version)[1]}
    assert all(ok for ok, _ in findings.values()), findings
    assert "run.json, artifact.json not signed (signed before the records were)" in findings["byproducts"][1]
    assert "were not signed" in explain(store, run.version)["built_from"]["not_as_signed"]


def test_a_provenance_that_signs_records_must_sign_both(tmp_path, monkeypatch):
    made = attest.provenance

    def run_json_only(run, **kw):
        predicate = made(run, **kw)
        internal = predicate["buildDefinition"]["internalParameters"]
        internal["records"] = [r for r in internal["records"] if r["name"] == "run.json"]
        return predicate
    monkeypatch.setattr(attest, "provenance", run_json_only)
    store = Store(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    with pytest.raises(GoldenError, match="lists no artifact.json among its records"):
        store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path / "keys"))
