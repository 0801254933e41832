"""The OVA of the tested disk passes ovftool's offline rules, and check() catches each way to break them."""

import hashlib
import io
import subprocess
import tarfile

import pytest

from pipeline.release import ova
from pipeline.release import tested as tested_mod

from .emulators import published_store, small_qcow2

VERSION = "golden-linux-2026.12.01+1"


@pytest.fixture
def built(tmp_path):
    store = published_store(str(tmp_path / "store"), VERSION, small_qcow2(str(tmp_path / "disk.qcow2")))
    tested = tested_mod.load(store, VERSION)
    out = tmp_path / "out"
    out.mkdir()
    return tested, ova.build(tested, str(out))


def members(path):
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def rewrite(path, items):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_the_ova_holds_descriptor_manifest_and_the_tested_disk_in_order(built, tmp_path):
    tested, path = built
    assert ova.check(path) == []
    items = members(path)
    assert [n for n, _ in items] == ["golden-linux-2026.12.01-build1.ovf", "golden-linux-2026.12.01-build1.mf",
                                     "golden-linux-2026.12.01-build1-disk1.vmdk"]
    disk = tmp_path / "back.qcow2"
    (tmp_path / "d.vmdk").write_bytes(items[2][1])
    subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(tmp_path / "d.vmdk"), str(disk)], check=True)
    tested_mod.convert(tested.path, str(tmp_path / "orig.raw"), "raw")
    assert disk.read_bytes() == (tmp_path / "orig.raw").read_bytes()     # the guest sees the tested bytes
    descriptor = items[0][1].decode()
    assert f'ovf:capacity="{tested.virtual_size()}"' in descriptor and tested.sha256 in descriptor
    assert tested.gate_digest in descriptor


@pytest.mark.parametrize("damage, problem", [
    (lambda items: [items[1], items[0], items[2]], "first member must be the .ovf"),
    (lambda items: [items[0], items[2], items[1]], "second member must be the manifest"),
    (lambda items: [items[0], items[1], (items[2][0], items[2][1] + b"x")], "manifest digest of"),
    (lambda items: [items[0], items[1]], "which the OVA does not hold"),
    (lambda items: [items[0], (items[1][0], items[1][1].replace(b"= ", b"=")), items[2]], "is not SHA256(file)= hex"),
])
def test_check_rejects_a_broken_ova(built, damage, problem):
    _, path = built
    rewrite(path, damage(members(path)))
    assert any(problem in p for p in ova.check(path)), ova.check(path)


def test_check_rejects_a_descriptor_whose_disk_is_attached_to_nothing(built):
    _, path = built
    items = members(path)
    ovf = items[0][1].replace(b"ovf:/disk/vmdisk1", b"ovf:/disk/other")
    digest = hashlib.sha256(ovf).hexdigest().encode()
    manifest = b"\n".join(l if not l.startswith(b"SHA256(" + items[0][0].encode()) else
                          b"SHA256(" + items[0][0].encode() + b")= " + digest for l in items[1][1].split(b"\n"))
    rewrite(path, [(items[0][0], ovf), (items[1][0], manifest), items[2]])
    assert ova.check(path) == ["Disk vmdisk1 is attached to no hardware Item"]
