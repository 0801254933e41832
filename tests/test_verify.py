"""`golden verify` and `golden explain` on a published image; tampering of any part fails loudly."""

import json
import os

import pytest

from pipeline.cli import main
from pipeline.store.store import Store
from pipeline.supply import attest
from pipeline.supply.verify import explain, explain_text, verify

from .runfixtures import gated_and_signed, make_run


@pytest.fixture
def published(tmp_path):
    store = Store(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path / "keys"))
    directory = tmp_path / "store" / "images" / run.version
    return store, run.version, directory


def writable(path):
    os.chmod(os.path.dirname(path), 0o755)
    os.chmod(path, 0o644)


def test_a_published_image_verifies(published):
    store, version, directory = published
    _, findings = verify(store, version)
    assert [(n, ok) for n, ok, _ in findings] == [("image digest", True), ("signatures", True), ("gate", True),
                                                  ("scan", True)]
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
    assert story["tests"]["counts"]["passed"] == 4 and story["scan"]["decision"] == "pass"
    text = explain_text(story)
    assert version in text and story["sha256"] in text and "signed by" in text
    assert main(["explain", version, "--json", "--store", str(store.root)]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == story["sha256"]
