"""`golden due`: which images need a planned rebuild, and which an emergency one, now.

    report = due(store, feeds, now)      # {"images": [...], "planned": [names], "emergency": [names]}
    exit_code(report)                    # 0 nothing due, 10 a planned rebuild, 11 an emergency

The two cadences. Planned (weekly unless the spec's `rebuild: {cadence_days: N}` says otherwise):
the newest usable version of an image is older than its cadence, the channel it was built on
now names a newer base, a loaded feed has a fix for a package it carries, or an ancestor was
revoked. Emergency (hours, not days): a CVE at or above the urgency (default high) with a fix in
the archive affects a version that a fleet runs (store/fleets/*.json).
"""

import datetime as dt
import os

from pipeline.errors import GoldenError
from pipeline.store import channels
from pipeline.store.lifecycle import versions_in_use
from pipeline.store.revocation import revocation
from pipeline.store.version import Version
from pipeline.supply.packages import load_index
from pipeline.supply.scan import URGENCIES, load_policy, match
from pipeline.util import read_json

PLANNED, EMERGENCY = 10, 11          # exit codes that tell CI what to build
FIXES_LISTED = 5                     # CVEs named per image in a reason; the JSON lists them all


def _record(store, version, name):
    path = os.path.join(store.root, "images", version, name)
    return read_json(path, name) if os.path.exists(path) else {}


def _cadence(run):
    """The cadence of the spec the version was built from (its default when the spec is gone)."""
    from pipeline.image.spec import DEFAULT_CADENCE_DAYS, ImageSpec
    spec = run.get("spec")
    if spec and os.path.isfile(spec):
        return ImageSpec.load(spec).cadence_days
    return DEFAULT_CADENCE_DAYS


def _fixes(store, version, feeds, now):
    """Findings of a version's packages that a fix in the loaded feeds would remove."""
    index = load_index(os.path.join(store.root, "images", version))
    if index is None:
        return []
    image = index["image"]
    hits = match(index["sources"], feeds, release=image["release"], ecosystem=image["ecosystem"], now=now)
    return sorted((f for f in hits if f["state"] == "fixed-available"), key=lambda f: (f["id"], f["package"]))


def _newest_usable(store, index, versions, now):
    """The newest version not revoked itself (descending from a revoked base is a reason to rebuild, not to skip)."""
    for version in sorted(versions, key=Version.sort_key, reverse=True):
        if not index["images"][version].get("revoked") or revocation(store, index, version, now) is None:
            return version
    return None


def due(store, feeds, now=None, urgency="high"):
    if urgency not in URGENCIES:
        raise GoldenError(f"must be one of {', '.join(URGENCIES)}", field="--urgency")
    now = now or dt.datetime.now(dt.timezone.utc)
    policy = load_policy(now=now)
    threshold = URGENCIES.index(urgency)
    index = store.index()
    in_use = versions_in_use(store)
    by_image = {}
    for version, entry in index["images"].items():
        by_image.setdefault(entry.get("image") or Version.parse(version).name, []).append(version)
    fixes = {}          # version -> its fixable findings, matched once for the planned and the emergency pass

    def fixable(version):
        if version not in fixes:
            fixes[version] = _fixes(store, version, feeds, now)
        return fixes[version]

    rows = []
    for image in sorted(by_image):
        version = _newest_usable(store, index, by_image[image], now)
        row = {"image": image, "version": version, "reasons": [], "emergency": [], "fixes": []}
        rows.append(row)
        if version is None:
            row["reasons"].append("every published version is revoked")
            continue
        run = _record(store, version, "run.json")
        built = dt.datetime.fromisoformat(run.get("created_at") or index["images"][version]["published_at"])
        row["age_days"] = round((now - built).total_seconds() / 86400, 1)
        row["cadence_days"] = _cadence(run)
        if row["age_days"] > row["cadence_days"]:
            row["reasons"].append(f"{row['age_days']} days old, the cadence is {row['cadence_days']} days")
        base = run.get("base") or {}
        if base.get("channel"):
            try:
                now_on = channels.resolve(store, base["channel"])
            except GoldenError as exc:
                row["reasons"].append(f"its base channel {base['channel']} resolves to nothing: {exc.reason}")
            else:
                if now_on != base.get("version"):
                    row["reasons"].append(f"built on {base.get('version')}; {base['channel']} is now {now_on}")
        why = revocation(store, index, version, now)
        if why:
            row["reasons"].append(f"{version} {why}")
        row["fixes"] = [{k: f[k] for k in ("id", "package", "version", "fixed_version", "urgency")}
                        for f in fixable(version)]
        if row["fixes"]:
            named = ", ".join(sorted({f["id"] for f in row["fixes"]})[:FIXES_LISTED])
            row["reasons"].append(f"fixes in the feeds for {len(row['fixes'])} finding(s) it carries ({named})")
    for version, fleets in sorted(in_use.items()):
        if version not in index["images"]:
            continue
        image = index["images"][version].get("image") or Version.parse(version).name
        row = next(r for r in rows if r["image"] == image)
        for f in fixable(version):
            if policy.rank(f["urgency"]) >= threshold:
                row["emergency"].append({"cve": f["id"], "package": f["package"], "version": version,
                                         "fixed_version": f["fixed_version"], "urgency": f["urgency"],
                                         "rank": policy.rank(f["urgency"]), "fleets": fleets})
    for row in rows:
        row["due"] = "emergency" if row["emergency"] else "planned" if row["reasons"] else None
    return {"as_of": now.isoformat(timespec="seconds"), "urgency": urgency, "images": rows,
            "planned": [r["image"] for r in rows if r["due"] == "planned"],
            "emergency": [r["image"] for r in rows if r["due"] == "emergency"]}


def exit_code(report):
    return EMERGENCY if report["emergency"] else PLANNED if report["planned"] else 0


def emergency_cve(row):
    """The CVE an emergency rebuild must prove gone: the most urgent one, then the first by id."""
    return sorted(row["emergency"], key=lambda e: (-e["rank"], e["cve"]))[0]["cve"]
