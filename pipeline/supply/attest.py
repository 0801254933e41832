"""Sign a candidate: DSSE envelopes of in-toto Statement v1, one predicate and one signature each.

    generate_key("keys/golden.key")                      # keys/golden.key (0600) and keys/golden.pub, PEM
    attest(run, "keys/golden.key")                       # runs/<v>/provenance.intoto.jsonl, test-result.intoto.jsonl
    verify_envelope(path, open("keys/golden.pub", "rb").read(), artifact_sha256)   # the statement, or GoldenError

Keys are ECDSA P-256: the private key is unencrypted PKCS#8 PEM (mode 0600), the public key a
SubjectPublicKeyInfo PEM, the form cosign's `--key` reads. Signatures are ASN.1 DER ECDSA over
SHA-256 of the DSSE PAE (`DSSEv1 <len> <payloadType> <len> <payload>`), made with securesystemslib.
The signature's `keyid` is the key's OpenSSH SHA256 fingerprint (`SHA256:<base64>`), the id that
go-securesystemslib's DSSE verifier (used by cosign) computes for a key, so hint and key agree.

Files in the run directory, each one DSSE envelope (JSON, one line; the `.intoto.jsonl` name SLSA
tooling expects), payloadType `application/vnd.in-toto+json`, subject = the qcow2 file name and its
sha256:
- `provenance.intoto.jsonl`: SLSA provenance v1 (`https://slsa.dev/provenance/v1`). buildType
  BUILD_TYPE is this pipeline (Packer qemu build of an image spec, described here):
  externalParameters spec (path, sha256), template (path, sha256), hardening version, role, level;
  internalParameters accelerator and `records`, the digests of the run's own records (run.json,
  artifact.json: what `golden explain` says the image was built from, the base a revocation follows,
  the tags a release puts on a target); resolvedDependencies the git commit, the base image digest,
  the feeds of the scan (digest, fetch time), Packer's version; byproducts JUnit, gate record, SBOM,
  scan. A provenance signed before records were signed has no `records`: its records are unsigned.
- `test-result.intoto.jsonl`: in-toto test result v0.1 (`https://in-toto.io/attestation/test-result/v0.1`)
  of the gate: result PASSED, WARNED (passed with waived controls) or FAILED, configuration (baseline,
  test command record), passedTests / warnedTests / failedTests by JUnit name.

Verify with cosign (v2.4 or later; no bundle, no transparency log, offline):

    cosign verify-blob-attestation --key golden.pub --type slsaprovenance1 \\
        --signature runs/<v>/provenance.intoto.jsonl \\
        --new-bundle-format=false --insecure-ignore-tlog=true runs/<v>/<v>.qcow2
    cosign verify-blob-attestation --key golden.pub --type https://in-toto.io/attestation/test-result/v0.1 \\
        --signature runs/<v>/test-result.intoto.jsonl \\
        --new-bundle-format=false --insecure-ignore-tlog=true runs/<v>/<v>.qcow2

`--signature` takes the raw envelope file; `--new-bundle-format=false` because it is a bare DSSE
envelope, not a Sigstore bundle (cosign 3 defaults to bundles); `--insecure-ignore-tlog=true`
because nothing is uploaded to Rekor: the signature proves the key, not when it was used. cosign
checks the subject digest against the blob's sha256 (`--check-claims`, on by default) and the
predicate type against `--type`. It may warn that it cannot fetch the TUF trusted root; with a key
and these flags it does not need it.
"""

import base64
import copy
import datetime as dt
import glob
import hashlib
import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError, VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from pipeline.errors import GoldenError
from pipeline.evidence.junit import JUnitError, parse_junit
from pipeline.paths import ROOT
from pipeline.util import read_json, sha256_file

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
TEST_RESULT_V01 = "https://in-toto.io/attestation/test-result/v0.1"
BUILD_TYPE = "urn:golden:build-type:packer-qemu-image:v1"
BUILDER_ID = "urn:golden:builder:local"
PROVENANCE_FILE = "provenance.intoto.jsonl"
TEST_RESULT_FILE = "test-result.intoto.jsonl"
# Every signed image carries both envelopes: (file, predicate type).
ATTESTATIONS = ((PROVENANCE_FILE, SLSA_PROVENANCE_V1), (TEST_RESULT_FILE, TEST_RESULT_V01))
SCHEME = "ecdsa-sha2-nistp256"
# The run's records whose digests the provenance signs (internalParameters.records).
SIGNED_RECORDS = ("run.json", "artifact.json")
TEMPLATE = os.path.join("packer", "golden.pkr.hcl")
BASELINE = os.path.join("cis_checks", "baseline.yaml")


# ---------------------------------------------------------------- keys


def signing_key(cache_dir, create=True):
    """(private key path, public key path) of the pipeline's signing key: GOLDEN_SIGNING_KEY (a PEM
    ECDSA P-256 private key), or one made once under $GOLDEN_CACHE/keys/ (0600; only when `create`,
    that is when signing). It never enters an image or the repository."""
    path = os.environ.get("GOLDEN_SIGNING_KEY") or os.path.join(cache_dir, "keys", "golden-signing.key")
    public = (path[:-4] if path.endswith(".key") else path) + ".pub"
    if not os.path.exists(path):
        if not create:
            raise GoldenError("no signing key: the run was not signed here (golden sign makes one)", file=path)
        generate_key(path)
    return path, public



def generate_key(path):
    """Write a new ECDSA P-256 key pair: `path` (private, 0600) and its .pub; refuses to overwrite."""
    public_path = (path[:-4] if path.endswith(".key") else path) + ".pub"
    for p in (path, public_path):
        if os.path.exists(p):
            raise GoldenError("refusing to overwrite an existing key", file=p)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    with open(public_path, "wb") as fh:
        fh.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, public_path


def keyid(public_key):
    """The OpenSSH SHA256 fingerprint of a public key, as go-securesystemslib computes key ids."""
    blob = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).split()[1]
    return "SHA256:" + base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).decode().rstrip("=")


def public_key(pem, source="public key"):
    """An SSlibKey from PEM bytes or text (or a path to a PEM file)."""
    if isinstance(pem, str) and "-----BEGIN" not in pem:
        source = pem
        try:
            with open(pem, "rb") as fh:
                pem = fh.read()
        except OSError as exc:
            raise GoldenError(f"cannot read the public key: {exc.strerror}", file=pem) from None
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise GoldenError(f"not a PEM public key ({exc})", file=source) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise GoldenError("not an ECDSA P-256 public key", file=source)
    return SSlibKey.from_crypto(key, keyid=keyid(key), scheme=SCHEME)


def signer(private_key_path):
    """A securesystemslib CryptoSigner for an ECDSA P-256 PEM private key file."""
    try:
        with open(private_key_path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
    except OSError as exc:
        raise GoldenError(f"cannot read the signing key: {exc.strerror}", file=private_key_path) from None
    except (ValueError, TypeError) as exc:
        raise GoldenError(f"not an unencrypted PEM private key ({exc})", file=private_key_path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise GoldenError("not an ECDSA P-256 private key", file=private_key_path)
    pub = key.public_key()
    return CryptoSigner(key, SSlibKey.from_crypto(pub, keyid=keyid(pub), scheme=SCHEME))


# ---------------------------------------------------------------- statements and envelopes


def statement(subject_name, sha256, predicate_type, predicate):
    return {"_type": STATEMENT_V1, "subject": [{"name": subject_name, "digest": {"sha256": sha256}}],
            "predicateType": predicate_type, "predicate": predicate}


def sign(stmt, private_key_path):
    """A DSSE envelope (dict) of one statement with one signature."""
    payload = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    env = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    env.sign(signer(private_key_path))
    return env.to_dict()


def write_envelope(path, envelope):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(envelope, separators=(",", ":")) + "\n")
    os.replace(tmp, path)
    return path


def verify_envelope(path, public_key_pem, artifact_sha256, predicate_type=None):
    """The statement of a DSSE envelope file, if its signature verifies with the key and its subject is the artifact."""
    key = public_key(public_key_pem)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:      # a bad byte fails as malformed JSON
            lines = [line for line in fh.read().splitlines() if line.strip()]
    except OSError as exc:
        raise GoldenError(f"cannot read the attestation: {exc.strerror}", file=path) from None
    if len(lines) != 1:
        raise GoldenError(f"expected one DSSE envelope (one JSON line), found {len(lines)} lines", file=path)
    try:
        env = Envelope.from_dict(copy.deepcopy(json.loads(lines[0])))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, FormatError) as exc:
        raise GoldenError(f"not a DSSE envelope ({type(exc).__name__}: {exc})", file=path) from None
    if env.payload_type != PAYLOAD_TYPE:
        raise GoldenError(f"payloadType is {env.payload_type!r}, not {PAYLOAD_TYPE}", file=path, field="payloadType")
    if not env.signatures:
        raise GoldenError("the envelope carries no signature", file=path, field="signatures")
    try:
        env.verify([key], 1)
    except VerificationError:
        hints = sorted(env.signatures)
        if key.keyid not in hints:
            raise GoldenError(f"not signed by the given key {key.keyid} (signed by {', '.join(hints)})",
                              file=path, field="signatures") from None
        raise GoldenError(f"the signature does not verify with key {key.keyid}: the payload or the signature "
                          "was changed", file=path, field="signatures") from None
    try:
        stmt = json.loads(env.payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GoldenError(f"the signed payload is not JSON ({exc})", file=path, field="payload") from None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_V1:
        raise GoldenError("the payload is not an in-toto Statement v1", file=path, field="payload._type")
    if predicate_type and stmt.get("predicateType") != predicate_type:
        raise GoldenError(f"predicateType is {stmt.get('predicateType')!r}, not {predicate_type}", file=path,
                          field="payload.predicateType")
    digests = [s.get("digest", {}).get("sha256") for s in stmt.get("subject") or []]
    if artifact_sha256 not in digests:
        raise GoldenError(f"the subject digest {', '.join(map(str, digests)) or '(none)'} does not match the "
                          f"artifact's sha256 {artifact_sha256}", file=path, field="payload.subject[].digest.sha256")
    return stmt


# ---------------------------------------------------------------- predicates from a run directory


def _rfc3339(value):
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _file_descriptor(path, name=None, media_type=None):
    desc = {"name": name or os.path.basename(path), "digest": {"sha256": sha256_file(path)}}
    if media_type:
        desc["mediaType"] = media_type
    return desc


def _repo_file(rel):
    path = os.path.join(ROOT, rel)
    return {"path": rel, "sha256": sha256_file(path)} if os.path.isfile(path) else {"path": rel, "sha256": None}


def provenance(run, *, builder_id=BUILDER_ID, finished_on=None):
    """The SLSA provenance v1 predicate of a run, from its run.json, artifact.json and byproducts."""
    meta, artifact = run.meta, read_json(run.path("artifact.json"), "artifact record")
    spec = meta.get("spec")
    spec_rel = os.path.relpath(spec, ROOT) if spec else None
    commit = meta.get("commit", "unknown")
    deps = [{"name": "golden-pipeline", "digest": {"gitCommit": commit.removesuffix("-dirty")},
             "annotations": {"dirty": commit.endswith("-dirty")}}] if commit != "unknown" else []
    base = artifact.get("base") or meta.get("base") or {}
    if base.get("sha256"):
        deps.append({"name": "base-image", "uri": "file://" + base.get("path", ""),
                     "digest": {"sha256": base["sha256"]}, "annotations": {"origin": base.get("origin")}})
    scan_path = run.path("scan.json")
    for feed in read_json(scan_path, "scan record").get("feeds", []) if os.path.exists(scan_path) else []:
        loc = feed["location"]
        deps.append({"name": feed["kind"], "uri": loc if "://" in loc else "file://" + loc,
                     "digest": {"sha256": feed["sha256"]}, "annotations": {"fetched_at": feed["fetched_at"]}})
    if artifact.get("packer"):
        deps.append({"name": "packer", "uri": "pkg:generic/packer@" + artifact["packer"].split()[-1].lstrip("v"),
                     "annotations": {"version": artifact["packer"]}})
    byproducts = [_file_descriptor(p, media_type="application/xml") for p in sorted(glob.glob(run.path("junit*.xml")))]
    for name, media in (("gate.json", "application/json"), ("sbom.cdx.json", "application/vnd.cyclonedx+json"),
                        ("scan.json", "application/json"), ("scan.cdx.json", "application/vnd.cyclonedx+json")):
        if os.path.exists(run.path(name)):
            byproducts.append(_file_descriptor(run.path(name), media_type=media))
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "spec": {"path": spec_rel, "sha256": sha256_file(spec) if spec and os.path.isfile(spec) else None},
                "template": _repo_file(TEMPLATE),
                "hardening": {"version": artifact.get("hardening_version")},
                "role": meta.get("role"), "level": meta.get("level")},
            "internalParameters": {"accelerator": artifact.get("accelerator"),
                                   "records": [_file_descriptor(run.path(name), media_type="application/json")
                                               for name in SIGNED_RECORDS]},
            "resolvedDependencies": deps},
        "runDetails": {
            "builder": {"id": builder_id},
            "metadata": {"invocationId": run.version,
                         **({"startedOn": _rfc3339(meta["created_at"])} if meta.get("created_at") else {}),
                         "finishedOn": _rfc3339(finished_on or dt.datetime.now(dt.timezone.utc))},
            "byproducts": byproducts}}


def test_result(run):
    """The in-toto test-result v0.1 predicate of the run's gate, with test names from its JUnit files."""
    gate = read_json(run.path("gate.json"), "gate record")
    passed, warned, failed = [], [], []
    for junit in gate.get("junit", []):
        try:
            cases = parse_junit(run.path(junit["path"]))
        except JUnitError as exc:
            raise GoldenError(str(exc), file=run.path(junit["path"])) from None
        for case in cases:
            name = f"{case['classname']}::{case['name']}".strip(":")
            if case["status"] == "passed":
                passed.append(name)
            elif case["status"] in ("failed", "error"):
                failed.append(name)
            elif case["status"] not in ("skipped", "not-applicable"):   # one the gate let pass, such as waived
                warned.append(name)
    result = "FAILED" if gate.get("decision") != "pass" else "WARNED" if warned else "PASSED"
    configuration = [_file_descriptor(os.path.join(ROOT, BASELINE), name=BASELINE)]
    if os.path.exists(run.path("test.json")):
        configuration.append(_file_descriptor(run.path("test.json")))
    return {"result": result, "configuration": configuration, "passedTests": passed, "warnedTests": warned,
            "failedTests": failed}


def attest(run, private_key_path, *, builder_id=BUILDER_ID, now=None):
    """Sign the run's provenance and gate; returns {"provenance": path, "test-result": path}."""
    digest = sha256_file(run.artifact)
    for name in SIGNED_RECORDS:
        if not os.path.isfile(run.path(name)):
            raise GoldenError("the run's record is missing: refusing to sign", file=run.path(name))
    recorded = read_json(run.path("artifact.json"), "artifact record").get("sha256")
    gate = read_json(run.path("gate.json"), "gate record")
    for where, value in ((run.path("artifact.json"), recorded), (run.path("gate.json"), gate["artifact"]["sha256"])):
        if value != digest:
            raise GoldenError(f"records sha256 {value}, the artifact is {digest}: refusing to sign", file=where,
                              field="sha256")
    name = os.path.basename(run.artifact)
    paths = {}
    for kind, file, ptype, predicate in (
            ("provenance", PROVENANCE_FILE, SLSA_PROVENANCE_V1, provenance(run, builder_id=builder_id,
                                                                            finished_on=now)),
            ("test-result", TEST_RESULT_FILE, TEST_RESULT_V01, test_result(run))):
        paths[kind] = write_envelope(run.path(file), sign(statement(name, digest, ptype, predicate),
                                                          private_key_path))
    return paths


# ---------------------------------------------------------------- byproducts


def byproducts(stmt):
    """{file name: sha256} of the byproducts a verified provenance statement lists (JUnit, gate, SBOM, scan)."""
    out = {}
    for item in ((stmt.get("predicate") or {}).get("runDetails") or {}).get("byproducts") or []:
        name, digest = item.get("name"), (item.get("digest") or {}).get("sha256")
        if not name or not digest or os.path.basename(name) != name:
            raise GoldenError(f"a byproduct without a plain file name and sha256: {item!r}",
                              field="predicate.runDetails.byproducts")
        out[name] = digest
    return out


def records(stmt):
    """{file name: sha256} of the run records a verified provenance signs (internalParameters.records), or
    None for a provenance signed before records were."""
    listed = (((stmt.get("predicate") or {}).get("buildDefinition") or {}).get("internalParameters") or {}).get(
        "records")
    if listed is None:
        return None
    out = {}
    for item in listed if isinstance(listed, list) else [listed]:
        name = item.get("name") if isinstance(item, dict) else None
        digest = ((item.get("digest") or {}) if isinstance(item, dict) else {}).get("sha256")
        if not name or not digest or os.path.basename(name) != name:
            raise GoldenError(f"a record without a plain file name and sha256: {item!r}",
                              field="predicate.buildDefinition.internalParameters.records")
        out[name] = digest
    return out


def check_byproducts(stmt, directory, required=("gate.json",)):
    """The names of the files the signed provenance lists (its byproducts and, when it signs them, the run's
    records: see check_records), if each is in `directory` with its signed sha256.

        check_byproducts(statements[PROVENANCE_FILE], "store/images/<v>")   # GoldenError names the first edited file
    """
    signed = byproducts(stmt)
    for name in required:
        if name not in signed:
            raise GoldenError(f"the signed provenance lists no {name}: it cannot vouch for it",
                              file=os.path.join(directory, PROVENANCE_FILE), field="predicate.runDetails.byproducts")
    _check_digests(signed, directory, "byproduct")
    return sorted(set(signed) | set(check_records(stmt, directory) or ()))


def check_records(stmt, directory):
    """The names of the run's records (SIGNED_RECORDS, every one required) if the signed provenance lists
    them and each is in `directory` with its signed sha256; None for a provenance signed before records were."""
    signed = records(stmt)
    if signed is None:
        return None
    for name in SIGNED_RECORDS:
        if name not in signed:
            raise GoldenError(f"the signed provenance lists no {name} among its records: it cannot vouch for it",
                              file=os.path.join(directory, PROVENANCE_FILE),
                              field="predicate.buildDefinition.internalParameters.records")
    _check_digests(signed, directory, "record")
    return sorted(signed)


def _check_digests(signed, directory, what):
    for name, digest in sorted(signed.items()):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise GoldenError(f"signed {what} is missing", file=path)
        actual = sha256_file(path)
        if actual != digest:
            raise GoldenError(f"sha256 is {actual}, the signed provenance says {digest}: changed after signing",
                              file=path)
