"""Image hygiene: the artifact itself, inspected read-only before any boot, carries no secret and no
leftover of its build (run with --artifact PATH, or --image PATH)."""

import glob
import json
import os
import re
import stat

import pytest

from pipeline.image import stamp

pytestmark = pytest.mark.hygiene


def _files(root, *patterns):
    return sorted({p for pattern in patterns
                   for p in glob.glob(os.path.join(root, pattern.lstrip("/")), recursive=True)})


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
    found = _files(artifact_root, "/var/lib/cloud/instances/*", "/var/lib/cloud/instance", "/var/lib/cloud/seed/*",
                   "/var/lib/cloud/data/*", "/var/lib/cloud/sem/*")
    logs = [p for p in _files(artifact_root, "/var/log/cloud-init*.log") if os.path.getsize(p)]
    assert not found and not logs, f"cloud-init state of the build: {_rel(artifact_root, found + logs)}"


def test_no_apt_proxy_credentials(artifact_root):
    bad = _files(artifact_root, "/etc/apt/auth.conf", "/etc/apt/auth.conf.d/*")
    for conf in _files(artifact_root, "/etc/apt/apt.conf", "/etc/apt/apt.conf.d/*"):
        with open(conf, errors="replace") as fh:
            if re.search(r"Acquire::\w+::Proxy|https?://[^/\s\"]+:[^@/\s\"]+@", fh.read(), re.IGNORECASE):
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


def _text(root, rel):
    path = os.path.join(root, rel.lstrip("/"))
    if not os.path.isfile(path):
        return None
    with open(path, errors="replace") as fh:
        return fh.read()


LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "ip6-allnodes",
               "ip6-allrouters", "ip6-localnet", "ip6-mcastprefix"}


def test_hostname_is_not_the_build_host(artifact_root):
    hostname = (_text(artifact_root, "/etc/hostname") or "").strip()
    assert hostname in ("", "localhost"), f"/etc/hostname says {hostname!r}: cloud-init names each instance"


def test_hosts_file_names_no_host_of_the_build(artifact_root):
    named = {name for line in (_text(artifact_root, "/etc/hosts") or "").splitlines()
             for name in line.split("#")[0].split()[1:]}
    assert named <= LOCAL_NAMES, f"/etc/hosts names {sorted(named - LOCAL_NAMES)}: a host of the build"


def _names(text):
    return {line.split(":")[0] for line in (text or "").splitlines() if line.strip()}


def test_account_backups_hold_no_removed_account(artifact_root):
    stale = []
    for db in ("passwd", "shadow", "group", "gshadow", "subuid", "subgid"):
        live = _names(_text(artifact_root, f"/etc/{db}"))
        removed = _names(_text(artifact_root, f"/etc/{db}-")) - live
        if removed:
            stale.append(f"/etc/{db}-: {sorted(removed)}")
    assert not stale, f"backups keep accounts the image no longer has: {stale}"


def test_no_build_time_logs(artifact_root):
    logs = [p for p in _files(artifact_root, "/var/log/**") if os.path.isfile(p) and not os.path.islink(p)]
    written = [p for p in logs if os.path.getsize(p)]
    installer = _files(artifact_root, "/var/log/installer")
    assert not written and not installer, f"logs of the build: {_rel(artifact_root, written + installer)}"


def test_no_random_seed_shared_by_every_instance(artifact_root):
    found = _files(artifact_root, "/var/lib/systemd/random-seed", "/var/lib/urandom/random-seed")
    assert not found, f"every instance would start from the build's entropy: {_rel(artifact_root, found)}"


def test_no_dhcp_lease_of_the_build(artifact_root):
    found = _files(artifact_root, "/var/lib/dhcp/*", "/var/lib/dhcpcd/*", "/var/lib/NetworkManager/*.lease")
    assert not found, f"the build's DHCP lease and client identity (default-duid): {_rel(artifact_root, found)}"


def test_no_chrony_drift_of_the_build(artifact_root):
    found = _files(artifact_root, "/var/lib/chrony/chrony.drift")
    assert not found, f"the build VM's clock drift, wrong for any other host: {_rel(artifact_root, found)}"


def test_no_configuration_backups(artifact_root):
    found = _files(artifact_root, "/etc/**/*.pam-old", "/etc/**/*.dpkg-old", "/etc/**/*.ucf-old",
                   "/var/cache/debconf/*-old", "/var/backups/*")
    assert not found, f"earlier configuration kept beside the live one: {_rel(artifact_root, found)}"


def test_no_known_hosts_of_the_build(artifact_root):
    found = [p for p in _files(artifact_root, "/root/.ssh/known_hosts*", "/home/*/.ssh/known_hosts*")
             if os.path.getsize(p)]
    assert not found, f"hosts the build connected to: {_rel(artifact_root, found)}"



def _owner(st):
    """user:group of a file in the artifact, by id: only root (0) is named, as the host's names are not the image's."""
    return ":".join("root" if i == 0 else str(i) for i in (st.st_uid, st.st_gid))


def test_image_stamp_names_this_image(artifact_root, image_spec, candidate_version):
    modes = {}
    for path in stamp.MODES:
        full = os.path.join(artifact_root, path.lstrip("/"))
        if os.path.lexists(full):
            st = os.lstat(full)
            modes[path] = (stat.S_IMODE(st.st_mode), _owner(st))
    problems = stamp.findings(_text(artifact_root, stamp.PATH), candidate_version, image_spec, modes)
    assert not problems, "; ".join(problems)
