"""The package index beside each published SBOM: made from the SBOM, checked against it, and used by
`golden cve` with the same answers as parsing the SBOMs."""

import json
import os

import pytest

from pipeline.errors import GoldenError
from pipeline.store.store import Store
from pipeline.supply.feeds import load_feeds
from pipeline.supply.packages import INDEX_FILE, check_index, load_index, write_index
from pipeline.supply.sbom import SBOM_FILE, sbom_from_root
from pipeline.supply.scan import affected_images

from .imagefixtures import FEEDS, make_root
from .test_scan import NOW, VERSION


def _store(root, sbom, versions, indexed):
    images = {}
    for v in versions:
        directory = root / "images" / v
        directory.mkdir(parents=True)
        (directory / SBOM_FILE).write_text(json.dumps(sbom))
        if indexed:
            write_index(str(directory / SBOM_FILE), str(directory / INDEX_FILE))
        images[v] = {"version": v, "file": f"images/{v}/{v}.qcow2", "sha256": "ef" * 32}
    (root / "index.json").write_text(json.dumps({"images": images}))
    return Store(str(root))


@pytest.fixture
def sbom(tmp_path):
    return sbom_from_root(make_root(str(tmp_path)), name="linux", version=VERSION, sha256="cd" * 32, now=NOW)


def test_the_index_lists_source_packages_with_their_binaries_and_tracked_names(tmp_path, sbom):
    directory = tmp_path / "img"
    directory.mkdir()
    (directory / SBOM_FILE).write_text(json.dumps(sbom))
    write_index(str(directory / SBOM_FILE), str(directory / INDEX_FILE))
    index = load_index(str(directory))
    by_name = {s["name"]: s for s in index["sources"]}
    assert sorted(by_name["openssh"]["binaries"]) == ["openssh-client", "openssh-server"]
    assert by_name["linux-signed-amd64"]["tracked"] == ["linux", "6.1.192-2"]
    assert index["image"]["release"] == "bookworm" and check_index(str(directory)).endswith("source packages")


def test_an_index_that_is_not_the_sboms_fails_its_check(tmp_path, sbom):
    directory = tmp_path / "img"
    directory.mkdir()
    (directory / SBOM_FILE).write_text(json.dumps(sbom))
    write_index(str(directory / SBOM_FILE), str(directory / INDEX_FILE))
    index = json.loads((directory / INDEX_FILE).read_text())
    index["sources"] = [s for s in index["sources"] if s["name"] != "openssh"]
    (directory / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(GoldenError, match="differs from the stored SBOM"):
        check_index(str(directory))
    (directory / SBOM_FILE).write_text(json.dumps(sbom) + " ")
    with pytest.raises(GoldenError, match="not made from the stored SBOM"):
        check_index(str(directory))


def test_cve_answers_are_the_same_from_the_index_and_from_the_sboms(tmp_path, sbom):
    feeds = load_feeds({"debian-tracker": os.path.join(FEEDS, "tracker.json"), "osv": os.path.join(FEEDS, "osv")},
                       str(tmp_path / "cache"), now=NOW)
    versions = [f"golden-linux-2099.02.{d:02d}+1" for d in range(1, 6)]
    indexed = _store(tmp_path / "a", sbom, versions, indexed=True)
    parsed = _store(tmp_path / "b", sbom, versions, indexed=False)
    for cve in ("CVE-2099-1001", "CVE-2099-1002", "CVE-2099-3002"):
        a, b = affected_images(indexed, feeds, cve), affected_images(parsed, feeds, cve)
        assert [(r["verdict"], r["packages"]) for r in a] == [(r["verdict"], r["packages"]) for r in b], cve
    assert {r["verdict"] for r in affected_images(indexed, feeds, "CVE-2099-1001")} == {"affected"}


def test_a_malformed_index_is_an_error_naming_the_file(tmp_path):
    (tmp_path / INDEX_FILE).write_text(json.dumps({"format": 99}))
    with pytest.raises(GoldenError, match=f"{INDEX_FILE}: format: not a package index"):
        load_index(str(tmp_path))
