"""Commands that put images on servers: fleet (create, status, destroy), rollout, rollback.

Exit codes of `golden rollout`: 0 the fleet runs the new version; 1 rolled back (the message names
the wave, the metric, its value and its threshold); 2 bad input or an error, no host touched.
"""

import json
import sys

from pipeline.cli.common import add
from pipeline.errors import GoldenError
from pipeline.fleet import manage
from pipeline.fleet.record import Fleets
from pipeline.rollout.policy import Policy, policy_path
from pipeline.store.store import Store
from pipeline.util import Progress


def _fleets(args):
    return Store(args.store), Fleets(args.store, args.fleets_dir)


def cmd_fleet_create(args):
    store, fleets = _fleets(args)
    if args.inventory:
        fleet = manage.create_inventory(store, fleets, args.name, args.inventory)
    elif args.engine == "aws":
        from pipeline.fleet import aws
        if not args.image or not args.hosts or not args.region:
            raise GoldenError("an AWS fleet needs --image VERSION, --hosts N and --region", field="fleet create")
        fleet = aws.create_fleet(store, args.name, args.image, args.hosts, args.region, alarms=args.alarm or (),
                                 log=Progress("fleet"))
    else:
        if not args.image or not args.hosts:
            raise GoldenError("give --image VERSION and --hosts N (or --inventory FILE)", field="fleet create")
        fleet = manage.create(store, fleets, args.name, args.image, args.hosts, args.cache, log=Progress("fleet"))
    print(json.dumps(fleet.to_dict(), indent=2))


def cmd_fleet_status(args):
    store, fleets = _fleets(args)
    if args.all or not args.name:
        rows = manage.usage(store, fleets)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for r in rows:
            print(f"{r['fleet']:<16} {r['image']:<12} {r['major'] or '-':<8} {r['hosts']:>3} host(s) "
                  f"since {r['since']}  {', '.join(r['versions'])}")
        return 0
    report = manage.status(store, fleets, args.name, args.cache)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"fleet {report['fleet']} ({report['engine']}, image {report['image']}, role {report['role'] or '-'})")
        for h in report["hosts"]:
            state = "healthy" if h["healthy"] else "UNHEALTHY: " + "; ".join(h["problems"])
            print(f"  {h['host']:<12} {h['version'] or '?':<34} since {h['since']}  {state}")
    return 0 if all(h["healthy"] for h in report["hosts"]) else 1


def cmd_fleet_destroy(args):
    store, fleets = _fleets(args)
    manage.destroy(store, fleets, args.name, args.cache, log=Progress("fleet"))


def _policy(args, fleets, name):
    return Policy.load(args.policy or policy_path(fleets.load(name).role))


def _controller(args):
    from pipeline.rollout.controller import Controller
    store, fleets = _fleets(args)
    return Controller(store, fleets, args.cache, log=Progress("rollout")), fleets


def _finish(record):
    if record is None:
        return 0
    print(json.dumps({k: record.get(k) for k in ("id", "fleet", "to", "result", "reason", "failure", "dir")}, indent=2))
    if record["result"] == "rolled_back":
        f = record["failure"] or {}
        if not f:
            print(f"golden: rolled back: {record.get('reason')}", file=sys.stderr)
        elif f.get("metric") is None:
            print(f"golden: rolled back at wave {f.get('wave')}: {f.get('reason')}", file=sys.stderr)
        else:
            print(f"golden: rolled back at wave {f.get('wave')}: {f.get('metric')} = {f.get('value')} "
                  f"(threshold {f.get('threshold')})", file=sys.stderr)
        return 1
    if record["result"] == "failed":
        print(f"golden: error: rollout {record.get('id')} of {record.get('fleet')} failed: {record.get('reason')}",
              file=sys.stderr)
        return 2
    return 0


def cmd_rollout(args):
    controller, fleets = _controller(args)
    if args.history:
        rows = controller.history(args.name)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for r in rows:
            print(f"{r['id']}  {r['kind']:<8} to {r['to_version'] or '(previous)':<34} {r['result'] or r['phase']:<12} "
                  f"{r['started_at']} → {r['finished_at'] or '-'}  {r['reason'] or ''}")
        return 0
    if args.resume:
        if fleets.load(args.name).engine == "aws":       # an interrupted AWS rollout is rolled back (exit 1)
            from pipeline.fleet import aws
            return _finish(aws.resume(Store(args.store), args.name, log=Progress("rollout")))
        return _finish(controller.resume(args.name, Policy.load))
    if not args.to:
        raise GoldenError("give --to VERSION (or --resume, --history)", field="rollout")
    policy = _policy(args, fleets, args.name)
    if fleets.load(args.name).engine == "aws" and not args.plan:
        from pipeline.fleet import aws
        return _finish(aws.rollout(Store(args.store), args.name, args.to, policy, log=Progress("rollout"),
                                   emergency=bool(args.emergency), cve=args.emergency))
    if args.plan:
        plan = controller.plan(args.name, args.to, policy, args.emergency)
        if args.json:
            print(json.dumps(plan.to_dict(), indent=2))
        else:
            print("\n".join(plan.lines()) if plan.waves else f"every host of {args.name} already runs {args.to}")
        return 0
    return _finish(controller.rollout(args.name, args.to, policy, emergency=args.emergency))


def cmd_rollback(args):
    controller, fleets = _controller(args)
    if fleets.load(args.name).engine == "aws":
        from pipeline.fleet import aws
        _finish(aws.rollback(Store(args.store), args.name, log=Progress("rollout")))
        return 0
    record = controller.rollback(args.name, _policy(args, fleets, args.name))
    _finish(record)
    return 0


def register(sub, parents):
    fleet_dirs = _fleet_dirs()
    p = add(sub, "fleet", None, "Local fleets of hosts booted from published images, and inventories of SSH hosts")
    fsub = p.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    c = add(fsub, "create", cmd_fleet_create, "Boot a fleet of local QEMU hosts from a published version "
            "(or describe existing SSH hosts with --inventory)", [parents.common, fleet_dirs])
    c.add_argument("name")
    c.add_argument("--image", metavar="VERSION", help="published version every host boots")
    c.add_argument("--hosts", type=int, help="how many hosts")
    c.add_argument("--inventory", metavar="FILE", help="YAML inventory of existing SSH hosts (observed only)")
    c.add_argument("--engine", choices=("local", "aws"), default="local",
                   help="local QEMU hosts, or an AWS Auto Scaling group from the version's released AMI")
    c.add_argument("--region", help="AWS: the group's region (the version must be released there)")
    c.add_argument("--alarm", action="append", metavar="NAME", help="AWS: CloudWatch alarm each wave must keep OK")
    s = add(fsub, "status", cmd_fleet_status, "Every host: the version it says it runs, since when, health "
            "(exit 1 if a host is unhealthy); --all: which fleets run which image and major",
            [parents.common, fleet_dirs])
    s.add_argument("name", nargs="?")
    s.add_argument("--all", action="store_true", help="every fleet: image name, major (YYYY.MM), since when")
    s.add_argument("--json", action="store_true")
    d = add(fsub, "destroy", cmd_fleet_destroy, "Stop and remove every host of a fleet, its Prometheus and load",
            [parents.common, fleet_dirs])
    d.add_argument("name")
    r = add(sub, "rollout", cmd_rollout, "Replace a fleet's hosts by hosts of VERSION in waves gated on live "
            "metrics; rolls back by itself (exit 1) when a wave fails", [parents.common, fleet_dirs])
    r.add_argument("name", help="fleet")
    r.add_argument("--to", metavar="VERSION", help="published, verified, not revoked version")
    r.add_argument("--policy", metavar="FILE", help="rollout policy (default: policies/<role>.yaml)")
    r.add_argument("--plan", action="store_true", help="print which hosts each wave replaces, and stop")
    r.add_argument("--json", action="store_true", help="with --plan or --history: as JSON")
    r.add_argument("--emergency", metavar="CVE", help="an emergency rollout for CVE: the policy's short bake")
    r.add_argument("--resume", action="store_true", help="continue an interrupted rollout (finish or roll back)")
    r.add_argument("--history", action="store_true", help="every rollout of the fleet")
    b = add(sub, "rollback", cmd_rollback, "Put a fleet back on the versions before its last completed rollout",
            [parents.common, fleet_dirs])
    b.add_argument("name", help="fleet")
    b.add_argument("--policy", metavar="FILE", help="rollout policy (default: policies/<role>.yaml)")


def _fleet_dirs():
    import argparse
    import os
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--fleets-dir", default=os.environ.get("GOLDEN_FLEETS"),
                   help="run-time state of local fleets (env GOLDEN_FLEETS; default: fleets/ beside the store)")
    return p
