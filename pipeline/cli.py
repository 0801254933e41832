"""The `golden` command. Run `golden --help`, or `golden COMMAND --help` for one command.

Exit codes: 0 success; 1 the candidate failed (tests or gate); 2 bad input or a stage error;
130 interrupted.
"""

import argparse
import json
import os
import signal
import sys
import time

from . import __version__
from .checks.baseline import Baseline
from .checks.catalogue import ROOT
from .errors import GoldenError
from .rundir import Run
from .spec import ImageSpec
from .store import Store
from .util import Progress

DEFAULT_SPEC = os.path.join("images", "golden-linux.yaml")


def _spec(args):
    return ImageSpec.load(args.spec, Baseline.load())


def _run_for(args):
    return Run.open(args.run, args.runs_dir)


def cmd_base(args):
    from .base import ensure_base
    spec = _spec(args)
    base = ensure_base(spec.base, args.cache, Progress("base"), rebuild=args.rebuild)
    print(json.dumps({"path": base.path, "sha256": base.sha256, "origin": base.origin}, indent=2))


def cmd_build(args):
    from .base import ensure_base
    from .build import build
    from .stages import preflight
    spec = _spec(args)
    log = Progress("build")
    skipped = preflight(spec, args.cache, args.exceptions)
    store = Store(args.store)
    run = Run.create(args.runs_dir, spec, taken=store.versions())
    log(f"run {run.version} in {run.dir}")
    with run.stage("base", log):
        base = ensure_base(spec.base, args.cache, log)
        run.update_meta(base={"path": base.path, "sha256": base.sha256, "origin": base.origin})
    with run.stage("build", log):
        info = build(spec, run, base, Baseline.load(), cache_dir=args.cache, log=log, skipped=skipped)
    print(json.dumps({"version": run.version, "run_dir": run.dir, "artifact": info["path"], "sha256": info["sha256"]},
                     indent=2))


def cmd_boot(args):
    from .boot import booted
    image = args.image
    workdir = args.workdir
    if not os.path.isfile(image):
        run = Run.open(image, args.runs_dir)
        image, workdir = run.artifact, workdir or run.path("boot-interactive")
    workdir = workdir or os.path.abspath(f"golden-boot-{int(time.time())}")
    log = Progress("boot")
    with booted(image, workdir, cache_dir=args.cache, log=log) as cand:
        print(f"candidate up: ssh -F {cand.ssh_config} golden-candidate\n"
              f"test it:      pytest cis_checks acceptance --hosts='{cand.hostspec}' --sudo\n"
              "Ctrl-C stops the VM (the overlay is discarded).", flush=True)
        try:
            while cand.vm.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            log("stopping")
    return 0


def cmd_test(args):
    from .suite import test_candidate
    run = _run_for(args)
    spec = ImageSpec.load(run.meta.get("spec", args.spec), Baseline.load())
    log = Progress("test")
    with run.stage("test", log) as outcome:
        result = test_candidate(run, spec, cache_dir=args.cache, log=log, workers=args.workers,
                                extra_args=args.pytest_args, exception_paths=args.exceptions)
        if result["exit_code"] != 0:
            outcome["status"] = "failed"
    print(json.dumps(result | {"command": " ".join(result["command"])}, indent=2))
    return 0 if result["exit_code"] == 0 else 1


def cmd_gate(args):
    import datetime as dt
    from .checks.exceptions import parse_date
    from .gate import decide
    run = _run_for(args)
    now = None
    if args.as_of:
        day = parse_date(args.as_of, "--as-of")
        now = dt.datetime.combine(day, dt.time(12, 0), tzinfo=dt.timezone.utc)
    record = decide(run, now=now)
    print(json.dumps({k: record[k] for k in ("version", "decision", "reasons", "counts", "waived", "as_of")},
                     indent=2))
    return 0 if record["decision"] == "pass" else 1


def cmd_publish(args):
    from .supply import signing_key
    run = _run_for(args)
    _, public = signing_key(args.cache)
    entry = Store(args.store).publish(run, Progress("publish"), public_key=public)
    print(json.dumps(entry, indent=2))


def cmd_sbom(args):
    from .supply import sbom_stage
    print(sbom_stage(_run_for(args), Progress("sbom")))


def cmd_scan(args):
    from .supply import scan_stage
    run = _run_for(args)
    spec = ImageSpec.load(run.meta.get("spec", args.spec), Baseline.load())
    if args.feed:
        spec.feeds = {}
        for item in args.feed:
            kind, sep, loc = item.partition("=")
            if not sep:
                raise GoldenError(f"{item!r} is not KIND=PATH_OR_URL", field="--feed")
            spec.feeds.setdefault(kind, []).append(os.path.abspath(loc) if "://" not in loc else loc)
    if args.policy:
        spec.scan_policy = args.policy
    result = scan_stage(run, spec, args.cache, Progress("scan"))
    print(json.dumps({k: v for k, v in result.summary().items() if k != "findings"}, indent=2, default=str))
    return 0 if result.decision == "pass" else 1


def cmd_verify(args):
    from .verify import verify
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
    from .verify import explain, explain_text
    story = explain(Store(args.store), args.target)
    print(json.dumps(story, indent=2, default=str) if args.json else explain_text(story))


def cmd_cve(args):
    from .feeds import load_feeds
    from .scan import affected_images
    if args.feed:
        sources = {}
        for item in args.feed:
            kind, sep, loc = item.partition("=")
            if not sep:
                raise GoldenError(f"{item!r} is not KIND=PATH_OR_URL", field="--feed")
            sources.setdefault(kind, []).append(os.path.abspath(loc) if "://" not in loc else loc)
    else:
        sources = _spec(args).feeds
    rows = affected_images(Store(args.store), load_feeds(sources, args.cache), args.cve)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            pkgs = ", ".join(f"{p['package']} {p['version']} ({p['state']}, fixed {p.get('fixed_version') or '-'})"
                             for p in r["packages"]) or r.get("reason", "no package of this CVE")
            print(f"{r['version']:<36} {r['verdict']:<13} {pkgs}")
    return 1 if any(r["verdict"] == "affected" for r in rows) else 0


def cmd_sign(args):
    from .supply import sign_stage
    paths, public = sign_stage(_run_for(args), args.cache, Progress("sign"))
    print(json.dumps({"attestations": paths, "public_key": public}, indent=2))


def cmd_list(args):
    store = Store(args.store)
    entries = [store.entry(v) for v in store.versions()]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no images published in {store.root}")
    for e in entries:
        print(f"{e['version']:<40} {e['sha256'][:16]}  {e['size'] / 2**20:8.0f} MiB  {e['published_at']}")
    return 0


def cmd_report(args):
    from . import report
    print(report.render(_run_for(args)))


def cmd_run(args):
    from .stages import run_pipeline
    spec = _spec(args)
    log = Progress("run")
    run, record, entry = run_pipeline(spec, runs_root=args.runs_dir, store=Store(args.store), cache_dir=args.cache,
                                      log=log, workers=args.workers, exception_paths=args.exceptions,
                                      emergency=args.emergency)
    summary = {"version": run.version, "run_dir": run.dir, "decision": record["decision"],
               "reasons": record["reasons"], "counts": record["counts"], "published": entry is not None,
               "timings": run.timings()}
    print(json.dumps(summary, indent=2))
    return 0 if entry else 1


def cmd_catalogue(args):
    from .checks.catalogue import Catalogue
    from .checks.coverage import coverage, summary
    baseline = Baseline.load()
    if args.role not in baseline.roles:
        raise GoldenError(f"unknown role {args.role!r} (known: {', '.join(baseline.roles)})", field="--role")
    rows = coverage(args.role, args.level, baseline)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['id']:<11} L{r['level']}  {r['status']:<12} {r['title']}")
    by_chapter, by_level = summary(rows)
    statuses = ["checked", "manual", "not yet", "not adopted", "above level"]
    sections = Catalogue.load().sections
    print(f"\nrole {args.role}, level {args.level or baseline.level_for(args.role)}")
    print(f"{'section':<40}" + "".join(f"{s:>13}" for s in statuses))
    for chapter in sorted(by_chapter, key=int):
        print(f"{chapter + ' ' + sections.get(chapter, ''):<40}" + "".join(f"{by_chapter[chapter][s]:>13}" for s in statuses))
    for level in sorted(by_level):
        print(f"{'level ' + str(level):<40}" + "".join(f"{by_level[level][s]:>13}" for s in statuses))
    return 0


def cmd_feeds_snapshot(args):
    """A tracker-format feed from an image's own changelogs (read-only), for machines without the tracker."""
    from .artifact import mounted_root
    from .feeds import tracker_from_changelogs
    from .util import write_json_atomic
    with mounted_root(args.image) as root:
        feed = tracker_from_changelogs(root, release=args.release)
    if not feed:
        raise GoldenError("no CVE found in the image's changelogs (/usr/share/doc/*/changelog.Debian.gz)",
                          file=args.image)
    write_json_atomic(args.out, feed)
    count = sum(len(v) for v in feed.values())
    print(f"{args.out}: {count} CVEs fixed in {len(feed)} source packages", file=sys.stderr)
    return 0


def cmd_exceptions_check(args):
    from .checks import exceptions
    from .gate import parse_junit
    from .spec import known_images
    baseline = Baseline.load()
    as_of = exceptions.parse_date(args.as_of, "--as-of") if args.as_of else exceptions.utc_today()
    images = known_images(baseline=baseline)
    excs = exceptions.load(args.paths or [exceptions.DEFAULT_DIR], baseline, images, today=as_of)
    results = None
    if args.run:
        run = _run_for(args)
        results = {}
        for case in parse_junit(run.path("junit.xml")):
            cis_id = case["properties"].get("cis_id")
            if cis_id:
                results[cis_id] = case["status"]
    review = exceptions.review(excs, baseline, as_of, images, results, soon_days=args.soon)
    if args.json:
        print(json.dumps(dict(review, as_of=as_of.isoformat(), count=len(excs)), indent=2))
    else:
        print(f"{len(excs)} exception(s) valid as of {as_of} (UTC)")
        titles = {"active": "active", "expiring": f"expiring within {args.soon} days (remind the owners)",
                  "expired": "EXPIRED (each fails the gate of every image in its scope)",
                  "stale": "stale (renew the control or delete the exception)"}
        for group in ("expired", "expiring", "stale", "active"):
            if review[group]:
                print(f"\n{titles[group]}:")
            for e in review[group]:
                extra = f"; {e['stale_because']}" if group == "stale" else ""
                print(f"  {e['id']:<16} CIS {','.join(e['controls']):<22} owner {e['owner']:<28} "
                      f"expires {e['expires']} ({e['days_left']:+d} d){extra}  [{e['file']}]")
    if review["expired"]:
        return 1
    if args.strict and review["stale"]:
        print("golden: error: stale exceptions with --strict", file=sys.stderr)
        return 1
    return 0


def cmd_impact(args):
    from . import impact
    report = impact.impact(args.ref_from, args.ref_to, today=impact._today_or(args.as_of))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(impact.markdown(report))
    return 0


def build_parser():
    env = os.environ.get
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--runs-dir", default=env("GOLDEN_RUNS", os.path.join(ROOT, "runs")),
                        help="where run directories go (env GOLDEN_RUNS; default: runs/ in the repository)")
    common.add_argument("--store", default=env("GOLDEN_STORE", os.path.join(ROOT, "store")),
                        help="the local image store (env GOLDEN_STORE; default: store/ in the repository)")
    common.add_argument("--cache", default=env("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden")),
                        help="cache for base images and probes (env GOLDEN_CACHE; default: ~/.cache/golden)")
    spec_opt = argparse.ArgumentParser(add_help=False)
    spec_opt.add_argument("--spec", default=DEFAULT_SPEC, help=f"image spec (default: {DEFAULT_SPEC})")
    run_opt = argparse.ArgumentParser(add_help=False)
    run_opt.add_argument("--run", required=True, help="run directory, or version such as golden-linux-2026.11.26+1")
    workers = argparse.ArgumentParser(add_help=False)
    workers.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default: 2)")
    exc_opt = argparse.ArgumentParser(add_help=False)
    exc_opt.add_argument("--exceptions", action="append", metavar="PATH",
                         help="exception file or directory (repeatable; default: cis_checks/exceptions)")

    p = argparse.ArgumentParser(prog="golden", description="Golden-image pipeline: build, boot, test, gate, publish.")
    p.add_argument("--version", action="version", version=f"golden {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help, parents):
        sp = sub.add_parser(name, help=help, description=help, parents=parents)
        sp.set_defaults(func=func)
        return sp

    sp = add("run", cmd_run, "all stages: base, build, boot, test, sbom, scan, gate, sign, publish if passed",
             [common, spec_opt, workers, exc_opt])
    sp.add_argument("--emergency", metavar="CVE-ID",
                    help="emergency rebuild: fail unless the new candidate's scan shows this CVE gone; "
                         "records the time to published (MTTR) in emergency.json")
    sp = add("base", cmd_base, "build (or reuse from cache) the base image of a spec", [common, spec_opt])
    sp.add_argument("--rebuild", action="store_true", help="ignore the cache and build again")
    add("build", cmd_build, "new run: build the candidate with Packer", [common, spec_opt, exc_opt])
    sp = add("boot", cmd_boot, "boot an image or a run's candidate (ephemeral overlay) until Ctrl-C", [common])
    sp.add_argument("image", help="a qcow2 file, or a run (directory or version)")
    sp.add_argument("--workdir", help="where keys and console log go")
    sp = add("test", cmd_test, "boot a run's candidate and run the suite (JUnit into the run)",
             [common, spec_opt, run_opt, workers, exc_opt])
    sp.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    sp = add("gate", cmd_gate, "decide pass/fail from a run's evidence; writes gate.json", [common, run_opt])
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="judge exception expiry on this UTC day (default: now)")
    add("publish", cmd_publish, "publish a run's candidate if its gate passed and its signatures verify",
        [common, run_opt])
    add("sbom", cmd_sbom, "write a run's CycloneDX 1.6 SBOM from the artifact's dpkg database", [common, run_opt])
    sp = add("scan", cmd_scan, "match a run's SBOM against vulnerability feeds; the policy decides",
             [common, spec_opt, run_opt])
    sp.add_argument("--feed", action="append", metavar="KIND=PATH_OR_URL",
                    help="instead of the spec's feeds: debian-tracker=... or osv=... (repeatable)")
    sp.add_argument("--policy", metavar="FILE", help="scan policy (default: the spec's, else pipeline/scan-policy.yaml)")
    add("sign", cmd_sign, "sign a run's provenance and test result (DSSE, in-toto)", [common, run_opt])
    sp = add("verify", cmd_verify, "check a published image: digest, signatures, gate, scan (exit 1 on tampering)",
             [common])
    sp.add_argument("target", help="a published version, or an image file (found by its sha256)")
    sp = add("explain", cmd_explain, "which image, which hash, built from what, with which tests, scanned "
             "against which feed, signed by which key", [common])
    sp.add_argument("target", help="a published version, or an image file (found by its sha256)")
    sp.add_argument("--json", action="store_true")
    sp = add("cve", cmd_cve, "which published images contain a package affected by a CVE (from stored SBOMs)",
             [common, spec_opt])
    sp.add_argument("cve", metavar="CVE-ID")
    sp.add_argument("--feed", action="append", metavar="KIND=PATH_OR_URL",
                    help="feeds to use instead of the spec's (repeatable)")
    sp.add_argument("--json", action="store_true")
    sp = add("list", cmd_list, "list published images", [common])
    sp.add_argument("--json", action="store_true")
    add("report", cmd_report, "render a run's report.html", [common, run_opt])
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
    exc = sub.add_parser("exceptions", help="exceptions to the baseline (why, owner, expiry)",
                         description="exceptions to the baseline (why, owner, expiry)")
    exc_sub = exc.add_subparsers(dest="exceptions_command", required=True, metavar="ACTION")
    sp = exc_sub.add_parser("check", parents=[common],
                            help="validate exception files; list active, expiring, expired and stale ones",
                            description="validate exception files; list active, expiring, expired and stale "
                                        "ones. Exit 1 if any expired (or, with --strict, any stale).")
    sp.set_defaults(func=cmd_exceptions_check)
    sp.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: cis_checks/exceptions)")
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="judge expiry on this UTC day (default: today)")
    sp.add_argument("--soon", type=int, default=30, metavar="DAYS", help="'expiring' horizon (default: 30)")
    sp.add_argument("--run", help="also call stale the exceptions whose controls all passed in this run")
    sp.add_argument("--strict", action="store_true", help="stale exceptions are an error")
    sp.add_argument("--json", action="store_true")
    sp = add("impact", cmd_impact, "who a change to the baseline, exceptions or checks affects (Markdown or JSON)", [])
    sp.add_argument("--from", dest="ref_from", required=True, help="git ref of this repository, or a checkout directory")
    sp.add_argument("--to", dest="ref_to", default="HEAD", help="git ref or directory (default: HEAD)")
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="day for 'expiring' (default: today, UTC)")
    sp.add_argument("--json", action="store_true")
    sp = add("catalogue", cmd_catalogue, "every CIS recommendation with its status (checked, manual, not yet, "
             "not adopted, above level), and counts per section and level", [])
    sp.add_argument("--role", default="general-purpose", help="role whose adoption and level apply")
    sp.add_argument("--level", type=int, choices=(1, 2), help="level (default: the role's)")
    sp.add_argument("--json", action="store_true", help="a JSON list of objects (id, title, level, section, status, ...)")
    return p


def _terminate(signum, frame):
    raise SystemExit(128 + signum)      # unwinds context managers: VMs stop, staging is removed


def main(argv=None):
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args) or 0
    except GoldenError as exc:
        print(f"golden: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("golden: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:      # output piped into head and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
