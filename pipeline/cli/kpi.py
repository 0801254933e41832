"""Commands that measure the discipline: due (the two rebuild cadences) and kpi (MTTR, drift, image age, failure
budget)."""

import datetime as dt
import json
import os
import sys

from pipeline.cli.common import add, feed_sources, load_spec
from pipeline.errors import GoldenError
from pipeline.paths import ROOT
from pipeline.store.store import Store
from pipeline.util import Progress, read_json


def _day(text, option, at=dt.time(12, 0)):
    """A --as-of / --since day as an aware UTC time (None when the option was not given)."""
    from pipeline.checks.exceptions import parse_date
    return dt.datetime.combine(parse_date(text, option), at, tzinfo=dt.timezone.utc) if text else None


def cmd_due(args):
    from pipeline.kpi import due as due_mod
    from pipeline.kpi.emergencies import note_detected
    from pipeline.supply.feeds import load_feeds
    store = Store(args.store)
    sources = feed_sources(args.feed) if args.feed else load_spec(args.spec).feeds
    now = _day(args.as_of, "--as-of")
    report = due_mod.due(store, load_feeds(sources, args.cache), now, urgency=args.urgency)
    if not args.as_of:          # a judgement of another day detects nothing now
        for row in report["images"]:
            for e in row["emergency"]:
                note_detected(store, e["cve"], version=e["version"], fleets=e["fleets"], at=report["as_of"],
                              package=e["package"], fixed_version=e["fixed_version"], urgency=e["urgency"])
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


def cmd_kpi(args):
    from pipeline.kpi import dashboard, figures, openmetrics
    store = Store(args.store)
    now = _day(args.as_of, "--as-of") or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    since = _day(args.since, "--since", at=dt.time(0, 0))
    if since and since > now:
        raise GoldenError(f"{args.since} is after the day judged ({now.date()})", field="--since")
    fleets = figures.select_fleets(store, args.fleet)
    report = figures.figures(store, fleets, figures.observe(fleets), now, since, only=args.fleet)
    if args.html:
        dashboard.write(report, args.html)
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.openmetrics:
        sys.stdout.write(openmetrics.render(report))
    else:
        _print_kpis(report)
    for fleet in report["budget_exceeded"]:
        cur = next(b for b in report["failure_budget"] if b["fleet"] == fleet)["current"]
        print(f"golden: fleet {fleet} exceeded its failure budget: {cur['rolled_back']} of {cur['started']} "
              f"rollouts rolled back since {cur['start']}", file=sys.stderr)
    return figures.exit_code(report)


def _minutes(seconds):
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _print_kpis(r):
    print(f"KPIs as of {r['as_of']}" + (f", since {r['since']}" if r["since"] else ""))
    print("MTTR (detected -> rebuilt -> published -> rolled out):")
    for e in r["mttr"]["emergencies"]:
        phases = ", ".join(f"{k} +{_minutes(v)}" for k, v in e["phases"].items())
        print(f"  {e['cve']:<18} {e['state']:<6} {_minutes(e['seconds']):>10}  {phases}"
              + (f"; waiting for {', '.join(e['waiting'])}" if e["waiting"] else "")
              + ("" if e["detection_recorded"] else "; detection not recorded (from the rebuild's start)"))
    if not r["mttr"]["emergencies"]:
        print("  no emergency recorded")
    print("Drift (target 0):")
    for f in r["drift"]["fleets"]:
        for h in f["hosts"]:
            print(f"  {f['fleet']}/{h['host']:<14} {h['version'] or '-':<36} "
                  + (f"unknown: {h['reason']}" if h["state"] == "unknown" else f"{h['packages']} package(s)"))
            for p in h["added"]:
                print(f"      added   {p['package']}:{p['arch']} {p['version']}")
            for p in h["removed"]:
                print(f"      removed {p['package']}:{p['arch']} {p['version']}")
            for p in h["changed"]:
                print(f"      changed {p['package']}:{p['arch']} {p['expected']} -> {p['found']}")
    print("Image age:")
    for f in r["image_age"]:
        days = lambda s: "-" if s is None else f"{s / 86400:.1f} d"       # noqa: E731
        print(f"  {f['fleet']:<16} median {days(f['median_seconds'])}, max {days(f['max_seconds'])}")
        for h in f["callouts"]:
            print(f"      {h['host']}: {h['callout']}")
    print("Failure budget (rolled back / started, current period):")
    for b in r["failure_budget"]:
        if not b.get("current"):
            print(f"  {b['fleet']:<16} {b['reason']}")
            continue
        c = b["current"]
        print(f"  {b['fleet']:<16} {c['rolled_back']}/{c['started']} (completed {c['completed']}), ratio "
              f"{'-' if c['ratio'] is None else c['ratio']}, budget {b['max_ratio']}"
              + (" EXCEEDED" if b["exceeded"] else ""))


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
    sp = add(sub, "kpi", cmd_kpi, "the KPIs of the fleets: MTTR of emergencies by phase, drift of each host against "
             "its image's SBOM and its role's peers, image age, the failure budget; exit 12 when a fleet's current "
             "period exceeds its rollback budget", [p.common])
    sp.add_argument("--fleet", help="one fleet (default: every fleet in the store)")
    sp.add_argument("--since", metavar="YYYY-MM-DD", help="leave out what happened before this UTC day")
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="judge at noon UTC of this day (default: now)")
    out = sp.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the figures as JSON")
    out.add_argument("--openmetrics", action="store_true", help="print the figures as OpenMetrics text")
    sp.add_argument("--html", metavar="FILE", help="also write a dashboard with charts (self-contained HTML)")
