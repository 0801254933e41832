"""Commands of the security team: catalogue, exceptions check, impact."""

import json
import sys

from pipeline.checks import exceptions
from pipeline.checks.baseline import Baseline
from pipeline.cli.common import add, open_run
from pipeline.errors import GoldenError


def cmd_catalogue(args):
    from pipeline.checks.catalogue import Catalogue
    from pipeline.checks.coverage import coverage, summary
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


def cmd_exceptions_check(args):
    from pipeline.evidence.junit import parse_junit
    from pipeline.image.spec import known_images
    baseline = Baseline.load()
    as_of = exceptions.as_of_day(args.as_of)
    images = known_images(baseline=baseline)
    excs = exceptions.load(args.paths or [exceptions.DEFAULT_DIR], baseline, images, today=as_of)
    results = None
    if args.run:
        run = open_run(args)
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
    from pipeline.checks import impact
    report = impact.impact(args.ref_from, args.ref_to, today=exceptions.as_of_day(args.as_of))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(impact.markdown(report))
    return 0


def register(sub, p):
    exc = sub.add_parser("exceptions", help="exceptions to the baseline (why, owner, expiry)",
                         description="exceptions to the baseline (why, owner, expiry)")
    exc_sub = exc.add_subparsers(dest="exceptions_command", required=True, metavar="ACTION")
    sp = exc_sub.add_parser("check", parents=[p.common],
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
    sp = add(sub, "impact", cmd_impact, "who a change to the baseline, exceptions or checks affects (Markdown or JSON)")
    sp.add_argument("--from", dest="ref_from", required=True, help="git ref of this repository, or a checkout directory")
    sp.add_argument("--to", dest="ref_to", default="HEAD", help="git ref or directory (default: HEAD)")
    sp.add_argument("--as-of", metavar="YYYY-MM-DD", help="day for 'expiring' (default: today, UTC)")
    sp.add_argument("--json", action="store_true")
    sp = add(sub, "catalogue", cmd_catalogue, "every CIS recommendation with its status (checked, manual, not yet, "
             "not adopted, above level), and counts per section and level")
    sp.add_argument("--role", default="general-purpose", help="role whose adoption and level apply")
    sp.add_argument("--level", type=int, choices=(1, 2), help="level (default: the role's)")
    sp.add_argument("--json", action="store_true", help="a JSON list of objects (id, title, level, section, status, ...)")
