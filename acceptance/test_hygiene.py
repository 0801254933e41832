"""Image hygiene: the artifact itself, inspected read-only before any boot, carries no secret and no
leftover of its build (run with --artifact PATH, or --image PATH)."""

import glob
import json
import os
import re

import pytest

pytestmark = pytest.mark.hygiene


def _files(root, *patterns):
    return sorted(p for pattern in patterns for p in glob.glob(os.path.join(root, pattern.lstrip("/"))))


def _rel(root, paths):
    return ["/" + os.path.relpath(p, root) for p in paths]


def test_no_ssh_host_keys(artifact_root):
    found = _files(artifact_root, "/etc/ssh/ssh_host_*")
    assert not found, f"baked SSH host keys: {_rel(artifact_root, found)}"


def test_no_authorized_keys_of_the_build(artifact_root):
    leftovers = _files(artifact_root, "/home/golden-build", "/etc/sudoers.d/*golden-build*")
    keys = _files(artifact_root, "/root/.ssh/authorized_keys", "/home/*/.ssh/authorized_keys")
    baked = [k for k in keys if os.path.getsize(k)]
    assert not leftovers and not baked, f"build account or keys left: {_rel(artifact_root, leftovers + baked)}"


def test_machine_id_empty_or_absent(artifact_root):
    for rel in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        path = os.path.join(artifact_root, rel.lstrip("/"))
        if os.path.exists(path) and not os.path.islink(path):
            assert os.path.getsize(path) == 0, f"{rel} is not empty: every instance would share one identity"


def test_no_shell_history(artifact_root):
    found = _files(artifact_root, "/root/.*history", "/home/*/.*history", "/root/.lesshst", "/home/*/.lesshst",
                   "/root/.viminfo", "/home/*/.viminfo")
    assert not [f for f in found if os.path.getsize(f)], f"shell history left: {_rel(artifact_root, found)}"


def test_no_cloud_init_instance_data(artifact_root):
    found = _files(artifact_root, "/var/lib/cloud/instances/*", "/var/lib/cloud/instance", "/var/lib/cloud/seed/*")
    logs = [p for p in _files(artifact_root, "/var/log/cloud-init*.log") if os.path.getsize(p)]
    assert not found and not logs, f"cloud-init state of the build: {_rel(artifact_root, found + logs)}"


def test_no_apt_proxy_credentials(artifact_root):
    bad = _files(artifact_root, "/etc/apt/auth.conf", "/etc/apt/auth.conf.d/*")
    for conf in _files(artifact_root, "/etc/apt/apt.conf", "/etc/apt/apt.conf.d/*"):
        with open(conf, errors="replace") as fh:
            if re.search(r"Acquire::\w+::Proxy|https?://[^/\s\"]+:[^@/\s\"]+@", fh.read(), re.I):
                bad.append(conf)
    assert not bad, f"apt proxy settings or credentials: {_rel(artifact_root, bad)}"


def test_no_build_time_temporary_files(artifact_root):
    found = _files(artifact_root, "/tmp/*", "/tmp/.[!.]*", "/var/tmp/*", "/usr/sbin/policy-rc.d",
                   "/etc/dpkg/dpkg.cfg.d/golden-build", "/root/golden-*")
    assert not found, f"left by the build: {_rel(artifact_root, found)}"


def test_hardening_record_present(artifact_root):
    path = os.path.join(artifact_root, "etc/golden/hardening.json")
    assert os.path.isfile(path), "no /etc/golden/hardening.json"
    with open(path) as fh:
        record = json.load(fh)
    assert record.get("hardening_version") and record.get("applied"), record
