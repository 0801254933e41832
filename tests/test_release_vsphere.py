"""`golden release vsphere` against govmomi's vCenter simulator over HTTPS: a template with its
attributes; a missing vCenter or a wrong password is exit 2 with a clear message; a failed import
leaves no VM or template."""

import urllib.parse

import pytest

from pipeline.cli import main
from pipeline.release import tested as tested_mod
from pipeline.release import vsphere

from .emulators import cutting_proxy, free_port, published_store, random_qcow2, small_qcow2, vcsim

VERSION = "golden-linux-2026.12.01+1"
SPEC = """name: linux
role: general-purpose
base:
  suite: bookworm
vsphere:
  datacenter: DC0
  cluster: DC0_C0
  datastore: {datastore}
  folder: golden
"""


@pytest.fixture(scope="module")
def sim():
    with vcsim() as s:
        yield s


def setup(tmp_path, monkeypatch, sim, datastore="LocalDS_0", version=VERSION, disk=small_qcow2):
    store = published_store(str(tmp_path / "store"), version, disk(str(tmp_path / "disk.qcow2")))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(datastore=datastore))
    monkeypatch.setenv("GOLDEN_VSPHERE_PASSWORD", sim.password)
    return store, str(spec)


def test_publish_makes_a_template_with_version_sha256_and_gate_digest(tmp_path, monkeypatch, sim, capsys):
    store, spec = setup(tmp_path, monkeypatch, sim)
    assert main(["release", "vsphere", VERSION, "--spec", spec, "--store", store.root, "--url", sim.url,
                 "--user", sim.user, "--insecure"]) == 0
    assert capsys.readouterr().out.strip() == f"DC0/vm/golden/{VERSION}"
    tested = tested_mod.load(store, VERSION)
    found = vsphere.attributes(vsphere.Connection(sim.url, sim.user, sim.password, insecure=True),
                               vsphere.settings_from_spec(spec), VERSION)
    assert found == {**tested.labels(), "template": True}
    assert main(["release", "vsphere", VERSION, "--spec", spec, "--store", store.root, "--url", sim.url,
                 "--user", sim.user, "--insecure"]) == 2
    assert f"golden/{VERSION} exists already in vCenter" in capsys.readouterr().err


def test_golden_publish_target_vsphere_is_golden_release_vsphere(tmp_path, monkeypatch, sim, capsys):
    version = "golden-linux-2026.12.06+1"
    store, spec = setup(tmp_path, monkeypatch, sim, version=version)
    assert main(["publish", "--store", store.root, "--target", "vsphere", version, "--spec", spec, "--url", sim.url,
                 "--user", sim.user, "--insecure"]) == 0
    assert capsys.readouterr().out.strip() == f"DC0/vm/golden/{version}"
    found = vsphere.attributes(vsphere.Connection(sim.url, sim.user, sim.password, insecure=True),
                               vsphere.settings_from_spec(spec), version)
    assert found == {**tested_mod.load(store, version).labels(), "template": True}


def vm_names(sim):
    """Every VM and template in the simulator's inventory, by name."""
    from pyVim.connect import Disconnect
    from pyVmomi import vim
    si = vsphere.Connection(sim.url, sim.user, sim.password, insecure=True).open()
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        return {vm.name for vm in view.view}
    finally:
        Disconnect(si)


def test_wrong_password_is_exit_2_and_imports_nothing(tmp_path, monkeypatch, sim, capsys):
    version = "golden-linux-2026.12.04+1"
    store, spec = setup(tmp_path, monkeypatch, sim, version=version)
    monkeypatch.setenv("GOLDEN_VSPHERE_PASSWORD", "wrong")
    assert main(["release", "vsphere", version, "--spec", spec, "--store", store.root, "--url", sim.url,
                 "--user", sim.user, "--insecure"]) == 2
    assert f"refused the login of {sim.user!r}: wrong user or password" in capsys.readouterr().err
    assert version not in vm_names(sim)


def test_missing_vcenter_is_exit_2(tmp_path, monkeypatch, sim, capsys):
    store, spec = setup(tmp_path, monkeypatch, sim)
    url = f"https://127.0.0.1:{free_port()}/sdk"
    assert main(["release", "vsphere", VERSION, "--spec", spec, "--store", store.root, "--url", url,
                 "--user", sim.user, "--insecure"]) == 2
    assert f"cannot reach vCenter at {url}" in capsys.readouterr().err


def test_an_upload_cut_off_mid_stream_is_exit_2_and_leaves_no_vm_or_template(tmp_path, monkeypatch, sim, capsys):
    """The connection to vCenter drops while the disk is sent (a relay resets it): the lease is aborted and
    the VM ImportVApp had created is destroyed, so the folder holds nothing of the version."""
    version = "golden-linux-2026.12.05+1"
    store, spec = setup(tmp_path, monkeypatch, sim, version=version, disk=random_qcow2)
    with cutting_proxy(urllib.parse.urlsplit(sim.url).port) as proxy:
        url = f"https://127.0.0.1:{proxy.port}/sdk"
        assert main(["release", "vsphere", version, "--spec", spec, "--store", store.root, "--url", url,
                     "--user", sim.user, "--insecure"]) == 2
    assert proxy.cuts == 1
    err = capsys.readouterr().err
    assert f"uploading golden-linux-2026.12.05-build1-disk1.vmdk to https://127.0.0.1:{proxy.port}/nfc/" in err
    assert "failed" in err and f"removed the half-imported {version}" in err
    assert version not in vm_names(sim)
    with pytest.raises(Exception, match="no template"):
        vsphere.attributes(vsphere.Connection(sim.url, sim.user, sim.password, insecure=True),
                           vsphere.settings_from_spec(spec), version)


def test_an_unknown_datastore_is_exit_2_and_leaves_nothing(tmp_path, monkeypatch, sim, capsys):
    store, spec = setup(tmp_path, monkeypatch, sim, datastore="NoSuchDS")
    version = "golden-linux-2026.12.02+1"
    store = published_store(str(tmp_path / "store2"), version, small_qcow2(str(tmp_path / "d2.qcow2")))
    assert main(["release", "vsphere", version, "--spec", spec, "--store", store.root, "--url", sim.url,
                 "--user", sim.user, "--insecure"]) == 2
    assert "no datastore 'NoSuchDS'" in capsys.readouterr().err
    with pytest.raises(Exception, match="no template"):
        vsphere.attributes(vsphere.Connection(sim.url, sim.user, sim.password, insecure=True),
                           vsphere.VsphereTarget("DC0", "DC0_C0", "LocalDS_0", "golden"), version)
