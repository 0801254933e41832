import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.errors import GoldenError
from pipeline.evidence.gate import decide
from pipeline.supply.attest import (
    PROVENANCE_FILE,
    SLSA_PROVENANCE_V1,
    TEST_RESULT_FILE,
    TEST_RESULT_V01,
    attest,
    generate_key,
    keyid,
    verify_envelope,
)
from pipeline.util import sha256_file

from .runfixtures import FAILING_JUNIT, make_run


@pytest.fixture
def key(tmp_path):
    private, public = generate_key(str(tmp_path / "keys" / "golden.key"))
    return private, open(public, "rb").read()


@pytest.fixture
def signed(tmp_path, key):
    run = make_run(str(tmp_path / "runs"))
    decide(run)
    return run, attest(run, key[0]), sha256_file(run.artifact)


def _envelope(path):
    with open(path) as fh:
        return json.loads(fh.read())


def _write(path, envelope):
    with open(path, "w") as fh:
        fh.write(json.dumps(envelope) + "\n")


def test_generate_key_writes_a_private_pem_0600_and_a_public_pem(tmp_path):
    private, public = generate_key(str(tmp_path / "golden.key"))
    assert public == str(tmp_path / "golden.pub")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert open(private).read().startswith("-----BEGIN PRIVATE KEY-----")
    pub = serialization.load_pem_public_key(open(public, "rb").read())
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
    with pytest.raises(GoldenError, match="refusing to overwrite"):
        generate_key(private)


def test_round_trip_sign_then_verify(signed, key):
    run, paths, digest = signed
    assert paths == {"provenance": run.path(PROVENANCE_FILE), "test-result": run.path(TEST_RESULT_FILE)}
    prov = verify_envelope(paths["provenance"], key[1], digest, SLSA_PROVENANCE_V1)
    assert prov["_type"] == "https://in-toto.io/Statement/v1"
    assert prov["subject"] == [{"name": os.path.basename(run.artifact), "digest": {"sha256": digest}}]
    build = prov["predicate"]["buildDefinition"]
    assert build["externalParameters"]["template"]["path"] == "packer/golden.pkr.hcl"
    assert {b["name"] for b in prov["predicate"]["runDetails"]["byproducts"]} == {"junit-hygiene.xml", "junit.xml", "junit-reboot.xml", "gate.json", "scan.json"}
    assert prov["predicate"]["runDetails"]["metadata"]["invocationId"] == run.version
    result = verify_envelope(paths["test-result"], key[1], digest, TEST_RESULT_V01)["predicate"]
    assert result["result"] == "PASSED" and result["failedTests"] == []
    assert "acceptance.test_boot::test_reached_multi_user" in result["passedTests"]


def test_envelopes_are_standard_dsse_with_one_signature_over_the_pae(signed, key):
    run, paths, _ = signed
    for path in paths.values():
        env = _envelope(path)
        assert set(env) == {"payload", "payloadType", "signatures"}
        assert env["payloadType"] == "application/vnd.in-toto+json"
        assert len(env["signatures"]) == 1 and set(env["signatures"][0]) == {"keyid", "sig"}
        payload = base64.b64decode(env["payload"], validate=True)
        assert json.loads(payload)["_type"] == "https://in-toto.io/Statement/v1"
        # Independently of securesystemslib: DER ECDSA P-256 / SHA-256 over the DSSE PAE.
        pae = b"DSSEv1 %d %b %d %b" % (len(env["payloadType"]), env["payloadType"].encode(), len(payload), payload)
        pub = serialization.load_pem_public_key(key[1])
        pub.verify(base64.b64decode(env["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
        assert env["signatures"][0]["keyid"] == keyid(pub)


def test_a_tampered_payload_byte_fails(signed, key):
    run, paths, digest = signed
    env = _envelope(paths["provenance"])
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[payload.index(b"golden.pkr.hcl")] ^= 0x01           # one bit of the template path
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    _write(paths["provenance"], env)
    with pytest.raises(GoldenError, match="signature does not verify") as err:
        verify_envelope(paths["provenance"], key[1], digest)
    assert err.value.file == paths["provenance"]


def test_a_tampered_file_byte_fails(signed, key):
    run, paths, digest = signed
    raw = bytearray(open(paths["test-result"], "rb").read())
    at = raw.index(b'"payload":"') + 20
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")
    open(paths["test-result"], "wb").write(bytes(raw))
    with pytest.raises(GoldenError, match="signature does not verify|not a DSSE envelope"):
        verify_envelope(paths["test-result"], key[1], digest)


def test_a_wrong_key_fails(signed, tmp_path):
    run, paths, digest = signed
    _, other = generate_key(str(tmp_path / "other.key"))
    with pytest.raises(GoldenError, match="not signed by the given key"):
        verify_envelope(paths["provenance"], open(other, "rb").read(), digest)


def test_a_wrong_key_fails_even_if_the_keyid_hint_is_forged(signed, tmp_path):
    run, paths, digest = signed
    _, other = generate_key(str(tmp_path / "other.key"))
    other_pem = open(other, "rb").read()
    env = _envelope(paths["provenance"])
    env["signatures"][0]["keyid"] = keyid(serialization.load_pem_public_key(other_pem))
    _write(paths["provenance"], env)
    with pytest.raises(GoldenError, match="signature does not verify"):
        verify_envelope(paths["provenance"], other_pem, digest)


def test_a_changed_artifact_digest_fails(signed, key):
    run, paths, digest = signed
    with open(run.artifact, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(GoldenError, match="does not match the artifact's sha256") as err:
        verify_envelope(paths["provenance"], key[1], sha256_file(run.artifact))
    assert err.value.field == "payload.subject[].digest.sha256"


def test_the_wrong_predicate_type_fails(signed, key):
    run, paths, digest = signed
    with pytest.raises(GoldenError, match="predicateType"):
        verify_envelope(paths["test-result"], key[1], digest, SLSA_PROVENANCE_V1)


def test_a_failed_gate_is_attested_as_failed_with_its_tests(tmp_path, key):
    run = make_run(str(tmp_path / "runs"), junit=FAILING_JUNIT, test_exit=1)
    decide(run)
    paths = attest(run, key[0])
    result = verify_envelope(paths["test-result"], key[1], sha256_file(run.artifact))["predicate"]
    assert result["result"] == "FAILED" and result["failedTests"] == ["cis_checks.5.1-ssh-server.yaml::5.1.20"]


def test_attest_refuses_an_artifact_changed_after_the_gate(tmp_path, key):
    run = make_run(str(tmp_path / "runs"))
    decide(run)
    with open(run.artifact, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(GoldenError, match="refusing to sign"):
        attest(run, key[0])
