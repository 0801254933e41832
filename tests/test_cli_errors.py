"""Bad input to `golden run`: a clear error naming file, field and reason; exit 2; nothing made."""

import hashlib
import os
import shutil

import pytest

from pipeline.cli import main

TOOLS = ["packer", "qemu-system-x86_64", "qemu-img", "xorriso", "mmdebstrap", "sfdisk", "mkfs.ext4", "losetup",
         "partx", "git"]


@pytest.fixture
def dirs(tmp_path):
    return {"runs": tmp_path / "runs", "store": tmp_path / "store", "cache": tmp_path / "cache"}


def golden(dirs, *args):
    return main([*args, "--runs-dir", str(dirs["runs"]), "--store", str(dirs["store"]), "--cache", str(dirs["cache"])])


def assert_nothing_made(dirs):
    assert not dirs["store"].exists() or not any(dirs["store"].iterdir())
    assert not dirs["runs"].exists() or not any(dirs["runs"].iterdir())


def spec_with_image(tmp_path, image, sha):
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: vendor\nrole: general-purpose\nbase:\n  image: {image}\n  sha256: \"{sha}\"\n")
    return path


def test_malformed_spec(tmp_path, dirs, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: x\nrole: general-purpose\nbase: {suite: bookworm\n")
    assert golden(dirs, "run", "--spec", str(spec)) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4: malformed YAML" in err
    assert_nothing_made(dirs)


def test_missing_base_image(tmp_path, dirs, capsys):
    spec = spec_with_image(tmp_path, "nowhere.qcow2", "0" * 64)
    assert golden(dirs, "run", "--spec", str(spec)) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4: base.image: base image not found: {tmp_path / 'nowhere.qcow2'}" in err
    assert_nothing_made(dirs)


def test_wrong_sha256(tmp_path, dirs, capsys):
    image = tmp_path / "vendor.qcow2"
    image.write_bytes(b"not the image you pinned")
    spec = spec_with_image(tmp_path, image, "0" * 64)
    assert golden(dirs, "run", "--spec", str(spec)) == 2
    err = capsys.readouterr().err
    actual = hashlib.sha256(b"not the image you pinned").hexdigest()
    assert f"base.sha256: sha256 of {image} is {actual}, the spec says {'0' * 64}" in err
    assert_nothing_made(dirs)


@pytest.mark.parametrize("missing,package", [("packer", "packer"), ("qemu-system-x86_64", "qemu-system-x86")])
def test_missing_tool(tmp_path, dirs, capsys, monkeypatch, missing, package):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found and tool != missing:
            os.symlink(found, bindir / tool)
    monkeypatch.setenv("PATH", str(bindir))
    assert golden(dirs, "run") == 2
    err = capsys.readouterr().err
    assert f"{missing}: {missing} is not installed; install the Debian package '{package}'" in err
    assert_nothing_made(dirs)


def test_unknown_run(dirs, capsys):
    assert golden(dirs, "gate", "--run", "golden-linux-2026.11.26+99") == 2
    assert "no run directory for 'golden-linux-2026.11.26+99'" in capsys.readouterr().err


def test_unauthorized_time_server(tmp_path, dirs, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(open("images/golden-linux.yaml").read().replace("time_servers: [10.0.2.2]",
                                                                   "time_servers: [pool.ntp.org]")
                    .replace("../feeds/", f"{os.getcwd()}/feeds/")
                    .replace("packages: golden-linux.packages", f"packages: {os.getcwd()}/images/golden-linux.packages"))
    assert golden(dirs, "run", "--spec", str(spec)) == 2
    err = capsys.readouterr().err
    assert "time_servers: time server(s) pool.ntp.org are not authorized by the baseline (CIS 2.3.3.1" in err
    assert_nothing_made(dirs)
