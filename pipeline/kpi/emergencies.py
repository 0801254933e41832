"""The emergency ledger: one record per CVE in the store, the phases of its fix with their times, and its MTTR.

    note_detected(store, "CVE-2026-1234", version="golden-web-2026.12.01+1", fleets=["web"], at=now)
    mttr(load(store, "CVE-2026-1234"), now)     # {"state": "open" | "closed", "seconds", "phases": {...}}

`<store>/emergencies/<CVE>.json` holds {"cve", "phases": [...]}: phases are only ever appended, each
with its time, under a lock, and the file is replaced atomically. `golden due` notes the detection (the
first time a loaded feed lists the CVE as affecting a version a fleet runs; fleets found affected later
are appended as `affected`), `golden run --emergency CVE` notes `rebuilt` (the gate passed with the CVE
gone) and `published`, and the rollout controller notes `rolled_out` per fleet when an emergency rollout
has put its last host on a fixed version. MTTR runs from the detection until every affected fleet is
rolled out; until then the emergency is open and its elapsed time is reported.
"""

import contextlib
import datetime as dt
import fcntl
import glob
import os
import re
import statistics

from pipeline.errors import GoldenError
from pipeline.store.revocation import parse_time
from pipeline.util import read_json, write_json_atomic

LEDGER_DIR = "emergencies"
PHASES = ("detected", "rebuilt", "published", "rolled_out")
# An advisory id is also a file name: CVE-2026-1234, GHSA-xxxx-xxxx-xxxx, DSA-5555-1.
ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9][A-Za-z0-9._-]*$")


def path(store, cve):
    if not isinstance(cve, str) or not ID_RE.match(cve):
        raise GoldenError(f"{cve!r} is not an advisory id such as CVE-2026-1234", field="cve")
    return os.path.join(store.root, LEDGER_DIR, f"{cve}.json")


def load(store, cve):
    """The ledger of one CVE, or None when nothing was noted for it."""
    p = path(store, cve)
    return _checked(read_json(p, "emergency ledger"), p) if os.path.exists(p) else None


def load_all(store):
    """Every ledger in the store, by CVE id."""
    out = {}
    for p in sorted(glob.glob(os.path.join(store.root, LEDGER_DIR, "*.json"))):
        ledger = _checked(read_json(p, "emergency ledger"), p)
        out[ledger["cve"]] = ledger
    return out


def _checked(ledger, p):
    if not isinstance(ledger, dict) or not isinstance(ledger.get("cve"), str) or \
            not isinstance(ledger.get("phases"), list):
        raise GoldenError("not an emergency ledger (needs cve and a phases list)", file=p)
    for i, phase in enumerate(ledger["phases"]):
        if not isinstance(phase, dict) or phase.get("phase") not in PHASES + ("affected",) or "at" not in phase:
            raise GoldenError(f"must be one of {', '.join(PHASES)} or affected, with its time", file=p,
                              field=f"phases[{i}]")
        parse_time(phase["at"], field=f"{p}: phases[{i}].at")
    return ledger


def _iso(at):
    when = parse_time(at) if isinstance(at, str) else (at or dt.datetime.now(dt.timezone.utc))
    if when.tzinfo is None:
        raise GoldenError("a time needs its UTC offset", field="at")
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _changing(store, cve):
    """The ledger (a new one if absent) for the block, written back atomically under the ledger lock."""
    p = path(store, cve)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(os.path.join(os.path.dirname(p), ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ledger = load(store, cve) or {"cve": cve, "phases": []}
        before = len(ledger["phases"])
        yield ledger
        if len(ledger["phases"]) != before:
            write_json_atomic(p, ledger)


def _phases(ledger, name):
    return [p for p in ledger["phases"] if p["phase"] == name]


def note_detected(store, cve, *, version, fleets, at=None, **details):
    """`golden due` reports the CVE affecting `version`, run by `fleets`: the first call is the detection,
    later calls append only fleets not yet known as affected. Extra details (package, urgency) are kept."""
    with _changing(store, cve) as ledger:
        known = {f for p in _phases(ledger, "detected") + _phases(ledger, "affected") for f in p["fleets"]}
        new = sorted(set(fleets) - known)
        if not _phases(ledger, "detected"):
            ledger["phases"].append({"phase": "detected", "at": _iso(at), "version": version,
                                     "fleets": sorted(set(fleets)), **details})
        elif new:
            ledger["phases"].append({"phase": "affected", "at": _iso(at), "version": version, "fleets": new})
        return ledger


def note_rebuilt(store, cve, version, *, started_at, at=None):
    """`golden run --emergency CVE` built `version` and its gate passed with the CVE gone."""
    with _changing(store, cve) as ledger:
        ledger["phases"].append({"phase": "rebuilt", "at": _iso(at), "version": version,
                                 "started_at": _iso(started_at)})
        return ledger


def note_published(store, cve, version, *, at=None):
    """The emergency rebuild `version` is published in the store."""
    with _changing(store, cve) as ledger:
        ledger["phases"].append({"phase": "published", "at": _iso(at), "version": version})
        return ledger


def note_rolled_out(store, cve, fleet, version, at=None):
    """The emergency rollout of `version` (a published fix of `cve`) put the last host of `fleet` on it at
    `at` (ISO 8601 text with offset, or an aware datetime; default now)."""
    with _changing(store, cve) as ledger:
        fixes = {p["version"] for p in _phases(ledger, "published")}
        if version not in fixes:
            raise GoldenError(f"{version} is not a published fix of {cve} (published fixes: "
                              f"{', '.join(sorted(fixes)) or 'none'})", file=path(store, cve), field="version")
        ledger["phases"].append({"phase": "rolled_out", "at": _iso(at), "fleet": fleet, "version": version})
        return ledger


def mttr(ledger, now):
    """Time to repair of one emergency: its state, the seconds from detection to the last affected fleet
    rolled out (or elapsed so far), each phase's time, and the fleets still waiting."""
    first = lambda name: min((parse_time(p["at"]) for p in _phases(ledger, name)), default=None)  # noqa: E731
    detected = first("detected")
    rebuilt_phase = next(iter(_phases(ledger, "rebuilt")), None)
    start = detected or (parse_time(rebuilt_phase["started_at"]) if rebuilt_phase else None)
    affected = {f for p in _phases(ledger, "detected") + _phases(ledger, "affected") for f in p["fleets"]}
    rolled = {}
    for p in _phases(ledger, "rolled_out"):
        rolled.setdefault(p["fleet"], parse_time(p["at"]))
    affected |= set(rolled)
    waiting = sorted(affected - set(rolled))
    closed = bool(affected) and not waiting
    end = max(rolled.values()) if closed else now
    marks = {"detected": start, "rebuilt": first("rebuilt"), "published": first("published"),
             "rolled_out": end if closed else None}
    phases, last = {}, start
    for name in PHASES[1:]:
        if marks[name] is not None and last is not None:
            phases[name] = round((marks[name] - last).total_seconds(), 1)
            last = marks[name]
    return {"cve": ledger["cve"], "state": "closed" if closed else "open",
            "detected_at": detected and detected.isoformat(timespec="seconds"),
            "detection_recorded": detected is not None, "started_at": start and start.isoformat(timespec="seconds"),
            "seconds": round((end - start).total_seconds(), 1) if start else None,
            "phases": phases, "fleets": sorted(affected), "waiting": waiting,
            "fixed_by": sorted({p["version"] for p in _phases(ledger, "published")})}


def summary(ledgers, now, since=None, fleets=None):
    """MTTR of every emergency detected (or, without a detection, rebuilt) at or after `since`, that affects
    one of `fleets` (or no fleet yet)."""
    rows = [mttr(ledger, now) for ledger in ledgers.values()]
    rows = [r for r in rows if (since is None or r["started_at"] is None or parse_time(r["started_at"]) >= since)
            and (fleets is None or not r["fleets"] or set(fleets) & set(r["fleets"]))]
    closed = [r["seconds"] for r in rows if r["state"] == "closed"]
    return {"emergencies": rows, "open": [r["cve"] for r in rows if r["state"] == "open"],
            "median_seconds": statistics.median(closed) if closed else None,
            "max_seconds": max(closed) if closed else None}
