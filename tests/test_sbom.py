import copy
import datetime as dt
import os

import pytest

from pipeline.errors import GoldenError
from pipeline.supply.sbom import packages_in, sbom_from_root, validate_sbom

from .imagefixtures import make_root

SHA = "ab" * 32
NOW = dt.datetime(2099, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def _sbom(tmp_path, **kw):
    return sbom_from_root(make_root(str(tmp_path), **kw), name="linux", version="golden-linux-2099.03.01+1",
                          sha256=SHA, now=NOW)


def test_every_installed_binary_is_a_component_with_a_deb_purl(tmp_path):
    doc = validate_sbom(_sbom(tmp_path))
    assert doc["specVersion"] == "1.6" and doc["bomFormat"] == "CycloneDX"
    binaries, _ = packages_in(doc)
    purls = {b["name"]: b["purl"] for b in binaries}
    # The purl spec keeps a deb epoch in the version and percent-encodes "+".
    assert purls["openssh-server"] == "pkg:deb/debian/openssh-server@1:9.2p1-2%2Bdeb12u3?arch=amd64&distro=debian-12"
    assert purls["base-files"] == "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12"
    assert len(binaries) == 9


def test_a_removed_package_with_config_files_left_is_not_in_the_image(tmp_path):
    doc = _sbom(tmp_path)
    assert "nano" not in {c["name"] for c in doc["components"]}


def test_sources_carry_their_own_version_and_the_binary_links_to_its_source(tmp_path):
    binaries, sources = packages_in(_sbom(tmp_path))
    by_name = {b["name"]: b for b in binaries}
    assert by_name["dmsetup"]["version"] == "2:1.02.185-2"
    assert by_name["dmsetup"]["source"]["name"] == "lvm2" and by_name["dmsetup"]["source"]["version"] == "2.03.16-2"
    assert by_name["bash"]["source"]["version"] == "5.2.15-2"                  # binNMU +b2 rebuilt from 5.2.15-2
    assert by_name["base-files"]["source"]["name"] == "base-files"             # no Source field: itself
    assert by_name["base-files"]["source"]["version"] == "12.4+deb12u5"
    assert by_name["openssh-server"]["source"]["bom-ref"] == by_name["openssh-client"]["source"]["bom-ref"]
    purls = {s["name"]: s["purl"] for s in sources}
    assert purls["openssh"] == "pkg:deb/debian/openssh@1:9.2p1-2%2Bdeb12u3?arch=source&distro=debian-12"
    assert purls["linux-signed-amd64"] == "pkg:deb/debian/linux-signed-amd64@6.1.192%2B2?arch=source&distro=debian-12"
    assert len(sources) == 8                                                  # openssh builds two of them


def test_the_image_is_the_metadata_component_and_depends_on_every_binary(tmp_path):
    doc = _sbom(tmp_path)
    image = doc["metadata"]["component"]
    assert (image["name"], image["version"], image["type"]) == ("linux", "golden-linux-2099.03.01+1",
                                                                 "operating-system")
    assert image["hashes"] == [{"alg": "SHA-256", "content": SHA}]
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    binaries, _ = packages_in(doc)
    assert sorted(deps[image["bom-ref"]]) == sorted(b["bom-ref"] for b in binaries)
    assert doc["serialNumber"] == _sbom(tmp_path / "again")["serialNumber"]        # same image, same id


def test_the_release_comes_from_the_image_os_release(tmp_path):
    doc = _sbom(tmp_path, os_release='ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n')
    props = {p["name"]: p["value"] for p in doc["metadata"]["component"]["properties"]}
    assert props == {"golden:distro": "debian-13", "golden:codename": "trixie"}
    assert all(c["purl"].endswith("distro=debian-13") for c in doc["components"])


def test_a_package_without_version_is_a_located_error(tmp_path):
    with pytest.raises(GoldenError, match="var/lib/dpkg/status: Version: package broken has no Version"):
        _sbom(tmp_path, status="Package: broken\nStatus: install ok installed\nArchitecture: amd64\n")


def test_no_dpkg_database_is_an_error(tmp_path):
    os.makedirs(tmp_path / "root")
    with pytest.raises(GoldenError, match="no dpkg database"):
        sbom_from_root(str(tmp_path / "root"), name="x", version="v", sha256=SHA)


def test_the_schema_rejects_a_broken_document(tmp_path):
    doc = copy.deepcopy(_sbom(tmp_path))
    del doc["components"][0]["name"]
    with pytest.raises(GoldenError, match="not a valid CycloneDX 1.6 document") as err:
        validate_sbom(doc, file="sbom.cdx.json")
    assert err.value.file == "sbom.cdx.json" and err.value.field.startswith("components/0")

