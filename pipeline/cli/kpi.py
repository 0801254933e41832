"""Commands that measure the discipline: due (the two rebuild cadences)."""

import json
import os
import sys

from pipeline.cli.common import add, feed_sources, load_spec
from pipeline.errors import GoldenError
from pipeline.paths import ROOT
from pipeline.store.store import Store
from pipeline.util import Progress, read_json


def cmd_due(args):
    import datetime as dt
    from pipeline.checks.exceptions import parse_date
    from pipeline.kpi import due as due_mod
    from pipeline.supply.feeds import load_feeds
    store = Store(args.store)
    sources = feed_sources(args.feed) if args.feed else load_spec(args.spec).feeds
    now = None
    if args.as_of:
        now = dt.datetime.combine(parse_date(args.as_of, "--as-of"), dt.time(12, 0), tzinfo=dt.timezone.utc)
    report = due_mod.due(store, load_feeds(sources, args.cache), now, urgency=args.urgency)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for row in report["images"]:
            state = {"emergency": "EMERGENCY", "planned": "due"}.get(row["due"], "not due")
            print(f"{row['image']:<20} {row['version'] or '-':<36} {state}")
            for e in row["emergency"]:
                print(f"    {e['cve']} ({e['urgency']}) in {e['package']} {e['version']}, fixed in "
                      f"{e['fixed_version']}; runs in fleet(s) {', '.join(e['fleets'])}")
            for reason in row["reasons"]:
                print(f"    {reason}")
    if not args.rebuild:
        return due_mod.exit_code(report)
    return _rebuild(args, store, report, due_mod)


def _rebuild(args, store, report, due_mod):
    """`golden run` for each due image (emergencies first, each proving its most urgent CVE gone)."""
    from pipeline import stages
    rows = [r for r in report["images"] if r["due"] == "emergency"] + \
           [r for r in report["images"] if r["due"] == "planned"]
    failed = []
    for row in rows:
        run = read_json(os.path.join(store.root, "images", row["version"], "run.json"), "run record") \
            if row["version"] else {}
        spec = os.path.join(ROOT, run["spec_in_repository"]) if run.get("spec_in_repository") else run.get("spec")
        if not spec or not os.path.isfile(spec):
            failed.append(f"{row['image']}: its spec {spec or '(none recorded)'} is gone; rebuild it by hand")
            continue
        cve = due_mod.emergency_cve(row) if row["due"] == "emergency" else None
        ctx = stages.Context(load_spec(spec), store, args.cache, Progress(f"due {row['image']}"), emergency=cve)
        try:
            _, _, entry = stages.run_pipeline(ctx, args.runs_dir)
        except GoldenError as exc:
            entry = None
            print(f"golden: error: {row['image']}: {exc}", file=sys.stderr)
        if entry is None:
            failed.append(f"{row['image']}: the rebuild was not published")
    for line in failed:
        print(f"golden: {line}", file=sys.stderr)
    return 1 if failed else 0


def register(sub, p):
    sp = add(sub, "due", cmd_due, "which images are due for a planned rebuild (cadence, newer base, a fix for a "
             "carried package, a revoked ancestor) and which for an emergency one (a CVE affecting what a fleet "
             "runs); exit 0 nothing due, 10 planned, 11 emergency", [p.common, p.spec])
    sp.add_argument("--feed", action="append", metavar="KIND=PATH_OR_URL",
                    help="feeds to judge by instead of the spec's (repeatable)")
    sp.add_argument("--urgency", default="high", help="the lowest urgency that makes an emergency (default: high)")
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="judge on this UTC day (default: now)")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--rebuild", action="store_true",
                    help="run `golden run` for each due image (emergencies with --emergency CVE); exit 0 when "
                         "every rebuild published, 1 otherwise")
