"""Drift on a real guest: a published image booted, asked over SSH by `golden kpi`, first clean against its
SBOM, then patched in place by hand (a package purged, one installed, one replaced by another version)
and each change named. The image is GOLDEN_KPI_IMAGE (a store's images/<version>/ directory) when set,
else the session's published image."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from pipeline.kpi.drift import DPKG_QUERY, collect_packages, parse_dpkg_query
from pipeline.paths import ROOT
from pipeline.vm.boot import booted

pytestmark = [pytest.mark.e2e, pytest.mark.vm]

PURGED = "less"                              # nothing in the image depends on it
ADDED = ("golden-drift-probe", "1.0")
REPLACED = "eject"                           # a leaf package, replaced by an empty one of another version


@pytest.fixture
def image_dir(request):
    given = os.environ.get("GOLDEN_KPI_IMAGE")
    if given:
        return os.path.abspath(given)
    _, qcow2, _ = request.getfixturevalue("published")
    return os.path.dirname(qcow2)


def kpi_store(image_dir, root, ssh):
    """A store holding the image's records (not its qcow2) and a fleet of one host: the booted guest."""
    version = os.path.basename(image_dir)
    store = root / "store"
    os.makedirs(store / "images" / version)
    shutil.copy(os.path.join(os.path.dirname(os.path.dirname(image_dir)), "index.json"), store / "index.json")
    for name in os.listdir(image_dir):
        if not name.endswith(".qcow2"):
            shutil.copy(os.path.join(image_dir, name), store / "images" / version / name)
    os.makedirs(store / "fleets")
    (store / "fleets" / "live.json").write_text(json.dumps({
        "fleet": "live", "engine": "inventory", "image": "linux", "role": "general-purpose",
        "created_at": "2026-12-01T23:00:00+00:00", "versions": [version],
        "hosts": [{"name": "guest-1", "version": version, "since": "2026-12-01T23:01:00+00:00", "state": "active",
                   "ssh": ssh}]}))
    return store


def kpi(store):
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "kpi", "--store", str(store), "--fleet", "live",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (fleet,) = json.loads(proc.stdout)["drift"]["fleets"]
    return fleet["hosts"][0]


def test_drift_names_a_package_changed_by_hand_on_a_live_host(image_dir, tmp_path):
    cache = os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden"))
    qcow2 = os.path.join(image_dir, os.path.basename(image_dir) + ".qcow2")
    with booted(qcow2, tmp_path / "boot", cache_dir=cache) as cand:
        ssh = {"host": "127.0.0.1", "port": cand.vm.port, "user": cand.user, "key": cand.key_path}
        store = kpi_store(image_dir, tmp_path, ssh)
        raw = cand.vm.run(DPKG_QUERY)[1]
        (tmp_path / "dpkg-query-clean.txt").write_text(raw)
        assert collect_packages(ssh) == parse_dpkg_query(raw)
        clean = kpi(store)
        assert clean["state"] == "clean" and clean["packages"] == 0, clean

        name, version = ADDED
        _, replaced, _ = cand.vm.run(f"dpkg-query -W -f '${{Version}} ${{Architecture}}' {REPLACED}")
        replaced_version, replaced_arch = replaced.split()
        build = "set -e; d=$(mktemp -d)"
        for package, pversion, arch in ((name, version, "all"),
                                        (REPLACED, f"{replaced_version}+drift1", replaced_arch)):
            build += (f"; mkdir -p $d/{package}/DEBIAN; printf 'Package: {package}\\nVersion: {pversion}\\n"
                      f"Architecture: {arch}\\nMaintainer: golden tests <root@localhost>\\nDescription: drift probe\\n'"
                      f" > $d/{package}/DEBIAN/control; dpkg-deb --build $d/{package} $d/{package}.deb >/dev/null")
        build += f"; sudo dpkg --purge {PURGED}; sudo dpkg -i $d/{name}.deb $d/{REPLACED}.deb"
        cand.vm.run(build)
        (tmp_path / "dpkg-query-patched.txt").write_text(cand.vm.run(DPKG_QUERY)[1])
        patched = kpi(store)

    assert patched["state"] == "drifted" and patched["packages"] == 3, patched
    assert [(p["package"], p["version"]) for p in patched["added"]] == [ADDED]
    assert [p["package"] for p in patched["removed"]] == [PURGED]
    assert [(p["package"], p["expected"], p["found"]) for p in patched["changed"]] == \
        [(REPLACED, replaced_version, f"{replaced_version}+drift1")]
