"""The fleet store: what each fleet runs, one JSON record per fleet in the image store, written atomically.

    fleet = Fleets(store_root, fleets_root).load("web")        # GoldenError if there is no such fleet
    fleet.hosts[0]["version"]; fleets.save(fleet)               # `versions` is recomputed on every save

`<store>/fleets/<fleet>.json` is the one source of truth for which host runs which version since when
(the lifecycle reads its `versions` so that it never deletes what a fleet runs; the KPIs read it).
What a local host needs at run time (its overlay, key, pid file, console) lives apart, under
`<fleets_root>/<fleet>/`, next to the fleet's Prometheus, load generator and rollout state.
"""

import datetime as dt
import fcntl
import glob
import os
import re
from dataclasses import dataclass, field

from pipeline.errors import GoldenError
from pipeline.util import read_json, write_json_atomic

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
ENGINES = ("local", "inventory", "aws")


def now_iso():
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def default_fleets_root(store_root):
    """Run-time state of local fleets: `fleets/` beside the store (env GOLDEN_FLEETS overrides)."""
    return os.environ.get("GOLDEN_FLEETS") or os.path.join(os.path.dirname(os.path.abspath(store_root)), "fleets")


def check_name(name):
    if not NAME_RE.match(name or ""):
        raise GoldenError("a fleet name is lowercase letters, digits and hyphens, starting with a letter "
                          "(at most 31 characters)", field="fleet")
    return name


@dataclass
class Fleet:
    fleet: str
    engine: str
    image: str
    role: str
    created_at: str
    hosts: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)     # engine-specific fields (e.g. the AWS group's names)

    @property
    def versions(self):
        return sorted({h["version"] for h in self.hosts if h.get("version")})

    def host(self, name):
        for h in self.hosts:
            if h["name"] == name:
                return h
        raise GoldenError(f"fleet {self.fleet} has no host {name!r}", field="host")

    def to_dict(self):
        return {"fleet": self.fleet, "engine": self.engine, "image": self.image, "role": self.role,
                "created_at": self.created_at, "versions": self.versions, "hosts": self.hosts, **self.extra}


class Fleets:
    def __init__(self, store_root, fleets_root=None):
        self.store_root = os.path.abspath(store_root)
        self.dir = os.path.join(self.store_root, "fleets")
        self.runtime_root = os.path.abspath(fleets_root or default_fleets_root(store_root))

    def path(self, name):
        return os.path.join(self.dir, f"{check_name(name)}.json")

    def runtime(self, name):
        """The fleet's run-time directory (created)."""
        d = os.path.join(self.runtime_root, check_name(name))
        os.makedirs(d, exist_ok=True)
        return d

    def exists(self, name):
        return os.path.isfile(self.path(name))

    def names(self):
        return sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(self.dir, "*.json")))

    def load(self, name):
        path = self.path(name)
        if not os.path.isfile(path):
            known = ", ".join(self.names()) or "none"
            raise GoldenError(f"no fleet named {name!r} (fleets: {known})", field="fleet")
        data = read_json(path, "fleet record")
        if not isinstance(data, dict) or not isinstance(data.get("hosts"), list) or data.get("engine") not in ENGINES:
            raise GoldenError("not a fleet record (needs engine and a hosts list)", file=path)
        known = {"fleet", "engine", "image", "role", "created_at", "versions", "hosts"}
        return Fleet(data["fleet"], data["engine"], data.get("image", ""), data.get("role", ""),
                     data.get("created_at", ""), data["hosts"], {k: v for k, v in data.items() if k not in known})

    def save(self, fleet):
        os.makedirs(self.dir, exist_ok=True)
        write_json_atomic(self.path(fleet.fleet), fleet.to_dict())

    def remove(self, name):
        path = self.path(name)
        if os.path.exists(path):
            os.unlink(path)

    def lock(self, name, what):
        """An exclusive, non-blocking lock on the fleet for `what` (a rollout, a create, a destroy)."""
        return FleetLock(os.path.join(self.runtime(name), "fleet.lock"), name, what)


class FleetLock:
    """flock on the fleet's lock file; the holder's pid and purpose are written in it for the refusal message."""

    def __init__(self, path, fleet, what):
        self.path, self.fleet, self.what, self.fh = path, fleet, what, None

    def __enter__(self):
        self.fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another golden process"
            self.fh.close()
            raise GoldenError(f"fleet {self.fleet} is busy: {holder}; refusing a second change at once",
                              field="fleet") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"{self.what} (pid {os.getpid()}, since {now_iso()})\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        self.fh.seek(0)
        self.fh.truncate()
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False
