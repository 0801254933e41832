"""What a release target (an AMI, a vSphere template) does when the store revokes, deprecates or deletes a version.

    hooks.register(lambda store, version, action, record: ...)   # "revoke", "deprecate", "delete" or "promote"
    hooks.notify(store, version, "revoke", entry["revoked"])       # after the store's change has committed

A hook runs after the store's commit (the store is the authority; a target follows it) and must be
idempotent: `replay(store, version)` runs the hooks again for what the index records of a version,
for a target that was down. A hook that raises makes notify raise one GoldenError naming every
failed hook, after all hooks ran.
"""

from pipeline.errors import GoldenError

ACTIONS = ("revoke", "deprecate", "delete", "promote")   # promote: a channel now points at the version
# The record field of a store entry that each action writes (a promotion lives in the channel's history).
RECORD_OF = {"revoke": "revoked", "deprecate": "deprecated", "delete": "deleted"}
_hooks = []


def register(hook):
    """Call `hook(store, version, action, record)` on every revoke, deprecate, delete and channel move
    (promote, with record {"channel": NAME}); returns the hook."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def unregister(hook):
    _hooks.remove(hook)


def notify(store, version, action, record):
    if action not in ACTIONS:
        raise ValueError(f"unknown store action {action!r}")
    failed = []
    for hook in list(_hooks):
        try:
            hook(store, version, action, record)
        except Exception as exc:        # every target is told, whichever fails first
            failed.append(f"{getattr(hook, '__qualname__', hook)}: {exc}")
    if failed:
        raise GoldenError(f"the store recorded {action} of {version}, but a target did not follow: "
                          + "; ".join(failed) + " (run it again with hooks.replay)", field="version")


def replay(store, version):
    """Run the hooks again for every action the index records of a version (published or deleted)."""
    index = store.index()
    entry = index["images"].get(version) or index["deleted"].get(version)
    if entry is None:
        raise GoldenError(f"{version} was never published in {store.root}", field="version")
    for action in RECORD_OF:
        if entry.get(RECORD_OF[action]):
            notify(store, version, action, entry[RECORD_OF[action]])
