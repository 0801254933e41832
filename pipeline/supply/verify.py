"""`golden verify` and `golden explain`: the audit question for one published image.

    findings = verify(store, "golden-linux-2026.11.26+4")   # [(check, ok, detail)], any not ok = do not use
    story = explain(store, "path/to/image.qcow2")            # which image, which hash, built from what,
                                                             # with which tests, scanned how, signed by whom

A target is a published version, or an image file, found in the store by its sha256. Verify checks
the image digest, the signatures (by keys the store trusts), the signer against the one the index
recorded at publish (or reached from it by a recorded rotation), every byproduct the signed
provenance lists (gate record, JUnit, SBOM, scan, scan VEX) and the run records it signs (run.json,
artifact.json: what explain says the image was built from) against the stored file, the gate and
scan decisions, and that neither the version nor any image it was built on is revoked. An image
signed before the records were signed verifies without them, and verify says so.
"""

import os

from pipeline.errors import GoldenError
from pipeline.store.channels import pointed_at
from pipeline.store.revocation import revocation
from pipeline.supply import attest
from pipeline.supply.packages import INDEX_FILE, check_index
from pipeline.util import read_json, sha256_file


def resolve(store, target):
    """(version, store entry, directory of its records, image path) for a version or an image file."""
    if os.path.isfile(target):
        digest = sha256_file(target)
        for version in store.versions():
            if store.entry(version)["sha256"] == digest:
                entry = store.entry(version)
                return version, entry, os.path.join(store.root, "images", version), os.path.abspath(target)
        raise GoldenError(f"no published image has this sha256 ({digest})", file=target)
    entry = store.entry(target)
    return target, entry, os.path.join(store.root, "images", target), os.path.join(store.root, entry["file"])


def verify(store, target):
    version, entry, directory, image = resolve(store, target)
    out = []

    def check(name, fn):
        try:
            out.append((name, True, fn()))
        except GoldenError as exc:
            out.append((name, False, str(exc)))
        except (OSError, ValueError, KeyError) as exc:
            out.append((name, False, f"{type(exc).__name__}: {exc}"))

    digest = sha256_file(image) if os.path.exists(image) else None

    def image_digest():
        if digest != entry["sha256"]:
            raise GoldenError(f"sha256 is {digest}, the store index says {entry['sha256']}", file=image)
        return digest

    def gate():
        record = read_json(os.path.join(directory, "gate.json"), "gate record")
        if record.get("decision") != "pass":
            raise GoldenError("the gate record does not say pass", file=os.path.join(directory, "gate.json"))
        if record["artifact"]["sha256"] != entry["sha256"]:
            raise GoldenError("the gate record is for another sha256", file=os.path.join(directory, "gate.json"))
        return f"pass ({record['counts'].get('passed')} passed, {record['counts'].get('waived', 0)} waived)"

    statements = {}

    def signatures():
        statements.update(store.verify_signatures(directory, os.path.basename(image), entry["sha256"]))
        return "; ".join(f"{name} by {s['_keyid']}" for name, s in statements.items())

    def signer():
        if not statements:
            raise GoldenError("no verified signature to compare")
        recorded = entry.get("signed_by")
        for name, stmt in statements.items():
            if not store.signer_accepted(recorded, stmt["_keyid"]):
                raise GoldenError(f"signed by {stmt['_keyid']}, the store recorded {recorded} at publish and no "
                                  "rotation to it is recorded (`golden store rotate`)", file=os.path.join(
                                      directory, name))
        actual = statements[attest.PROVENANCE_FILE]["_keyid"]
        return actual if actual == recorded else f"{actual} (rotated from {recorded})"

    def byproducts():
        if not statements:
            raise GoldenError("no verified provenance to take the digests from")
        provenance = statements[attest.PROVENANCE_FILE]
        names = attest.check_byproducts(provenance, directory)
        unsigned = "" if attest.records(provenance) is not None else (
            f"; {', '.join(attest.SIGNED_RECORDS)} not signed (signed before the records were)")
        return f"{len(names)} files as signed: {', '.join(names)}{unsigned}"

    def scanned():
        record = read_json(os.path.join(directory, "scan.json"), "scan record")
        if record.get("decision") != "pass":
            raise GoldenError("the scan record does not say pass", file=os.path.join(directory, "scan.json"))
        return "pass"

    def package_index():
        if not os.path.exists(os.path.join(directory, INDEX_FILE)):
            return "none stored: `golden cve` reads the SBOM"
        return check_index(directory)

    def revoked():
        why = revocation(store, store.index(), version)
        if why:
            raise GoldenError(f"{version} {why}")
        return "not revoked"

    check("image digest", image_digest)
    check("signatures", signatures)
    check("signer", signer)
    check("byproducts", byproducts)
    check("gate", gate)
    check("scan", scanned)
    check("package index", package_index)
    check("revocation", revoked)
    return version, out


def _signed(store, directory, entry):
    """The published image's statements, verified by a key the store trusts now, or why none verifies."""
    try:
        return store.verify_signatures(directory, os.path.basename(entry["file"]), entry["sha256"]), None
    except GoldenError as exc:
        return None, str(exc)


def _records_error(statements, directory):
    """Why the stored records explain reads are not the signed ones, or None when they are."""
    if not statements:
        return "no verified provenance vouches for them"
    try:
        checked = attest.check_records(statements[attest.PROVENANCE_FILE], directory)
    except GoldenError as exc:
        return str(exc)
    return None if checked else f"{', '.join(attest.SIGNED_RECORDS)} were not signed (signed before the records were)"


def explain(store, target):
    version, entry, directory, image = resolve(store, target)
    rec = lambda name: read_json(os.path.join(directory, name), name) if os.path.exists(  # noqa: E731
        os.path.join(directory, name)) else {}
    run, artifact, gate, scan = rec("run.json"), rec("artifact.json"), rec("gate.json"), rec("scan.json")
    statements, signature_error = _signed(store, directory, entry)
    signed_by = statements[attest.PROVENANCE_FILE]["_keyid"] if statements else None
    return {
        "image": run.get("image"), "version": version, "sha256": entry["sha256"], "size": entry.get("size"),
        "published_at": entry.get("published_at"), "file": os.path.join(store.root, entry["file"]),
        "built_from": {"commit": run.get("commit"), "spec": run.get("spec"), "role": run.get("role"),
                       "level": run.get("level"), "base": artifact.get("base") or run.get("base"),
                       "hardening_version": artifact.get("hardening_version"), "packer": artifact.get("packer"),
                       "not_as_signed": _records_error(statements, directory)},
        "tests": {"counts": gate.get("counts"), "junit": gate.get("junit"), "decided_at": gate.get("decided_at"),
                  "waived": [{"cis_id": w["cis_id"], "exception": w["waiver"]["id"], "owner": w["waiver"]["owner"],
                              "expires": w["waiver"]["expires"]} for w in gate.get("waived", [])]},
        "scan": {"decision": scan.get("decision"), "counts": scan.get("counts"), "feeds": scan.get("feeds")},
        "signed_by": signed_by, "signature_error": signature_error, "recorded_signer": entry.get("signed_by"),
        "revoked": entry.get("revoked"), "unusable": revocation(store, store.index(), version),
        "channels": pointed_at(store.index()).get(version, []),
        "attestations": [os.path.join(directory, name) for name in (attest.PROVENANCE_FILE, attest.TEST_RESULT_FILE)],
    }


def explain_text(story):
    b, t, s = story["built_from"], story["tests"], story["scan"]
    counts = t["counts"] or {}
    lines = [
        f"{story['version']}  ({story['image']}, role {b['role']}, CIS level {b['level']})",
        f"  image      {story['file']}",
        f"  sha256     {story['sha256']}  ({(story['size'] or 0) / 2 ** 20:.0f} MiB, published {story['published_at']})",
        f"  built from commit {b['commit']}, spec {b['spec']}",
        f"             base {((b['base'] or {}).get('sha256') or '?')[:16]}... ({(b['base'] or {}).get('origin')}), "
        f"hardening {b['hardening_version']}, {b['packer']}",
        *([f"             NOT vouched for by the signature: {b['not_as_signed']}"] if b.get("not_as_signed") else []),
        f"  tests      {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, {counts.get('waived', 0)} waived, "
        f"{counts.get('skipped', 0)} skipped (gate {t['decided_at']})",
    ]
    for w in t["waived"]:
        lines.append(f"             waived CIS {w['cis_id']} by {w['exception']} (owner {w['owner']}, expires {w['expires']})")
    lines.append(f"  scan       {s['decision']}: " + ", ".join(
        f"{n} {k}" for k, n in ((s.get("counts") or {}).get("states") or {}).items() if n))
    for feed in s.get("feeds") or []:
        lines.append(f"             feed {feed.get('kind')} {feed.get('location')} sha256 {str(feed.get('sha256'))[:16]}... "
                     f"fetched {feed.get('fetched_at')}")
    if story["signed_by"]:
        rotated = "" if story["signed_by"] == story["recorded_signer"] else f" (recorded at publish: {story['recorded_signer']})"
        lines.append(f"  signed by  {story['signed_by']}{rotated}")
    else:
        lines.append(f"  signed by  NO trusted key verifies it: {story['signature_error']} "
                     f"(recorded at publish: {story['recorded_signer']})")
    if story["channels"]:
        lines.append(f"  channels   {', '.join(story['channels'])}")
    if story["unusable"]:
        lines.append(f"  REVOKED    {story['version']} {story['unusable']}")
    return "\n".join(lines)
