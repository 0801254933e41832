"""Lifecycle: a policy deprecates old versions, then deletes them; never what a channel points at or a fleet runs.

    policy = load_policy("pipeline/store/lifecycle-policy.yaml")
    actions = apply(store, policy, dry_run=True)    # [(action, version, why)]; nothing changed

The policy (YAML), per image name, newest first: `retain_at_least` N versions that are not revoked
are kept whatever the other rules say; a version beyond the newest `keep_newest` (by count) or
published more than `deprecate_after_days` ago (by age) is deprecated; a deprecated version is
deleted `delete_after_days` after its deprecation. Protected always: what a channel points at and
what `versions_in_use(store)` returns. Each action is its own store change (index commit, event);
a deleted version's entry moves to the index's "deleted" (its version is never reused), and its
directory is removed after the commit (a removal a crash interrupted is finished by the next run).

Fleets record what they run as store/fleets/<fleet>.json: {"fleet": NAME, "versions": [VERSION, ...]}.
"""

import glob
import json
import os
from dataclasses import dataclass

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.store import hooks
from pipeline.store.channels import pointed_at
from pipeline.store.revocation import effective, parse_time
from pipeline.store.store import _force_rmtree, utc_now
from pipeline.store.version import Version

DEFAULT_POLICY = os.path.join(os.path.dirname(__file__), "lifecycle-policy.yaml")


@dataclass(frozen=True)
class Policy:
    retain_at_least: int
    keep_newest: int | None
    deprecate_after_days: int | None
    delete_after_days: int


def load_policy(path=DEFAULT_POLICY):
    doc = yamlsrc.load(path)
    f = yamlsrc.Fields(doc, doc.data)
    natural = lambda v: None if v >= 0 else "must be 0 or more"       # noqa: E731
    policy = Policy(retain_at_least=f.get("retain_at_least", int, required=True, check=natural),
                    keep_newest=f.get("keep_newest", int, check=lambda v: None if v >= 1 else "must be 1 or more"),
                    deprecate_after_days=f.get("deprecate_after_days", int, check=natural),
                    delete_after_days=f.get("delete_after_days", int, required=True, check=natural))
    if policy.keep_newest is None and policy.deprecate_after_days is None:
        raise doc.error("deprecates nothing: give keep_newest, deprecate_after_days or both", doc.data,
                        field="keep_newest")
    f.done()
    return policy


def versions_in_use(store):
    """{version: [fleet, ...]} from store/fleets/*.json ({"fleet": NAME, "versions": [...]}, written by the fleet
    code); a malformed file is an error, so nothing is deleted on a guess."""
    out = {}
    for path in sorted(glob.glob(os.path.join(store.root, "fleets", "*.json"))):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise GoldenError(f"not JSON: {exc.msg}", file=path, line=exc.lineno) from None
        if not isinstance(data, dict) or not isinstance(data.get("fleet"), str):
            raise GoldenError("must be an object with the fleet's name", file=path, field="fleet")
        versions = data.get("versions")
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise GoldenError("must be a list of versions", file=path, field="versions")
        for v in versions:
            out.setdefault(v, []).append(data["fleet"])
    return out


def plan(store, policy, index, now):
    """[(action, version, why)] the policy asks for now: deprecations, then deletions."""
    protected = {v: f"channel {', '.join(c)}" for v, c in pointed_at(index).items()}
    protected.update({v: f"fleet {', '.join(f)}" for v, f in versions_in_use(store).items()})
    by_image = {}
    for version in sorted(index["images"], key=Version.sort_key, reverse=True):
        by_image.setdefault(Version.parse(version).name, []).append(index["images"][version])
    actions = []
    for entries in by_image.values():
        kept = [e["version"] for e in entries if not effective(e.get("revoked"), now)][:policy.retain_at_least]
        for rank, e in enumerate(entries):
            v = e["version"]
            if v in protected or v in kept:
                continue
            if not e.get("deprecated"):
                age = (now - parse_time(e["published_at"])).days
                if policy.keep_newest is not None and rank >= policy.keep_newest:
                    actions.append(("deprecate", v, f"not among the newest {policy.keep_newest}"))
                elif policy.deprecate_after_days is not None and age > policy.deprecate_after_days:
                    actions.append(("deprecate", v, f"published {age} days ago (> {policy.deprecate_after_days})"))
            elif (now - parse_time(e["deprecated"]["at"])).days >= policy.delete_after_days:
                actions.append(("delete", v, f"deprecated since {e['deprecated']['at']} "
                                             f"(>= {policy.delete_after_days} days)"))
    return sorted(actions, key=lambda a: a[0] != "deprecate")


def apply(store, policy, dry_run=False, now=None, log=print):
    """Carry out the plan, one store change per action (re-checked under the lock); returns the actions."""
    now = now or utc_now()
    actions = plan(store, policy, store.index(), now)
    for action, version, why in actions:
        log(f"{'would ' if dry_run else ''}{action} {version}: {why}")
    if dry_run:
        return actions
    done = []
    for action, version, why in actions:
        try:
            record = _carry_out(store, policy, now, action, version, why)
        except _Changed:
            log(f"skipped {action} {version}: the store changed meanwhile")
            continue
        if action == "delete":
            _force_rmtree(os.path.join(store.root, "images", version))
        done.append((action, version, why))
        hooks.notify(store, version, action, record)
    finish_deletions(store)
    return done


class _Changed(Exception):
    """The plan no longer holds under the lock: the change is abandoned, nothing committed."""


def _carry_out(store, policy, now, action, version, why):
    with store.change(action, version=version, reason=why) as c:
        if (action, version, why) not in plan(store, policy, c.index, now):
            raise _Changed()
        record = {"at": c.event["at"], "by": c.event["by"], "reason": why}
        if action == "deprecate":
            c.index["images"][version]["deprecated"] = record
        else:
            entry = c.index["images"].pop(version)
            entry["deleted"] = record
            c.index["deleted"][version] = entry
    return record


def finish_deletions(store):
    """Remove the directories of deleted versions that a crash left behind (the index says they are gone)."""
    for version in store.index()["deleted"]:
        path = os.path.join(store.root, "images", version)
        if os.path.isdir(path):
            _force_rmtree(path)
