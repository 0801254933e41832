"""cloud-init NoCloud seeds: how a per-build or per-boot user and key reach an image without touching it.

    files = write_seed(dir, instance_id="boot-1", hostname="candidate",
                       user=TEST_USER, public_key=line, groups=["sshusers"])
    make_iso(dir, dir / "seed.iso")      # volume label `cidata`, attached as a second drive
"""

import os
import subprocess

import yaml

from pipeline.checks import SUITE_USER
from pipeline.errors import GoldenError

BUILD_USER = "golden-build"   # exists only while Packer provisions; removed by cleanup.sh
TEST_USER = SUITE_USER      # exists only in a boot's ephemeral overlay; checks exclude it by name


def user_data(user, public_key, groups=()):
    account = {
        "name": user,
        "gecos": "golden pipeline (ephemeral)",
        "shell": "/bin/bash",
        "lock_passwd": True,
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "ssh_authorized_keys": [public_key],
    }
    if groups:
        account["groups"] = ",".join(groups)
    doc = {"users": [account], "ssh_pwauth": False, "disable_root": True}
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)


def write_seed(directory, *, instance_id, hostname, user, public_key, groups=()):
    os.makedirs(directory, exist_ok=True)
    paths = {
        "user-data": user_data(user, public_key, groups),
        "meta-data": yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}),
    }
    out = []
    for name, text in paths.items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        out.append(path)
    return out


def make_iso(directory, iso_path):
    files = [os.path.join(directory, n) for n in ("user-data", "meta-data")]
    cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso_path), "-V", "cidata", "-J", "-r", *files]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise GoldenError("xorriso is not installed (apt-get install xorriso)", field="seed") from None
    except subprocess.CalledProcessError as exc:
        raise GoldenError(f"xorriso failed: {exc.stderr.strip()}", file=iso_path) from None
    return iso_path


def login_groups(baseline=None):
    """Groups sshd admits (baseline parameter `ssh_login_group`, CIS 5.1.4): the pipeline's own
    build and test accounts join them, or the hardened image would refuse the suite's login."""
    from pipeline.checks.baseline import Baseline
    group = (baseline or Baseline.load()).parameters.get("ssh_login_group")
    return [group] if group else []
