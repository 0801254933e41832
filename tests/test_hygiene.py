"""The hygiene tests, proven on real root filesystems in real disk images (read through the same
read-only mount the pipeline uses): a clean one passes, one with every leftover fails each test."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from .conftest import ROOT

LEFTOVERS = {
    "test_no_ssh_host_keys": {"etc/ssh/ssh_host_ed25519_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"},
    "test_no_authorized_keys_of_the_build": {"home/golden-build/.ssh/authorized_keys": "ssh-ed25519 AAAA golden-build\n"},
    "test_machine_id_empty_or_absent": {"etc/machine-id": "0123456789abcdef0123456789abcdef\n"},
    "test_no_shell_history": {"root/.bash_history": "curl -u admin:hunter2 https://vault\n"},
    "test_no_cloud_init_instance_data": {"var/lib/cloud/instances/golden-build-1/user-data.txt": "#cloud-config\n"},
    "test_no_apt_proxy_credentials": {"etc/apt/apt.conf.d/90proxy": 'Acquire::http::Proxy "http://u:pw@proxy:3128";\n'},
    "test_no_build_time_temporary_files": {"tmp/golden-provision/plan.tsv": "1.1.1.1\tkernel_modules\tcramfs\n"},
}


def root_tree(path, leftovers=True):
    files = {"etc/golden/hardening.json": json.dumps({"hardening_version": "1.1.0", "applied": ["1.1.1.1"]}),
             "etc/machine-id": "", "etc/apt/apt.conf.d/70debconf": 'DPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure";};\n',
             "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n"}
    if leftovers:
        for planted in LEFTOVERS.values():
            files.update(planted)
        del files["etc/golden/hardening.json"]
    for rel, text in files.items():
        os.makedirs(os.path.join(path, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(path, rel), "w") as fh:
            fh.write(text)
    for d in ("tmp", "var/tmp", "root", "var/lib/cloud/instances"):
        os.makedirs(os.path.join(path, d), exist_ok=True)


def disk(tmp_path, name, leftovers):
    tree = tmp_path / f"{name}-root"
    root_tree(str(tree), leftovers)
    image = tmp_path / f"{name}.raw"
    with open(image, "wb") as fh:
        fh.truncate(64 << 20)
    subprocess.run(["sfdisk", "-q", str(image)], input="label: dos\nstart=2048, type=83\n", text=True, check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "offset=1048576", "-d", str(tree), str(image), "60M"], check=True,
                   capture_output=True)
    return image


def hygiene(image, tmp_path):
    junit = tmp_path / f"{image.stem}.xml"
    subprocess.run([sys.executable, "-m", "pytest", "acceptance", "-m", "hygiene", f"--artifact={image}",
                    f"--junitxml={junit}", "-p", "no:cacheprovider", "-q"], cwd=ROOT, capture_output=True, text=True)
    return {c.get("name"): ("failed" if c.find("failure") is not None or c.find("error") is not None else "passed")
            for c in ET.parse(junit).getroot().iter("testcase")}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the hygiene proof mounts disk images: run as root")
    tmp = tmp_path_factory.mktemp("hygiene")
    return hygiene(disk(tmp, "clean", False), tmp), hygiene(disk(tmp, "dirty", True), tmp)


def test_a_clean_image_passes_every_hygiene_test(results):
    clean, _ = results
    assert clean and all(v == "passed" for v in clean.values()), clean


@pytest.mark.parametrize("test", sorted(LEFTOVERS) + ["test_hardening_record_present"])
def test_each_leftover_fails_its_hygiene_test(results, test):
    _, dirty = results
    assert dirty[test] == "failed", dirty
