"""Store commands: list (channels, promotion, revocation and lifecycle join them here)."""

import json

from pipeline.cli.common import add
from pipeline.store.store import Store


def cmd_list(args):
    store = Store(args.store)
    entries = [store.entry(v) for v in store.versions()]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no images published in {store.root}")
    for e in entries:
        print(f"{e['version']:<40} {e['sha256'][:16]}  {e['size'] / 2**20:8.0f} MiB  {e['published_at']}")
    return 0


def register(sub, p):
    sp = add(sub, "list", cmd_list, "list published images", [p.common])
    sp.add_argument("--json", action="store_true")
