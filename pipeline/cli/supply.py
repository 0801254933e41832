"""Supply-chain commands: sbom, scan, sign, verify, explain, cve, feeds snapshot."""

import json
import sys

from pipeline import stages
from pipeline.cli.common import add, feed_sources, load_spec, open_run, run_spec
from pipeline.errors import GoldenError
from pipeline.store.store import Store
from pipeline.util import Progress


def _one_stage(args, name, spec=None):
    run = open_run(args)
    ctx = stages.Context(spec or run_spec(run, args), Store(args.store), args.cache, Progress(name), run=run)
    passed = stages.run_stages(ctx, (name,))
    return ctx, passed


def cmd_sbom(args):
    ctx, _ = _one_stage(args, "sbom")
    print(ctx.run.path("sbom.cdx.json"))


def cmd_scan(args):
    run = open_run(args)
    spec = run_spec(run, args)
    if args.feed:
        spec.feeds = feed_sources(args.feed)
    if args.policy:
        spec.scan_policy = args.policy
    ctx, passed = _one_stage(args, "scan", spec)
    summary = ctx.results["scan"].summary()
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}, indent=2, default=str))
    return 0 if passed else 1


def cmd_sign(args):
    ctx, _ = _one_stage(args, "sign")
    from pipeline.supply.attest import PROVENANCE_FILE, TEST_RESULT_FILE
    print(json.dumps({"attestations": {"provenance": ctx.run.path(PROVENANCE_FILE),
                                       "test-result": ctx.run.path(TEST_RESULT_FILE)},
                      "public_key": ctx.results["public_key"]}, indent=2))


def cmd_verify(args):
    from pipeline.supply.verify import verify
    version, findings = verify(Store(args.store), args.target)
    for name, ok, detail in findings:
        print(f"{'OK  ' if ok else 'FAIL'} {name:<14} {detail}")
    bad = [f for f in findings if not f[1]]
    if bad:
        print(f"golden: error: {version} does NOT verify: " + "; ".join(f"{n}: {d}" for n, _, d in bad), file=sys.stderr)
        return 1
    print(f"{version} verifies")
    return 0


def cmd_explain(args):
    from pipeline.supply.verify import explain, explain_text
    story = explain(Store(args.store), args.target)
    print(json.dumps(story, indent=2, default=str) if args.json else explain_text(story))


def cmd_cve(args):
    from pipeline.supply.feeds import load_feeds
    from pipeline.supply.scan import affected_images
    sources = feed_sources(args.feed) if args.feed else load_spec(args.spec).feeds
    rows = affected_images(Store(args.store), load_feeds(sources, args.cache), args.cve)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            pkgs = ", ".join(f"{p['package']} {p['version']} ({p['state']}, fixed {p.get('fixed_version') or '-'})"
                             for p in r["packages"]) or r.get("reason", "no package of this CVE")
            print(f"{r['version']:<36} {r['verdict']:<13} {pkgs}")
    return 1 if any(r["verdict"] == "affected" for r in rows) else 0


def cmd_feeds_snapshot(args):
    """A tracker-format feed from an image's own changelogs (read-only), for machines without the tracker."""
    from pipeline.supply.feeds import tracker_from_changelogs
    from pipeline.util import write_json_atomic
    from pipeline.vm.artifact import mounted_root
    with mounted_root(args.image) as root:
        feed = tracker_from_changelogs(root, release=args.release)
    if not feed:
        raise GoldenError("no CVE found in the image's changelogs (/usr/share/doc/*/changelog.Debian.gz)",
                          file=args.image)
    write_json_atomic(args.out, feed)
    count = sum(len(v) for v in feed.values())
    print(f"{args.out}: {count} CVEs fixed in {len(feed)} source packages", file=sys.stderr)
    return 0


def register(sub, p):
    add(sub, "sbom", cmd_sbom, "write a run's CycloneDX 1.6 SBOM from the artifact's dpkg database", [p.common, p.run])
    sp = add(sub, "scan", cmd_scan, "match a run's SBOM against vulnerability feeds; the policy decides",
             [p.common, p.spec, p.run])
    sp.add_argument("--feed", action="append", metavar="KIND=PATH_OR_URL",
                    help="instead of the spec's feeds: debian-tracker=... or osv=... (repeatable)")
    sp.add_argument("--policy", metavar="FILE", help="scan policy (default: the spec's, else pipeline/supply/scan-policy.yaml)")
    add(sub, "sign", cmd_sign, "sign a run's provenance and test result (DSSE, in-toto)", [p.common, p.run])
    sp = add(sub, "verify", cmd_verify, "check a published image: digest, signatures, gate, scan (exit 1 on tampering)",
             [p.common])
    sp.add_argument("target", help="a published version, or an image file (found by its sha256)")
    sp = add(sub, "explain", cmd_explain, "which image, which hash, built from what, with which tests, scanned "
             "against which feed, signed by which key", [p.common])
    sp.add_argument("target", help="a published version, or an image file (found by its sha256)")
    sp.add_argument("--json", action="store_true")
    sp = add(sub, "cve", cmd_cve, "which published images contain a package affected by a CVE (from stored SBOMs)",
             [p.common, p.spec])
    sp.add_argument("cve", metavar="CVE-ID")
    sp.add_argument("--feed", action="append", metavar="KIND=PATH_OR_URL",
                    help="feeds to use instead of the spec's (repeatable)")
    sp.add_argument("--json", action="store_true")
    feeds = sub.add_parser("feeds", help="vulnerability feeds", description="vulnerability feeds")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    sp = feeds_sub.add_parser("snapshot", help="write a tracker-format feed of the CVEs an image's changelogs "
                                               "record as fixed (offline; read-only on the image)",
                              description="write a tracker-format feed of the CVEs an image's changelogs record "
                                          "as fixed (offline; the image is mounted read-only). See feeds/README.md.")
    sp.set_defaults(func=cmd_feeds_snapshot)
    sp.add_argument("image", help="a qcow2 (e.g. runs/<version>/<version>.qcow2)")
    sp.add_argument("--out", required=True, help="the JSON file to write")
    sp.add_argument("--release", default="bookworm", help="the Debian release the entries are for (default: bookworm)")
