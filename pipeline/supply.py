"""The supply-chain stages of a run: SBOM, vulnerability scan, signature.

    sbom_stage(run)                                  # runs/<v>/sbom.cdx.json from the artifact, read-only
    result = scan_stage(run, spec, cache_dir)        # runs/<v>/scan.json + scan.cdx.json (VEX)
    sign_stage(run, cache_dir)                       # runs/<v>/provenance.intoto.jsonl, test-result.intoto.jsonl

The signing key is GOLDEN_SIGNING_KEY (a PEM ECDSA P-256 private key), or one the pipeline makes
once under $GOLDEN_CACHE/keys/ (0600). It never enters an image or the repository.
"""

import os

from . import attest
from .feeds import load_feeds
from .sbom import SBOM_FILE, write_sbom
from .scan import load_policy, scan, write_scan
from .util import read_json

ATTESTATIONS = ((attest.PROVENANCE_FILE, attest.SLSA_PROVENANCE_V1), (attest.TEST_RESULT_FILE, attest.TEST_RESULT_V01))


def signing_key(cache_dir):
    """(private key path, public key path); made on first use when GOLDEN_SIGNING_KEY is not set."""
    path = os.environ.get("GOLDEN_SIGNING_KEY") or os.path.join(cache_dir, "keys", "golden-signing.key")
    public = (path[:-4] if path.endswith(".key") else path) + ".pub"
    if not os.path.exists(path):
        attest.generate_key(path)
    return path, public


def sbom_stage(run, log):
    path = write_sbom(run)
    doc = read_json(path, "SBOM")
    log(f"SBOM: {len(doc.get('components', []))} components ({SBOM_FILE})")
    return path


def scan_stage(run, spec, cache_dir, log, now=None):
    doc = read_json(run.path(SBOM_FILE), "SBOM")
    feeds = load_feeds(spec.feeds, cache_dir, now)
    for r in feeds.records:
        log(f"feed {r['kind']}: {r['location']} (sha256 {r['sha256'][:12]}..., fetched {r['fetched_at']})")
    result = scan(doc, feeds, load_policy(spec.scan_policy, now=now), now)
    write_scan(run, result)
    counts = result.summary()["counts"]
    log(f"scan {result.decision}: " + ", ".join(f"{n} {s}" for s, n in counts["states"].items() if n))
    for reason in result.reasons[:10]:
        log(f"scan: {reason}")
    return result


def sign_stage(run, cache_dir, log):
    key, public = signing_key(cache_dir)
    paths = attest.attest(run, key)
    log(f"signed with key {attest.public_key(public).keyid}: " + ", ".join(os.path.basename(p) for p in paths.values()))
    return paths, public
