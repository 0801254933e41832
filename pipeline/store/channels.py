"""Channels: named pointers at published versions of one image, each with an append-only history.

    promote(store, "golden-linux-2026.11.26+4", "stable", "canary was clean for a week")
    resolve(store, "stable")           # the version, or GoldenError (empty, revoked, not published)
    rollback(store, "stable", "p99 latency regression")   # back to the previous target still usable

A channel belongs to one image name: the index keeps them as channels[<image>][<channel>] =
{"version", "history": [{at, by, action, from, to, reason}]}. NAME is a channel name (when only one
image has it) or IMAGE/CHANNEL. Publish puts each version on `candidate`.
"""

from pipeline.errors import GoldenError
from pipeline.store import hooks
from pipeline.store.revocation import revocation
from pipeline.store.version import NAME_RE, Version

CANDIDATE = "candidate"


def point(index, channel, version, event, reason):
    """Move (or create) a channel in an index being changed, appending the move to its history."""
    if not NAME_RE.match(channel or ""):
        raise GoldenError(f"{channel!r} is not a channel name (lowercase letters, digits, hyphens)", field="channel")
    image = Version.parse(version).name
    ch = index["channels"].setdefault(image, {}).setdefault(channel, {"version": None, "history": []})
    ch["history"].append({"at": event["at"], "by": event["by"], "action": event["action"], "from": ch["version"],
                          "to": version, "reason": reason})
    ch["version"] = version


def pointed_at(index):
    """{version: [IMAGE/CHANNEL, ...]} of the versions a channel points at."""
    out = {}
    for image, chans in index["channels"].items():
        for name, ch in chans.items():
            if ch.get("version"):
                out.setdefault(ch["version"], []).append(f"{image}/{name}")
    return out


def find(index, name):
    """(image, channel name, channel) for NAME or IMAGE/NAME."""
    image, _, channel = name.rpartition("/")
    found = [(i, channel, chans[channel]) for i, chans in sorted(index["channels"].items())
             if channel in chans and (not image or i == image)]
    if not found:
        raise GoldenError(f"no channel {name!r} (channels: {', '.join(names(index)) or 'none'})", field="channel")
    if len(found) > 1:
        raise GoldenError(f"{name!r} is a channel of several images: say which, as one of "
                          + ", ".join(f"{i}/{c}" for i, c, _ in found), field="channel")
    return found[0]


def names(index):
    return [f"{i}/{c}" for i, chans in sorted(index["channels"].items()) for c in sorted(chans)]


def resolve(store, name, now=None):
    """The version a channel points at, if it may be used; GoldenError naming why not."""
    index = store.index()
    image, channel, ch = find(index, name)
    version = ch["version"]
    if not version:
        raise GoldenError(f"channel {image}/{channel} points at nothing", field="channel")
    if version not in index["images"]:
        raise GoldenError(f"channel {image}/{channel} points at {version}, which is no longer published",
                          field="channel")
    why = revocation(store, index, version, now)
    if why:
        raise GoldenError(f"channel {image}/{channel} resolves to nothing: {version} {why}", field="channel")
    return version


def promote(store, version, channel, reason, now=None):
    """Point a channel at a version that is published, not revoked, not deprecated, and verifies."""
    try:
        store.resolvable(version, now)      # verifying hashes the image: done before taking the lock
    except GoldenError as exc:
        raise GoldenError(f"{exc.reason}: it cannot be promoted", field="version") from None
    with store.change("promote", version=version, channel=channel, reason=reason) as c:
        entry = store.entry(version, c.index)
        why = revocation(store, c.index, version, now)
        if why:
            raise GoldenError(f"{version} {why}: it cannot be promoted", field="version")
        if entry.get("deprecated"):
            raise GoldenError(f"{version} is deprecated ({entry['deprecated']['reason']}): promote a newer version",
                              field="version")
        image = Version.parse(version).name
        current = c.index["channels"].get(image, {}).get(channel, {}).get("version")
        if current == version:
            raise GoldenError(f"{image}/{channel} points at {version} already", field="channel")
        point(c.index, channel, version, c.event, reason)
        c.event["from"] = current
    hooks.notify(store, version, "promote", {"channel": channel})
    return version


def rollback(store, name, reason, now=None):
    """Point a channel back at the newest earlier target in its history that is still published and not revoked."""
    with store.change("rollback", channel=name, reason=reason) as c:
        image, channel, ch = find(c.index, name)
        current = ch["version"]
        targets = [h["to"] for h in ch["history"]]
        while targets and targets[-1] == current:      # the current target's own moves
            targets.pop()
        refused = []
        for version in reversed(targets):
            if version == current or version in refused:
                continue
            why = (revocation(store, c.index, version, now) if version in c.index["images"]
                   else "is no longer published")
            if not why:
                point(c.index, channel, version, c.event, reason)
                c.event.update({"channel": f"{image}/{channel}", "from": current, "to": version})
                break
            refused.append(version)
        else:
            raise GoldenError(f"channel {image}/{channel} has no earlier target to roll back to"
                              + (f" (passed over: {', '.join(refused)})" if refused else ""), field="channel")
    hooks.notify(store, version, "promote", {"channel": channel})
    return version
