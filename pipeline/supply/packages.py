"""The package index of an image: its source packages and versions, read from its SBOM once and
kept beside it in the store (images/<version>/packages.json), so `golden cve` and `golden due`
answer for a thousand published images without parsing a thousand SBOMs.

    index = index_of(sbom_doc)          # {"image": {...}, "sources": [{name, version, binaries, tracked}]}
    write_index(index, path)
    index = load_index(image_dir)       # the stored index, else one made from the stored SBOM
"""

import json
import os
import re

from pipeline.errors import GoldenError
from pipeline.supply.sbom import SBOM_FILE, packages_in
from pipeline.util import read_json, sha256_file, write_json_atomic

INDEX_FILE = "packages.json"
FORMAT = 1


def image_of(doc):
    """The image an SBOM describes: name, version, sha256, distro, release, OSV ecosystem."""
    comp = (doc.get("metadata") or {}).get("component") or {}
    props = {p["name"]: p.get("value") for p in comp.get("properties", [])}
    sha = next((h["content"] for h in comp.get("hashes", []) if h.get("alg") == "SHA-256"), None)
    distro = props.get("golden:distro", "debian-12")
    return {"name": comp.get("name"), "version": comp.get("version"), "sha256": sha, "distro": distro,
            "release": props.get("golden:codename", "bookworm"),
            "ecosystem": "Debian:" + distro.rsplit("-", 1)[-1]}


def sources_of(doc):
    """The SBOM's source packages, each with its binaries and the (name, version) the feeds track it as."""
    binaries, sources = packages_in(doc)
    by_ref = {s["bom-ref"]: dict(s, binaries=[], tracked=tracked_as(s["name"], s["version"])) for s in sources}
    for b in binaries:
        if b["source"] and b["source"]["bom-ref"] in by_ref:
            by_ref[b["source"]["bom-ref"]]["binaries"].append(b["name"])
    return list(by_ref.values())


def tracked_as(name, version):
    """The (name, version) under which the feeds track a source package: the kernel's binaries come
    from linux-signed-<arch> (6.1.192+2), which the feeds know as linux 6.1.192-2."""
    if name.startswith("linux-signed-"):
        return "linux", re.sub(r"^([^+]*)\+", r"\1-", version, count=1)
    return name, version


def index_of(doc, sbom_sha256=None):
    return {"format": FORMAT, "sbom_sha256": sbom_sha256, "image": image_of(doc),
            "sources": [{k: s[k] for k in ("name", "version", "binaries", "tracked")} for s in sources_of(doc)]}


def write_index(sbom_path, out_path):
    """Write the index of the SBOM at `sbom_path`; it records the SBOM's digest it was made from."""
    write_json_atomic(out_path, index_of(read_json(sbom_path, "SBOM"), sha256_file(sbom_path)))
    return out_path


def load_index(image_dir):
    """The stored index of a published image, or one made from its SBOM (images published before
    the index existed); None when the image has neither."""
    path = os.path.join(image_dir, INDEX_FILE)
    if os.path.exists(path):
        index = read_json(path, "package index")
        if index.get("format") != FORMAT or not isinstance(index.get("sources"), list):
            raise GoldenError(f"not a package index of format {FORMAT}", file=path, field="format")
        return index
    sbom = os.path.join(image_dir, SBOM_FILE)
    return index_of(read_json(sbom, "SBOM")) if os.path.exists(sbom) else None


def check_index(image_dir):
    """The stored index must be the one made from the stored SBOM (what `golden verify` asks)."""
    path, sbom = os.path.join(image_dir, INDEX_FILE), os.path.join(image_dir, SBOM_FILE)
    index = read_json(path, "package index")
    if index.get("sbom_sha256") != sha256_file(sbom):
        raise GoldenError("the package index was not made from the stored SBOM", file=path, field="sbom_sha256")
    if index != json.loads(json.dumps(index_of(read_json(sbom, "SBOM"), index["sbom_sha256"]))):
        raise GoldenError("the package index differs from the stored SBOM's packages", file=path, field="sources")
    return f"{len(index['sources'])} source packages"
