"""The hygiene tests, proven on real root filesystems in real disk images (read through the same
read-only mount the pipeline uses): a clean one passes, one with every leftover fails each test."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from .conftest import ROOT

PASSWD = "root:x:0:0:root:/root:/bin/bash\n"
VERSION = "golden-linux-2026.12.01+7"      # the version the hygiene session is told it inspects
STAMP = {"version": VERSION, "image": "linux", "role": "general-purpose", "level": 1,
         "built_at": "2026-12-01T22:00:00+00:00", "commit": "unknown", "dirty": None, "spec": "images/golden-linux.yaml",
         "spec_sha256": "0" * 64}
LEFTOVERS = {
    "test_no_ssh_host_keys": {"etc/ssh/ssh_host_ed25519_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"},
    "test_no_authorized_keys_of_the_build": {"home/golden-build/.ssh/authorized_keys": "ssh-ed25519 AAAA golden-build\n"},
    "test_machine_id_empty_or_absent": {"etc/machine-id": "0123456789abcdef0123456789abcdef\n"},
    "test_no_shell_history": {"root/.bash_history": "curl -u admin:hunter2 https://vault\n"},
    "test_no_cloud_init_instance_data": {"var/lib/cloud/instances/golden-build-1/user-data.txt": "#cloud-config\n",
                                         "var/lib/cloud/data/instance-id": "golden-build-1\n"},
    "test_no_apt_proxy_credentials": {"etc/apt/apt.conf.d/90proxy": 'Acquire::http::Proxy "http://u:pw@proxy:3128";\n'},
    "test_no_build_time_temporary_files": {"tmp/golden-provision/plan.tsv": "1.1.1.1\tkernel_modules\tcramfs\n"},
    "test_hostname_is_not_the_build_host": {"etc/hostname": "golden-build\n"},
    "test_hosts_file_names_no_host_of_the_build": {"etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tgolden-build\n"},
    "test_account_backups_hold_no_removed_account": {
        "etc/passwd-": PASSWD + "golden-build:x:1000:1001::/home/golden-build:/bin/bash\n",
        "etc/subuid-": "golden-build:100000:65536\n"},
    "test_no_build_time_logs": {"var/log/auth.log": "golden-build userdel[2099]: delete user 'golden-build'\n",
                                "var/log/wtmp": "\x08\x00\x00\x00tty1\n", "var/log/audit/audit.log": "type=DAEMON_END\n",
                                "var/log/installer/syslog": ""},
    "test_no_random_seed_shared_by_every_instance": {"var/lib/systemd/random-seed": "0123456789abcdef0123456789abcdef"},
    "test_no_dhcp_lease_of_the_build": {"var/lib/dhcp/dhclient.ens3.leases": 'default-duid "\\000\\001\\000\\001";\n'},
    "test_no_chrony_drift_of_the_build": {"var/lib/chrony/chrony.drift": "  -12.345  0.678\n"},
    "test_no_configuration_backups": {"etc/pam.d/common-auth.pam-old": "auth [success=1 default=ignore] pam_unix.so nullok\n",
                                      "var/cache/debconf/config.dat-old": "Name: passwd/user-password\n",
                                      "var/backups/passwd.bak": PASSWD},
    "test_no_known_hosts_of_the_build": {"root/.ssh/known_hosts": "|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n"},
    # A stamp copied from another image: it names a version that is not the one under test.
    "test_image_stamp_names_this_image": {"etc/golden/image.json": json.dumps(dict(STAMP, version="golden-linux-2000.01.01+1"))},
}
# What the dirty tree lacks rather than carries.
MISSING = {"test_hardening_record_present": "etc/golden/hardening.json"}


def root_tree(path, leftovers=True):
    """A root filesystem as the build should leave it, or with every leftover planted."""
    files = {"etc/golden/hardening.json": json.dumps({"hardening_version": "1.1.0", "applied": ["1.1.1.1"]}),
             "etc/golden/image.json": json.dumps(STAMP),
             "etc/machine-id": "", "etc/apt/apt.conf.d/70debconf": 'DPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure";};\n',
             "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n", "etc/hostname": "localhost\n",
             "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
             "etc/passwd": PASSWD, "etc/passwd-": PASSWD, "etc/subuid": "", "etc/subuid-": "",
             "etc/pam.d/common-auth": "auth [success=1 default=ignore] pam_unix.so\n",
             "var/log/auth.log": "", "var/log/wtmp": "", "var/log/audit/audit.log": "",
             "var/cache/debconf/config.dat": "Name: debconf/frontend\n", "root/.ssh/authorized_keys": ""}
    if leftovers:
        for planted in LEFTOVERS.values():
            files.update(planted)
        for rel in MISSING.values():
            del files[rel]
    for rel, text in files.items():
        os.makedirs(os.path.join(path, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(path, rel), "w") as fh:
            fh.write(text)
    for d in ("tmp", "var/tmp", "root", "var/lib/cloud/instances", "var/lib/dhcp", "var/lib/chrony", "var/backups"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.symlink("../../usr/share/doc/systemd/README.logs", os.path.join(path, "var/log/README"))


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
                    f"--image-version={VERSION}", f"--junitxml={junit}", "-p", "no:cacheprovider", "-q"], cwd=ROOT,
                   capture_output=True, text=True,
                   check=False)   # the failures are what this reads, from the JUnit
    outcome = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        outcome[case.get("name")] = "passed" if bad is None else f"failed: {bad.get('message')}"
    return outcome


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the hygiene proof mounts disk images: run as root")
    tmp = tmp_path_factory.mktemp("hygiene")
    return hygiene(disk(tmp, "clean", False), tmp), hygiene(disk(tmp, "dirty", True), tmp)


def test_a_clean_image_passes_every_hygiene_test(results):
    clean, _ = results
    assert clean and all(v == "passed" for v in clean.values()), clean


def _named(message, rel):
    """Whether a failure message names the planted file or a directory above it (below the top one)."""
    parts = rel.split("/")
    return any("/" + "/".join(parts[:n]) in message for n in range(2, len(parts) + 1))


def test_the_clean_image_has_a_case_for_every_hygiene_test(results):
    clean, _ = results
    assert set(clean) == set(LEFTOVERS) | set(MISSING), set(clean) ^ (set(LEFTOVERS) | set(MISSING))


@pytest.mark.parametrize("test", sorted(LEFTOVERS) + sorted(MISSING))
def test_each_leftover_fails_its_hygiene_test(results, test):
    _, dirty = results
    assert dirty[test].startswith("failed: "), dirty[test]
    planted = list(LEFTOVERS.get(test, ())) + ([MISSING[test]] if test in MISSING else [])
    unnamed = [rel for rel in planted if not _named(dirty[test], rel)]
    assert not unnamed, f"{test} failed without naming {unnamed}: {dirty[test]}"
