"""The Packer template as Debian's Packer 1.6.6 reads it: `packer validate` accepts both sources, the
qemu one the pipeline builds with and the amazon-ebs one kept beside it for the AWS target."""

import hashlib
import re
import os
import shutil
import subprocess

import pytest

from .conftest import ROOT

TEMPLATE_DIR = os.path.join(ROOT, "packer")


def _validate(template_dir, tmp_path, *extra):
    packer = shutil.which("packer")
    if packer is None:
        pytest.fail("packer is not installed (./setup.sh installs Debian's packer)")
    base = tmp_path / "base.qcow2"
    base.write_bytes(b"not booted by validate")
    key = tmp_path / "build.key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    args = {"run_dir": tmp_path, "provision_dir": tmp_path, "image_name": "golden-linux-2026.11.27+1",
            "hardening_script": os.path.join(TEMPLATE_DIR, "scripts", "hardening-cis.sh"),
            "base_image": base, "base_sha256": hashlib.sha256(base.read_bytes()).hexdigest(),
            "ssh_private_key_file": key}
    cmd = [packer, "validate", *extra]
    for name, value in args.items():
        cmd += ["-var", f"{name}={value}"]
    return subprocess.run(cmd + [str(template_dir)], capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_both_sources_validate(tmp_path):
    proc = _validate(TEMPLATE_DIR, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = open(os.path.join(TEMPLATE_DIR, "golden.pkr.hcl"), encoding="utf-8").read()
    assert 'source "amazon-ebs" "aws"' in text and "source.amazon-ebs.aws" in text


def test_a_broken_amazon_source_is_refused(tmp_path):
    broken = tmp_path / "packer"
    shutil.copytree(TEMPLATE_DIR, broken)
    hcl = broken / "golden.pkr.hcl"
    hcl.write_text(hcl.read_text().replace("skip_region_validation = true",
                                           "skip_region_validation = true\n  no_such_option = 1"))
    proc = _validate(broken, tmp_path)
    assert proc.returncode != 0 and "no_such_option" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_the_header_names_the_variable_file_golden_build_writes():
    header = open(os.path.join(TEMPLATE_DIR, "golden.pkr.hcl"), encoding="utf-8").read().split("\n\n")[0]
    build = open(os.path.join(ROOT, "pipeline", "image", "build.py"), encoding="utf-8").read()
    written = re.search(r'var_file = os\.path\.join\(work, "([^"]+)"\)', build).group(1)
    assert f"build/{written}" in header and "pkrvars" in written


def _scripts_in_order(text):
    """The provisioning scripts the qemu build runs, in order, by file name."""
    return re.findall(r'"\$\{path\.root\}/scripts/([\w-]+\.sh)"|\[(var\.hardening_script)\]', text)


def test_the_stamp_is_installed_after_the_hardening_and_before_customize():
    text = open(os.path.join(TEMPLATE_DIR, "golden.pkr.hcl"), encoding="utf-8").read()
    order = [a or b for a, b in _scripts_in_order(text)]
    assert order == ["bootstrap.sh", "install-agents.sh", "var.hardening_script", "stamp.sh", "customize.sh",
                     "cleanup.sh"], order
    assert all(os.path.isfile(os.path.join(TEMPLATE_DIR, "scripts", s)) for s in order if s.endswith(".sh"))


def test_stamp_sh_installs_the_file_the_build_writes_where_the_tests_read_it(tmp_path):
    """stamp.sh run for real against a stand-in root: the provision file lands at stamp.PATH, 0644 in a 0755 dir."""
    from pipeline.image import stamp
    script = open(os.path.join(TEMPLATE_DIR, "scripts", "stamp.sh"), encoding="utf-8").read()
    assert f"$GOLDEN_PROVISION/{stamp.PROVISION_NAME}" in script and stamp.PATH in script
    provision, root = tmp_path / "provision", tmp_path / "root"
    provision.mkdir()
    (provision / stamp.PROVISION_NAME).write_text('{"version": "golden-linux-2026.12.01+1"}\n')
    assert f"\ndest={stamp.PATH}\n" in script      # the one line naming it, moved below to a stand-in root
    moved = script.replace(f"\ndest={stamp.PATH}\n", f"\ndest={root}{stamp.PATH}\n")
    proc = subprocess.run(["sh", "-c", moved], env={"GOLDEN_PROVISION": str(provision), "PATH": os.environ["PATH"]},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    installed = root / stamp.PATH.lstrip("/")
    assert installed.read_text() == '{"version": "golden-linux-2026.12.01+1"}\n'
    assert (installed.stat().st_mode & 0o7777, installed.parent.stat().st_mode & 0o7777) == (0o644, 0o755)
    (provision / stamp.PROVISION_NAME).unlink()
    missing = subprocess.run(["sh", "-c", moved], env={"GOLDEN_PROVISION": str(provision), "PATH": os.environ["PATH"]},
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "no " in missing.stderr, missing.stderr
