"""The tested artifact of a published version, checked before any target receives its bytes.

    tested = load(Store("store/"), "golden-linux-2026.12.01+1")   # digest re-taken, gate re-read
    tested.path, tested.sha256, tested.gate_digest, tested.labels() # what every target carries

Every target (AMI, vSphere template) is made from `tested.path` after `load` has proven that its
sha256 is the one the store published and the gate passed; `labels()` is what a target tags itself
with, so an AMI or a template can be traced back to the gate record.
"""

import json
import os
import subprocess
from dataclasses import dataclass

from pipeline.errors import GoldenError
from pipeline.store.revocation import revocation
from pipeline.store.version import Version
from pipeline.util import read_json, require_tool, sha256_file


@dataclass
class Tested:
    version: str
    image: str                  # the spec's name: golden-<image>-YYYY.MM.DD+N
    path: str
    sha256: str
    gate_digest: str            # sha256 of the gate record that passed this sha256
    hardening_version: str
    commit: str

    def labels(self):
        """{key: value} every published target carries (AWS tags, vSphere custom attributes)."""
        return {"golden:version": self.version, "golden:sha256": self.sha256, "golden:gate-digest": self.gate_digest,
                "golden:hardening-version": self.hardening_version, "golden:commit": self.commit}

    def virtual_size(self):
        """The disk's size as the guest sees it (bytes), from qemu-img info."""
        return qemu_img_info(self.path)["virtual-size"]


def load(store, version):
    """The published `version`, its digest verified against the index and its gate record; refuses a revoked one."""
    entry = store.entry(version)
    directory = os.path.join(store.root, "images", version)
    path = os.path.join(store.root, entry["file"])
    why = revocation(store, store.index(), version)
    if why:
        raise GoldenError(f"{version} {why}; a revoked version is never published to a target", field="version")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise GoldenError(f"sha256 is {digest}, the store published {entry['sha256']}: the image changed since "
                          "it was tested", file=path)
    gate_path = os.path.join(directory, "gate.json")
    gate = read_json(gate_path, "gate record")
    if gate.get("decision") != "pass" or (gate.get("artifact") or {}).get("sha256") != digest:
        raise GoldenError(f"the gate record does not pass sha256 {digest}", file=gate_path)
    artifact = read_json(os.path.join(directory, "artifact.json"), "artifact record")
    run = read_json(os.path.join(directory, "run.json"), "run record")
    return Tested(version=version, image=Version.parse(version).name, path=path, sha256=digest,
                  gate_digest=sha256_file(gate_path), hardening_version=str(artifact.get("hardening_version")),
                  commit=str(run.get("commit")))


def qemu_img_info(path):
    proc = subprocess.run([require_tool("qemu-img", "qemu-utils"), "info", "--output=json", path],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GoldenError(f"qemu-img info failed: {proc.stderr.strip()}", file=path)
    return json.loads(proc.stdout)


def convert(src, dest, fmt, *options):
    """qemu-img convert of the tested qcow2 into `fmt` (raw, vmdk): the same guest bytes, another container."""
    proc = subprocess.run([require_tool("qemu-img", "qemu-utils"), "convert", "-f", "qcow2", "-O", fmt, *options,
                           src, dest], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GoldenError(f"qemu-img convert to {fmt} failed: {proc.stderr.strip()}", file=src)
    return dest


def release_settings(spec_path, key, shape):
    """A target's settings in an image spec (its `key:` section, through `extends:`); `shape` shows
    the section in the error if it is absent."""
    from pipeline.image.spec import ImageSpec
    releases = ImageSpec.load(spec_path).releases
    if key not in releases:
        raise GoldenError(f"the spec has no {key} section ({key}: {shape})", file=spec_path, field=key)
    return releases[key]
