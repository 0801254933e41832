"""Drift: what a host has installed against the SBOM of the image it claims to run, and against its role's peers.

    packages = collect_packages(host["ssh"])                  # asked of the host over SSH (dpkg-query)
    drift(fleet, {"web-1": packages}, {version: image_packages(sbom)})   # pure: added, removed, changed

A server is replaced, never patched: any package a host has that its image has not (added), any the
image has that the host lacks (removed), and any at another version (changed) is drift, named with the
host, the package, its architecture and both versions. A host that could not be asked is "unknown",
never counted as clean. Packages count as present by the SBOM's rule: any dpkg status but config-files
and not-installed (so `dpkg -r`, which leaves config-files behind, removes a package as `--purge` does).
"""

import statistics

import paramiko
from packageurl import PackageURL

from pipeline.errors import GoldenError
from pipeline.supply.sbom import _ABSENT, packages_in

# The status column makes a removed package whose configuration dpkg keeps (config-files) countable as gone.
DPKG_QUERY = r"dpkg-query -W -f '${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n'"


def parse_dpkg_query(text, source="dpkg-query"):
    """{(package, arch): version} of the packages present in dpkg-query's output (DPKG_QUERY's format)."""
    packages = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4 or not fields[1]:
            raise GoldenError(f"expected status, package, version and architecture separated by tabs, got {line!r}",
                              file=source, line=number)
        status, name, version, arch = fields
        if status not in _ABSENT:
            packages[(name, arch)] = version
    return packages


def collect_packages(ssh, timeout=30):
    """The packages a live host has installed, asked over SSH: `ssh` is a fleet host's entry
    {host, port, user, key}. Raises GoldenError naming the host when it cannot be asked."""
    from pipeline.fleet.local import connect, run
    where = f"{ssh.get('user')}@{ssh.get('host')}:{ssh.get('port', 22)}"
    try:
        with connect(ssh, timeout=timeout) as client:
            status, out, err = run(client, DPKG_QUERY, timeout=timeout)
    except KeyError as exc:
        raise GoldenError(f"the host's ssh entry has no {exc.args[0]!r}", field="ssh") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise GoldenError(f"cannot ask {where} for its packages: {type(exc).__name__}: {exc}", field="ssh") from None
    if status != 0:
        raise GoldenError(f"dpkg-query failed on {where} (status {status}): {err.strip()}", field="ssh")
    return parse_dpkg_query(out, source=f"dpkg-query on {where}")


def image_packages(sbom):
    """{(package, arch): version} of the binary packages an SBOM dict lists."""
    binaries, _ = packages_in(sbom)
    out = {}
    for b in binaries:
        arch = PackageURL.from_string(b["purl"]).qualifiers.get("arch", "all") if b.get("purl") else "all"
        out[(b["name"], arch)] = b["version"]
    return out


def differences(have, want):
    """(added, removed, changed) of package dict `have` against `want`, sorted by package."""
    added = [{"package": n, "arch": a, "version": have[(n, a)]} for n, a in sorted(set(have) - set(want))]
    removed = [{"package": n, "arch": a, "version": want[(n, a)]} for n, a in sorted(set(want) - set(have))]
    changed = [{"package": n, "arch": a, "expected": want[(n, a)], "found": have[(n, a)]}
               for n, a in sorted(set(have) & set(want)) if have[(n, a)] != want[(n, a)]]
    return added, removed, changed


def host_drift(host, observed, images):
    """One host's drift: `observed` is its packages or the GoldenError text of why it could not be asked."""
    row = {"host": host["name"], "version": host.get("version"), "added": [], "removed": [], "changed": [],
           "packages": None, "reason": None}
    if isinstance(observed, str):
        row.update(state="unknown", reason=observed)
        return row
    want = images.get(host.get("version"))
    if want is None:
        row.update(state="unknown", reason=f"the store has no SBOM of {host.get('version')}")
        return row
    row["added"], row["removed"], row["changed"] = differences(observed, want)
    row["packages"] = len(row["added"]) + len(row["removed"]) + len(row["changed"])
    row["state"] = "drifted" if row["packages"] else "clean"
    return row


def peers(role_hosts):
    """Differences of each host from its role's consensus: {(package, arch): version} held by most of the
    hosts, present when more than half have it. `role_hosts` is {host: packages}."""
    known = {h: p for h, p in role_hosts.items() if isinstance(p, dict)}
    if len(known) < 2:
        return []
    counts = {}
    for packages in known.values():
        for key, version in packages.items():
            counts.setdefault(key, {}).setdefault(version, 0)
            counts[key][version] += 1
    consensus = {}
    for key, versions in counts.items():
        if sum(versions.values()) * 2 > len(known):
            consensus[key] = max(sorted(versions.items()), key=lambda kv: kv[1])[0]
    out = []
    for host in sorted(known):
        added, removed, changed = differences(known[host], consensus)
        for kind, rows in (("added", added), ("removed", removed), ("changed", changed)):
            out += [{"host": host, "kind": kind, **r} for r in rows]
    return out


def drift(fleets, observed, images):
    """Drift of every host of `fleets` (fleet records as dicts): per fleet its hosts' rows and the most
    drifted count, and per role the differences between its hosts. `observed` is {(fleet, host): packages
    or reason}, `images` {version: packages or None}."""
    out, by_role = {"fleets": [], "roles": []}, {}
    for fleet in fleets:
        rows = [host_drift(h, observed.get((fleet["fleet"], h["name"]), "not asked"), images) for h in fleet["hosts"]]
        counts = [r["packages"] for r in rows if r["packages"] is not None]
        out["fleets"].append({"fleet": fleet["fleet"], "role": fleet.get("role"), "hosts": rows,
                              "drifted": [r["host"] for r in rows if r["state"] == "drifted"],
                              "unknown": [r["host"] for r in rows if r["state"] == "unknown"],
                              "max_packages": max(counts, default=None),
                              "median_packages": statistics.median(counts) if counts else None})
        for h in fleet["hosts"]:
            by_role.setdefault(fleet.get("role") or fleet["fleet"], {})[f"{fleet['fleet']}/{h['name']}"] = \
                observed.get((fleet["fleet"], h["name"]))
    for role in sorted(by_role):
        out["roles"].append({"role": role, "hosts": sorted(by_role[role]), "differences": peers(by_role[role])})
    return out
