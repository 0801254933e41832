"""The rollout controller's overhead and an emergency rollout's time, measured in one run on a real fleet.

    .venv/bin/python benchmarks/rollout.py --store STORE --from VERSION_A --to VERSION_B [--hosts 4] [--policy FILE]

Boots a fleet of HOSTS local hosts on A, rolls it out to B with the policy's waves and bakes (default
policies/web.yaml), then back to A as an emergency rollout (every wave baked for the policy's
`emergency.bake`), and destroys the fleet. For each rollout it reports the wall time, the sum of its
host replacements (launch to healthy; hosts of one batch, launched at once, count once, by the
slowest), of its waits for Prometheus to answer for the new hosts, of its
bakes and of its analyses, and the controller's overhead: wall − replacements − waits − bakes − analyses,
as a share of the wall time. The baseline of the ratio is the
sum of the replacements measured in the same run (machines differ 2-3x under TCG; compare within a run).
"""

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.errors import GoldenError  # noqa: E402
from pipeline.fleet import manage  # noqa: E402
from pipeline.fleet.record import Fleets  # noqa: E402
from pipeline.paths import POLICIES_DIR  # noqa: E402
from pipeline.rollout.controller import Controller  # noqa: E402
from pipeline.rollout.policy import Policy  # noqa: E402
from pipeline.store.store import Store  # noqa: E402


def seconds(a, b):
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def _batches(hosts, seconds_of, size):
    """The time a list of replacements took: hosts replaced together (a batch of at most max_parallel, launched at
    once) count once, by the slowest of them; batches one after the other add up."""
    return sum(max(seconds_of[h] for h in hosts[i:i + size] if h in seconds_of)
               for i in range(0, len(hosts), size) if any(h in seconds_of for h in hosts[i:i + size]))


def replacement_time(record):
    """(sum of every host's replacement, the part of the wall time spent replacing hosts): a wave's planned batches,
    and the rollback's, in chunks of the policy's max_parallel (the plan's largest batch if the policy file is gone)."""
    per_host = [r["seconds"] for w in record["waves"] for r in w["replacements"]]
    back = (record.get("rollback") or {}).get("replacements", [])
    per_host += [r["seconds"] for r in back]
    planned = {w["name"]: w for w in record["plan"]["waves"]}
    size = max([len(b) for w in record["plan"]["waves"] for b in w.get("batches", [])] or [1])
    with contextlib.suppress(OSError, GoldenError):
        size = Policy.load(record["policy"]).max_parallel
    spent = 0.0
    for w in record["waves"]:
        done = {r["host"]: r["seconds"] for r in w["replacements"]}
        for batch in planned.get(w["name"], {}).get("batches", [w["hosts"]]):
            spent += _batches(batch, done, len(batch))
    # A rolled-back rollout also replaced its new hosts by old ones: that is host time, not the controller's.
    spent += _batches([r["host"] for r in back], {r["host"]: r["seconds"] for r in back}, size)
    return sum(per_host), spent


def figures(record, wall):
    host_time, replacements = replacement_time(record)
    bakes = sum(w["bake"] for w in record["waves"])
    settles = sum((w.get("settle") or {}).get("seconds", 0) for w in record["waves"])
    analyses = sum(seconds(w["measurements"][0]["at"], w["finished_at"]) for w in record["waves"] if w["measurements"])
    overhead = wall - replacements - settles - bakes - analyses
    return {"result": record["result"], "waves": len(record["waves"]), "wall_s": round(wall, 1),
            "host_replacements_s": round(host_time, 1), "replacements_s": round(replacements, 1), "settles_s": round(settles, 1), "bakes_s": bakes, "analyses_s": round(analyses, 1),
            "overhead_s": round(overhead, 1), "overhead_share": round(overhead / wall, 3),
            "wall_over_replacements": round(wall / replacements, 2) if replacements else None}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--record", action="append", metavar="ROLLOUT_JSON",
                   help="only report the figures of recorded rollouts (store/rollouts/<fleet>/<id>/rollout.json; "
                        "repeatable), their wall time from the record's start and finish")
    p.add_argument("--store")
    p.add_argument("--from", dest="a", help="version the fleet starts on")
    p.add_argument("--to", dest="b", help="version rolled out")
    p.add_argument("--hosts", type=int, default=4)
    p.add_argument("--policy", default=os.path.join(POLICIES_DIR, "web.yaml"),
                   help="the rollout policy (default: the web role's, policies/web.yaml)")
    p.add_argument("--cache", default=os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden")))
    args = p.parse_args()
    if args.record:
        out = {}
        for path in args.record:
            record = json.load(open(path))
            out[record["id"]] = {"to": record["to"], "emergency": record.get("emergency"),
                                 **figures(record, seconds(record["started_at"], record["finished_at"]))}
        print(json.dumps(out, indent=2))
        return
    if not (args.store and args.a and args.b):
        p.error("give --store, --from and --to (or --record)")
    store = Store(args.store)
    fleets = Fleets(store.root, tempfile.mkdtemp(prefix="golden-bench-fleets-"))
    policy = Policy.load(args.policy)
    emergency = dataclasses.replace(policy, waves=tuple(dataclasses.replace(w, bake=policy.emergency_bake)
                                                        for w in policy.waves))
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    controller = Controller(store, fleets, args.cache, log=log)
    out = {"hosts": args.hosts, "policy": args.policy}
    t0 = time.monotonic()
    manage.create(store, fleets, "bench", args.a, args.hosts, args.cache, log=log)
    out["create_s"] = round(time.monotonic() - t0, 1)
    try:
        for name, pol, to in (("planned", policy, args.b), ("emergency", emergency, args.a)):
            t0 = time.monotonic()
            record = controller.rollout("bench", to, pol)
            out[name] = figures(record, time.monotonic() - t0)
    finally:
        manage.destroy(store, fleets, "bench", args.cache, log=log)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
