"""Image age: how old the image each host runs is, per host and per fleet (median, max), and over time.

    built = built_at(store, "golden-web-2026.12.01+1")        # aware datetime, from the store's records
    image_age(store, fleets, now)                            # per fleet: hosts, median, max, called out

An image was built when its Packer build finished: the run's start (run.json created_at) plus the
base and build stages (timings.json), both sealed in `<store>/images/<version>/` at publish. A host
on a revoked version (or one descending from a revoked image) or a deprecated version is called out.
The history replays the fleet's rollouts: each replacement moves a host to the new version when its
wave finished, a rolled-back rollout moves the hosts it replaced back when it finished.
"""

import datetime as dt
import os
import statistics

from pipeline.store.revocation import parse_time, revocation
from pipeline.util import read_json

BUILD_STAGES = ("base", "build")


def built_at(store, version, index=None):
    """When `version` was built (None when the store keeps no record of it)."""
    directory = os.path.join(store.root, "images", version)
    run_path = os.path.join(directory, "run.json")
    run = read_json(run_path, "run record") if os.path.exists(run_path) else {}
    if run.get("created_at"):
        timings_path = os.path.join(directory, "timings.json")
        timings = read_json(timings_path, "timings") if os.path.exists(timings_path) else {}
        seconds = sum(s.get("seconds", 0) for s in timings.get("stages", []) if s.get("stage") in BUILD_STAGES)
        return parse_time(run["created_at"], field=f"{run_path}: created_at") + dt.timedelta(seconds=seconds)
    entry = (index or store.index())["images"].get(version)
    return parse_time(entry["published_at"]) if entry else None


def _status(store, index, version, now):
    """What to call out about a version: revoked (with why) or deprecated, else None."""
    why = revocation(store, index, version, now)
    if why:
        return f"revoked: {version} {why}"
    entry = index["images"].get(version) or index["deleted"].get(version)
    if entry is None:
        return f"{version} is not in the store"
    if entry.get("deleted"):
        return f"deleted: {version} since {entry['deleted']['at']}"
    if entry.get("deprecated"):
        return f"deprecated: {version} since {entry['deprecated']['at']}"
    return None


def image_age(store, fleets, now):
    """Per fleet (records as dicts): each host's version, build time and age in seconds, the median and max,
    and the hosts called out (revoked, deprecated, unknown to the store)."""
    index = store.index()
    built, status = {}, {}
    out = []
    for fleet in fleets:
        hosts = []
        for h in fleet["hosts"]:
            v = h.get("version")
            if v not in built:
                built[v] = built_at(store, v, index) if v else None
                status[v] = _status(store, index, v, now) if v else "runs no recorded version"
            when = built[v]
            hosts.append({"host": h["name"], "version": v, "built_at": when and when.isoformat(timespec="seconds"),
                          "age_seconds": round((now - when).total_seconds()) if when else None,
                          "callout": status[v]})
        ages = [h["age_seconds"] for h in hosts if h["age_seconds"] is not None]
        out.append({"fleet": fleet["fleet"], "hosts": hosts,
                    "median_seconds": statistics.median(ages) if ages else None,
                    "max_seconds": max(ages) if ages else None,
                    "callouts": [h for h in hosts if h["callout"]]})
    return out


def timeline(fleet, rollouts):
    """[(time, {host: version})] of a fleet, from its rollouts and its record's `since` of each host."""
    moves = []          # (time, host, from, to)
    for r in rollouts:
        replaced = []
        for wave in r.get("waves") or []:
            for rep in wave.get("replacements") or []:
                replaced.append(rep)
                if wave.get("finished_at"):
                    moves.append((parse_time(wave["finished_at"]), rep["host"], rep["from"], rep["to"]))
        if r.get("result") == "rolled_back" and r.get("finished_at"):
            moves += [(parse_time(r["finished_at"]), rep["host"], rep["to"], rep["from"]) for rep in replaced]
    moves += [(parse_time(h["since"]), h["name"], None, h["version"])
              for h in fleet["hosts"] if h.get("since") and h.get("version")]
    moves.sort(key=lambda m: m[0])
    state, seen = {}, set()
    for _, host, before, _ in moves:        # before its first move a host ran what it was moved from
        if host not in seen and before:
            state[host] = before
        seen.add(host)
    start = parse_time(fleet["created_at"]) if fleet.get("created_at") else None
    points = [(start, dict(state))] if start and state and start <= moves[0][0] else []
    for when, host, _, version in moves:
        state[host] = version
        points.append((when, dict(state)))
    return points


def history(store, fleet, rollouts, now, since=None):
    """[{at, median_seconds, max_seconds}] of a fleet's image age at each change of what it runs, and now."""
    index = store.index()
    built = {}
    points = timeline(fleet, rollouts)
    if points:
        points.append((now, points[-1][1]))
    out = []
    for when, state in points:
        if since and when < since:
            continue
        ages = []
        for v in state.values():
            if v not in built:
                built[v] = built_at(store, v, index)
            if built[v] is not None:
                ages.append(max(0, (when - built[v]).total_seconds()))
        if ages:
            out.append({"at": when.isoformat(timespec="seconds"), "median_seconds": statistics.median(ages),
                        "max_seconds": max(ages)})
    return out
