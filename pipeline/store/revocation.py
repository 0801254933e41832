"""Revocation: a revoked version is never resolved by a channel, promoted or rolled out, and does not verify.

    revoke(store, "golden-linux-2026.11.26+4", "CVE-2026-1234 in openssl", at="2026-12-24T00:00Z")
    revocation(store, store.index(), "golden-linux-2026.11.26+5")   # "descends from revoked ..." or None

A revocation takes effect at its time (default now; a future time schedules it). It carries down:
an image whose base (its artifact.json's base.sha256, recorded as the entry's base_sha256) is a
revoked image, or descends from one, is treated as revoked, naming the ancestor and its reason.
"""

import datetime as dt
import os

from pipeline.errors import GoldenError
from pipeline.store import hooks
from pipeline.store.store import timestamp, utc_now
from pipeline.util import read_json


def parse_time(text, field="at"):
    """An ISO 8601 time as an aware UTC datetime; a time without an offset is read as UTC."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise GoldenError(f"{text!r} is not an ISO 8601 time such as 2026-12-24T08:00:00Z", field=field) from None
    return when.replace(tzinfo=when.tzinfo or dt.timezone.utc).astimezone(dt.timezone.utc)


def effective(record, now=None):
    return bool(record) and parse_time(record["at"]) <= (now or utc_now())


def revoke(store, version, reason, at=None, now=None):
    """Record the revocation of a published version (at `at`, an ISO 8601 text, default now); returns the record."""
    if not reason or not reason.strip():
        raise GoldenError("a revocation needs a reason", field="reason")
    when = parse_time(at) if at else (now or utc_now())
    with store.change("revoke", version=version, reason=reason, revoked_at=timestamp(when)) as c:
        entry = store.entry(version, c.index)
        if entry.get("revoked"):
            raise GoldenError(f"{version} is revoked already ({entry['revoked']['at']}: {entry['revoked']['reason']})",
                              field="version")
        entry["revoked"] = record = {"at": timestamp(when), "reason": reason, "by": c.event["by"],
                                     "recorded_at": c.event["at"]}
    hooks.notify(store, version, "revoke", record)
    return record


def _base_sha256(store, entry):
    if "base_sha256" in entry:
        return entry["base_sha256"]
    path = os.path.join(store.root, "images", entry["version"], "artifact.json")
    return ((read_json(path, "artifact record") if os.path.exists(path) else {}).get("base") or {}).get("sha256")


def revocation(store, index, version, now=None):
    """Why a version may not be used: "is revoked since ..." or "descends from revoked ...", else None."""
    by_sha = {e["sha256"]: e for e in list(index["deleted"].values()) + list(index["images"].values())}
    entry = index["images"].get(version) or index["deleted"].get(version)
    seen, chain = set(), []
    while entry is not None and entry["version"] not in seen:
        seen.add(entry["version"])
        record = entry.get("revoked")
        if effective(record, now):
            if not chain:
                return f"is revoked since {record['at']}: {record['reason']}"
            return (f"descends from revoked {entry['version']} (via {' <- '.join(chain)}; revoked {record['at']}: "
                    f"{record['reason']})")
        chain.append(entry["version"])
        entry = by_sha.get(_base_sha256(store, entry))
    return None
