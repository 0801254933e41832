"""Drift on recorded outputs of a real guest (tests/data/kpi/dpkg-query-*.txt, written by
tests/test_kpi_drift_live.py): booted, it matches its image's SBOM; patched by hand, every package added,
removed or changed is named with host and versions; against its peers the patched host stands out."""

import json
import os
import socket

import pytest

from pipeline.errors import GoldenError
from pipeline.kpi.drift import collect_packages, drift, host_drift, image_packages, parse_dpkg_query, peers

from .test_kpi_figures import DATA, recorded

VERSION = "golden-linux-2026.12.01+1"


@pytest.fixture(scope="module")
def image():
    with open(os.path.join(DATA, "sbom.cdx.json"), encoding="utf-8") as fh:
        return image_packages(json.load(fh))


def host(name):
    return {"name": name, "version": VERSION}


def test_the_booted_image_matches_its_sbom(image):
    clean = parse_dpkg_query(recorded("dpkg-query-clean.txt"))
    assert len(clean) == len(image) > 200
    row = host_drift(host("web-1"), clean, {VERSION: image})
    assert row["state"] == "clean" and row["packages"] == 0


def test_a_host_patched_by_hand_is_named_with_each_package(image):
    row = host_drift(host("web-2"), parse_dpkg_query(recorded("dpkg-query-patched.txt")), {VERSION: image})
    assert row["state"] == "drifted" and row["packages"] == 3
    assert row["added"] == [{"package": "golden-drift-probe", "arch": "all", "version": "1.0"}]
    assert [(p["package"], p["version"]) for p in row["removed"]] == [("less", image[("less", "amd64")])]
    (changed,) = row["changed"]
    assert changed["package"] == "eject" and changed["found"] == changed["expected"] + "+drift1"


def test_a_package_removed_but_not_purged_counts_as_gone(image):
    text = recorded("dpkg-query-clean.txt").replace("installed\tless\t", "config-files\tless\t")
    row = host_drift(host("web-1"), parse_dpkg_query(text), {VERSION: image})
    assert [p["package"] for p in row["removed"]] == ["less"] and row["packages"] == 1


def test_malformed_output_names_the_line():
    with pytest.raises(GoldenError, match=r"dpkg-query on web-1:2: expected status, package"):
        parse_dpkg_query("installed\tbash\t5.2.15-2+b7\tamd64\nbash 5.2\n", source="dpkg-query on web-1")


def test_an_unanswered_or_unknown_host_is_unknown_never_clean(image):
    assert host_drift(host("web-3"), "cannot ask", {VERSION: image})["state"] == "unknown"
    row = host_drift({"name": "web-4", "version": "golden-linux-2026.11.01+1"}, {}, {VERSION: image})
    assert row["state"] == "unknown" and "no SBOM of golden-linux-2026.11.01+1" in row["reason"]


def test_collecting_from_a_port_nobody_listens_on_is_an_error_naming_the_host(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = tmp_path / "id_ed25519"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {key}")
    with pytest.raises(GoldenError, match=f"cannot ask golden-fleet@127.0.0.1:{port} for its packages"):
        collect_packages({"host": "127.0.0.1", "port": port, "user": "golden-fleet", "key": str(key)}, timeout=5)


def test_peers_of_a_role_name_the_host_that_differs():
    clean = parse_dpkg_query(recorded("dpkg-query-clean.txt"))
    patched = parse_dpkg_query(recorded("dpkg-query-patched.txt"))
    diffs = peers({"web/web-1": clean, "web/web-2": patched, "web/web-3": clean, "web/web-4": "unreachable"})
    assert {d["host"] for d in diffs} == {"web/web-2"}
    assert sorted((d["kind"], d["package"]) for d in diffs) == \
        [("added", "golden-drift-probe"), ("changed", "eject"), ("removed", "less")]
    fleet = {"fleet": "web", "role": "web", "hosts": [host(f"web-{n}") for n in (1, 2, 3, 4)]}
    answers = {("web", "web-1"): clean, ("web", "web-2"): patched, ("web", "web-3"): clean}
    report = drift([fleet], answers, {VERSION: image_packages(json.loads(recorded("sbom.cdx.json")))})
    (f,) = report["fleets"]
    assert f["drifted"] == ["web-2"] and f["unknown"] == ["web-4"] and f["max_packages"] == 3
    assert {d["host"] for d in report["roles"][0]["differences"]} == {"web/web-2"}
