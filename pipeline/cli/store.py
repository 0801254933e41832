"""Store commands: list, promote, channel, revoke, lifecycle, and the store's own upkeep (trust, rotate, gc)."""

import json

from pipeline.cli.common import add
from pipeline.errors import GoldenError
from pipeline.store import channels, lifecycle
from pipeline.store.revocation import revocation, revoke
from pipeline.store.store import Store


def _flags(store, index, entry, pointed):
    flags = [f"on {', '.join(pointed.get(entry['version'], []))}"] if pointed.get(entry["version"]) else []
    why = revocation(store, index, entry["version"])
    if why:
        flags.append(f"REVOKED: {why}")
    elif entry.get("revoked"):
        flags.append(f"revocation scheduled at {entry['revoked']['at']}")
    if entry.get("deprecated"):
        flags.append(f"deprecated {entry['deprecated']['at']}")
    return flags


def cmd_list(args):
    store = Store(args.store)
    index = store.index()
    pointed = channels.pointed_at(index)
    entries = [dict(store.entry(v, index), flags=_flags(store, index, store.entry(v, index), pointed))
               for v in store.versions(index)]
    unlisted = store.unlisted(index)
    if args.json:
        print(json.dumps({"images": entries, "unlisted": unlisted}, indent=2))
        return 0
    if not entries:
        print(f"no images published in {store.root}")
    for e in entries:
        print(f"{e['version']:<40} {e['sha256'][:16]}  {e['size'] / 2**20:8.0f} MiB  {e['published_at']}"
              + "".join(f"  [{f}]" for f in e["flags"]))
    for name in unlisted:
        print(f"{name:<40} unlisted: images/{name}/ is not in the index (golden store gc --unlisted removes it)")
    return 0


def cmd_promote(args):
    channels.promote(Store(args.store), args.version, args.channel, args.reason)
    print(f"{args.channel} -> {args.version}")


def cmd_channel_list(args):
    index = Store(args.store).index()
    for name in channels.names(index):
        image, channel, ch = channels.find(index, name)
        last = ch["history"][-1] if ch["history"] else {}
        print(f"{name:<28} {ch['version'] or '(nothing)':<40} since {last.get('at')} by {last.get('by')}")
    return 0


def cmd_channel_show(args):
    store = Store(args.store)
    index = store.index()
    image, channel, ch = channels.find(index, args.name)
    why = revocation(store, index, ch["version"]) if ch["version"] else "points at nothing"
    if args.json:
        print(json.dumps({"image": image, "channel": channel, "version": ch["version"], "unusable": why,
                          "history": ch["history"]}, indent=2))
        return 0
    print(f"{image}/{channel} -> {ch['version'] or '(nothing)'}" + (f"  (resolves to nothing: {why})" if why else ""))
    for h in ch["history"]:
        print(f"  {h['at']}  {h['by']:<12} {h['action']:<9} {h['from'] or '(nothing)'} -> {h['to']}  {h['reason']}")
    return 0


def cmd_channel_rollback(args):
    version = channels.rollback(Store(args.store), args.name, args.reason)
    print(f"{args.name} -> {version}")


def cmd_revoke(args):
    record = revoke(Store(args.store), args.version, args.reason, at=args.at)
    print(f"{args.version} revoked at {record['at']}: {record['reason']}")


def cmd_lifecycle(args):
    store = Store(args.store)
    actions = lifecycle.apply(store, lifecycle.load_policy(args.policy), dry_run=args.dry_run)
    if not actions:
        print("nothing to do")
    return 0


def cmd_trust(args):
    keyid = Store(args.store).trust(args.key, args.reason)
    print(f"trusting {keyid}")


def cmd_rotate(args):
    keyid = Store(args.store).trust(args.key, args.reason, rotate_from=args.keyid)
    print(f"trusting {keyid}; images signed by {args.keyid} may be re-signed by it")


def cmd_gc(args):
    if not args.unlisted:
        raise GoldenError("say what to collect: --unlisted", field="--unlisted")
    removed = Store(args.store).gc_unlisted()
    if not removed:
        print("no unlisted image directory")


def cmd_events(args):
    events = Store(args.store).events()
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    for e in events:
        rest = {k: v for k, v in e.items() if k not in ("seq", "at", "by", "action")}
        print(f"{e['seq']:>5} {e['at']}  {e['by']:<12} {e['action']:<12} {json.dumps(rest, sort_keys=True)}")
    return 0


def register(sub, p):
    sp = add(sub, "list", cmd_list, "list published images, their channels and flags, and unlisted image directories",
             [p.common])
    sp.add_argument("--json", action="store_true")

    sp = add(sub, "promote", cmd_promote, "point a channel at a published version that verifies and is not revoked",
             [p.common])
    sp.add_argument("version")
    sp.add_argument("--channel", required=True, help="e.g. canary, stable (created on first promote)")
    sp.add_argument("--reason", default="", help="why (kept in the channel's history)")

    channel = sub.add_parser("channel", help="channels: named pointers at versions, with their history",
                             description="channels: named pointers at versions, with their history")
    channel_sub = channel.add_subparsers(dest="channel_command", required=True, metavar="ACTION")
    add(channel_sub, "list", cmd_channel_list, "every channel and what it points at", [p.common])
    sp = add(channel_sub, "show", cmd_channel_show, "a channel's target and history", [p.common])
    sp.add_argument("name", help="CHANNEL, or IMAGE/CHANNEL when several images have it")
    sp.add_argument("--json", action="store_true")
    sp = add(channel_sub, "rollback", cmd_channel_rollback,
             "point a channel back at its previous target that is still published and not revoked", [p.common])
    sp.add_argument("name", help="CHANNEL, or IMAGE/CHANNEL")
    sp.add_argument("--reason", default="", help="why (kept in the channel's history)")

    sp = add(sub, "revoke", cmd_revoke, "revoke a version: never resolved, promoted or rolled out; verify fails; "
             "images built on it are flagged", [p.common])
    sp.add_argument("version")
    sp.add_argument("--reason", required=True)
    sp.add_argument("--at", metavar="TIME", help="ISO 8601 time it takes effect (default: now; later schedules it)")

    sp = add(sub, "lifecycle", cmd_lifecycle, "deprecate, then delete, old versions by a policy; never what a "
             "channel points at or a fleet runs", [p.common])
    sp.add_argument("--policy", metavar="FILE", default=lifecycle.DEFAULT_POLICY,
                    help="lifecycle policy YAML (default: pipeline/store/lifecycle-policy.yaml)")
    sp.add_argument("--dry-run", action="store_true", help="list what it would do; change nothing")

    store = sub.add_parser("store", help="the store's upkeep: trusted keys, rotations, unlisted directories, events",
                           description="the store's upkeep: trusted keys, rotations, unlisted directories, events")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    sp = add(store_sub, "trust", cmd_trust, "trust a public signing key (PEM)", [p.common])
    sp.add_argument("key", metavar="KEY.pub")
    sp.add_argument("--reason", required=True)
    sp = add(store_sub, "rotate", cmd_rotate, "trust a new key and record that it replaces a trusted one: images "
             "signed by the old key verify when re-signed by the new", [p.common])
    sp.add_argument("keyid", metavar="OLD_KEYID", help="SHA256:... of the trusted key being replaced")
    sp.add_argument("key", metavar="NEW_KEY.pub")
    sp.add_argument("--reason", required=True)
    sp = add(store_sub, "gc", cmd_gc, "remove image directories the index does not list (refuses while a channel "
             "or fleet names one)", [p.common])
    sp.add_argument("--unlisted", action="store_true", help="remove the unlisted image directories")
    sp = add(store_sub, "events", cmd_events, "every committed change of the store, oldest first", [p.common])
    sp.add_argument("--json", action="store_true")
