"""Create, observe and destroy fleets.

    fleet = create(store, fleets, "web", version, hosts=4, cache_dir=cache)   # 4 local QEMU hosts, booted 2 at a time
    rows = status(store, fleets, "web")          # every host asked what it runs, since when, healthy or not
    usage(store, fleets)                         # which fleets run which image name and major, since when
    destroy(store, fleets, "web", cache_dir=cache)

An inventory fleet (`create_inventory`) describes existing SSH hosts: observed (status, drift, age),
never replaced by golden.
"""

import os
import re

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.fleet import health
from pipeline.fleet.local import LocalEngine
from pipeline.fleet.record import Fleet, check_name, now_iso
from pipeline.fleet.traffic import Observers
from pipeline.util import read_json

BOOT_AT_ONCE = 2        # two cores: more guests booting at once only slows every one of them
MAJOR_RE = re.compile(r"-(\d{4}\.\d{2})\.\d{2}\+\d+$")


def create(store, fleets, name, version, hosts, cache_dir, log=print):
    check_name(name)
    if hosts < 1:
        raise GoldenError("a fleet has at least one host", field="--hosts")
    with fleets.lock(name, f"create of {name}"):
        if fleets.exists(name):
            raise GoldenError(f"fleet {name} exists (golden fleet destroy {name} first)", field="fleet")
        entry = store.resolvable(version)
        role = _role(store, version)
        engine = LocalEngine(store, fleets.runtime(name), cache_dir, log)
        fleet = Fleet(name, "local", entry.get("image", ""), role, now_iso())
        slots = [f"{name}-{i}" for i in range(1, hosts + 1)]
        launched = []
        try:
            for j in range(0, hosts, BOOT_AT_ONCE):
                batch = [engine.launch(name, slot, version) for slot in slots[j:j + BOOT_AT_ONCE]]
                launched += batch
                for host in batch:
                    problems = health.ready(engine, host, version)
                    if problems:
                        raise GoldenError(f"{host['name']}: not healthy: {'; '.join(problems)}", field="fleet")
                    host["state"] = "active"
                    log(f"{host['name']}: ready on {version}")
            fleet.hosts = launched
            fleets.save(fleet)
            Observers(fleets.runtime(name)).start(fleet)
        except BaseException:
            log(f"fleet {name} not created; removing the {len(launched)} host(s) started")
            for host in launched:
                engine.destroy(host)
            fleets.remove(name)
            raise
        return fleet


def create_inventory(store, fleets, name, path):
    """A fleet of existing SSH hosts from an inventory file:

        image: linux
        role: general-purpose
        hosts:
          - {name: app-1, host: 10.0.0.5, port: 22, user: ops, key: ~/.ssh/id_ed25519}
    """
    check_name(name)
    doc = yamlsrc.load(path)
    top = yamlsrc.Fields(doc, doc.data)
    image, role = top.get("image", str, required=True), top.get("role", str, default="")
    hosts = []
    for i, item in enumerate(top.get("hosts", list, required=True)):
        f = yamlsrc.Fields(doc, item, prefix=f"hosts[{i}]")
        key = os.path.expanduser(f.get("key", str, required=True))
        if not os.path.isfile(key):
            raise f.error("key", f"no such key file: {key}")
        hosts.append({"name": f.get("name", str, required=True), "id": None, "version": None, "since": None,
                      "state": "observed", "ssh": {"host": f.get("host", str, required=True),
                                                   "port": f.get("port", int, default=22),
                                                   "user": f.get("user", str, required=True), "key": key}})
        f.done()
    top.done()
    with fleets.lock(name, f"create of {name}"):
        if fleets.exists(name):
            raise GoldenError(f"fleet {name} exists", field="fleet")
        fleet = Fleet(name, "inventory", image, role, now_iso(), hosts)
        for h in fleet.hosts:   # the version is what the host says it runs
            h["version"] = health.check(h).version
        fleets.save(fleet)
        return fleet


def status(store, fleets, name, cache_dir=None):
    fleet = fleets.load(name)
    engine = LocalEngine(store, fleets.runtime(name), cache_dir) if fleet.engine == "local" else None
    rows = []
    for h in fleet.hosts:
        running = engine.alive(h) if engine else None
        hh = health.check(h, expect=h["version"]) if running is not False else None
        rows.append({"host": h["name"], "id": h.get("id"), "recorded_version": h["version"],
                     "version": hh.version if hh else None, "since": h.get("since"),
                     "running": running, "healthy": bool(hh and hh.ok),
                     "problems": (hh.problems if hh else ["QEMU is not running"])})
    return {"fleet": fleet.fleet, "engine": fleet.engine, "image": fleet.image, "role": fleet.role, "hosts": rows}


def usage(store, fleets):
    """Per fleet: which image name and major (YYYY.MM) its hosts run, how many, since when (from the record)."""
    out = []
    for name in fleets.names():
        fleet = fleets.load(name)
        groups = {}
        for h in fleet.hosts:
            m = MAJOR_RE.search(h.get("version") or "")
            key = (fleet.image, m.group(1) if m else None)
            g = groups.setdefault(key, {"fleet": name, "engine": fleet.engine, "image": key[0], "major": key[1],
                                        "versions": set(), "hosts": 0, "since": h.get("since")})
            g["versions"].add(h.get("version"))
            g["hosts"] += 1
            if h.get("since") and (g["since"] is None or h["since"] < g["since"]):
                g["since"] = h["since"]
        out += [{**g, "versions": sorted(v for v in g["versions"] if v)} for g in groups.values()]
    return out


def destroy(store, fleets, name, cache_dir=None, log=print):
    with fleets.lock(name, f"destroy of {name}"):
        engine = LocalEngine(store, fleets.runtime(name), cache_dir, log)
        leftovers = [] if fleets.exists(name) else engine.orphans(set())
        if leftovers:
            # A create killed before it wrote the record: its daemonized hosts are still running.
            Observers(fleets.runtime(name)).stop()
            for h in leftovers:
                engine.destroy(h)
            log(f"fleet {name} had no record; its leftover hosts were removed")
            return
        fleet = fleets.load(name)
        if fleet.engine == "local":
            Observers(fleets.runtime(name)).stop()
            for h in fleet.hosts + engine.orphans({h.get("id") for h in fleet.hosts}):
                engine.destroy(h)
        fleets.remove(name)
        log(f"fleet {name} destroyed")


def _role(store, version):
    path = os.path.join(store.root, "images", version, "run.json")
    return read_json(path, "run record").get("role", "") if os.path.isfile(path) else ""
