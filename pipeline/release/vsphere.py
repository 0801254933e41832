"""The tested bytes as a vSphere template: the OVA imported with ImportVApp and its lease, marked a template.

    target = settings_from_spec("images/golden-linux.yaml")   # vsphere: {datacenter, cluster, datastore, folder}
    publish(tested, target, Connection(url, user, password))   # the template's name; nothing left on failure

The template carries custom attributes golden:version, golden:sha256, golden:gate-digest,
golden:hardening-version and golden:commit (CustomFieldsManager). A failed import aborts the lease
and destroys what it created; a template that cannot carry its attributes is destroyed again.
"""

import os
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.release import ova
from pipeline.release.tested import release_settings


@dataclass
class VsphereTarget:
    datacenter: str
    cluster: str
    datastore: str
    folder: str                 # under the datacenter's VM folder; created if missing
    network: str = "VM Network"
    source: str | None = None


def settings(mapping, path):
    """The `vsphere:` mapping of the spec at `path`, validated; errors name the file, line and field."""
    f = yamlsrc.Fields(yamlsrc.Doc(path, mapping), mapping, "vsphere")
    word = lambda v: None if v.strip() else "must not be empty"
    out = VsphereTarget(datacenter=f.get("datacenter", str, required=True, check=word),
                        cluster=f.get("cluster", str, required=True, check=word),
                        datastore=f.get("datastore", str, required=True, check=word),
                        folder=f.get("folder", str, default="golden", check=word),
                        network=f.get("network", str, default="VM Network", check=word), source=path)
    f.done()
    return out


def settings_from_spec(spec_path):
    """The `vsphere:` section of an image spec file."""
    return release_settings(spec_path, "vsphere", "{datacenter, cluster, datastore, folder}")


@dataclass
class Connection:
    url: str                    # https://vcenter.example/sdk
    user: str
    password: str
    insecure: bool = False

    def open(self):
        """A logged-in ServiceInstance; a refused connection or a wrong password is a GoldenError."""
        from pyVim.connect import SmartConnect
        from pyVmomi import vim
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise GoldenError(f"{self.url!r} is not an https:// vCenter URL", field="--url")
        try:
            return SmartConnect(host=parsed.hostname, port=parsed.port or 443, user=self.user, pwd=self.password,
                                path=parsed.path or "/sdk", disableSslCertValidation=self.insecure)
        except vim.fault.InvalidLogin:
            raise GoldenError(f"vCenter {self.url} refused the login of {self.user!r}: wrong user or password",
                              field="--user") from None
        except (OSError, ssl.SSLError) as exc:
            raise GoldenError(f"cannot reach vCenter at {self.url}: {exc}", field="--url") from None


def _child(parent_list, name, what):
    for entity in parent_list:
        if entity.name == name:
            return entity
    raise GoldenError(f"vCenter has no {what} {name!r} (there are: {', '.join(e.name for e in parent_list)})",
                      field=f"vsphere.{what}")


def _folder(datacenter, name):
    from pyVmomi import vim
    for entity in datacenter.vmFolder.childEntity:
        if isinstance(entity, vim.Folder) and entity.name == name:
            return entity
    return datacenter.vmFolder.CreateFolder(name)


def _wait(task):
    from pyVmomi import vim
    while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
        time.sleep(0.2)
    if task.info.state != vim.TaskInfo.State.success:
        raise GoldenError(f"vCenter task {task.info.descriptionId} failed: {task.info.error.msg}", field="vsphere")
    return task.info.result


def _upload(lease, file_items, ova_path, vcenter, insecure):
    """Send each disk the lease asks for from the OVA (its file item names the member), complete the lease;
    returns the imported VM (read before completing: a completed lease is gone)."""
    import tarfile

    from pyVmomi import vim
    while lease.state == vim.HttpNfcLease.State.initializing:
        time.sleep(0.2)
    if lease.state != vim.HttpNfcLease.State.ready:
        raise GoldenError(f"the import lease is {lease.state}: {lease.error.msg if lease.error else ''}",
                          field="vsphere")
    entity = lease.info.entity
    context = ssl._create_unverified_context() if insecure else ssl.create_default_context()
    with tarfile.open(ova_path) as tar:
        for device in lease.info.deviceUrl:
            if not device.disk:
                continue
            paths = [item.path for item in file_items if item.deviceId == device.importKey]
            if not paths:
                raise GoldenError(f"the lease asks for disk {device.importKey}, which the OVF does not name",
                                  field="vsphere")
            member = tar.getmember(paths[0])
            target = urllib.parse.urlsplit(device.url)
            if target.hostname in ("*", urllib.parse.urlsplit(vcenter).hostname):
                # vCenter writes "*" for itself (and the simulator drops its port): send it where we connected
                target = target._replace(netloc=urllib.parse.urlsplit(vcenter).netloc)
            url = target.geturl()
            request = urllib.request.Request(url, data=tar.extractfile(member), method="POST", headers={
                "Content-Type": "application/x-vnd.vmware-streamVmdk", "Content-Length": str(member.size)})
            try:
                urllib.request.urlopen(request, context=context, timeout=600).read()
            except (urllib.error.URLError, OSError) as exc:
                raise GoldenError(f"uploading {member.name} to {url} failed: {exc}", field="vsphere") from None
    lease.HttpNfcLeaseComplete()
    return entity


def publish(image, target, connection, log=print):
    """Import the tested image as a template in `target.folder`; returns its name."""
    from pyVim.connect import Disconnect
    from pyVmomi import vim
    si = connection.open()
    try:
        content = si.RetrieveContent()
        datacenter = _child(content.rootFolder.childEntity, target.datacenter, "datacenter")
        cluster = _child(datacenter.hostFolder.childEntity, target.cluster, "cluster")
        datastore = _child(datacenter.datastore, target.datastore, "datastore")
        network = _child(datacenter.network, target.network, "network")
        name = image.version
        existing = content.searchIndex.FindChild(_folder(datacenter, target.folder), name)
        if existing is not None:
            raise GoldenError(f"{target.folder}/{name} exists already in vCenter; published versions are immutable",
                              field="version")
        with tempfile.TemporaryDirectory(prefix="golden-ova-") as tmp:
            ova_path = ova.build(image, tmp)
            log(f"built {os.path.basename(ova_path)} ({os.path.getsize(ova_path) / 2**20:.0f} MiB), importing")
            import tarfile
            with tarfile.open(ova_path) as tar:
                descriptor = tar.extractfile(tar.getmembers()[0]).read().decode()
            params = vim.OvfManager.CreateImportSpecParams(
                entityName=name, diskProvisioning="thin",
                networkMapping=[vim.OvfManager.NetworkMapping(name="VM Network", network=network)])
            spec = content.ovfManager.CreateImportSpec(descriptor, cluster.resourcePool, datastore, params)
            if spec.error:
                raise GoldenError("vCenter refuses the OVF: " + "; ".join(e.msg for e in spec.error), field="vsphere")
            folder = _folder(datacenter, target.folder)
            lease = cluster.resourcePool.ImportVApp(spec.importSpec, folder)
            vm = None
            try:
                vm = _upload(lease, spec.fileItem, ova_path, connection.url, connection.insecure)
                _label(content, vm, image.labels())
                vm.MarkAsTemplate()
            except BaseException as exc:
                if vm is None:          # the lease is still open: abort it, so vCenter discards the import
                    lease.HttpNfcLeaseAbort(vmodl_fault(str(exc)))
                leftover = vm or content.searchIndex.FindChild(folder, name)
                if leftover is not None:
                    _wait(leftover.Destroy_Task())
                    log(f"removed the half-imported {name}")
                raise
        log(f"template {target.folder}/{name} in {target.datacenter}, sha256 {image.sha256[:16]}...")
        return f"{target.datacenter}/vm/{target.folder}/{name}"
    finally:
        Disconnect(si)


def vmodl_fault(message):
    from pyVmomi import vmodl
    return vmodl.MethodFault(msg=message)


def _label(content, vm, labels):
    """Set the golden custom attributes on the VM and read them back."""
    from pyVmomi import vim
    fields = content.customFieldsManager
    keys = {f.name: f.key for f in fields.field or [] if f.managedObjectType in (None, vim.VirtualMachine)}
    for name, value in labels.items():
        if name not in keys:
            keys[name] = fields.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
        fields.SetField(entity=vm, key=keys[name], value=value)
    found = {v.key: v.value for v in vm.customValue}
    missing = [n for n, v in labels.items() if found.get(keys[n]) != v]
    if missing:
        raise GoldenError(f"the template lacks its attributes {', '.join(missing)} after setting them", field="vsphere")


def attributes(connection, target, version):
    """{name: value} of the golden custom attributes of a published template (for audits and tests)."""
    from pyVim.connect import Disconnect
    si = connection.open()
    try:
        content = si.RetrieveContent()
        datacenter = _child(content.rootFolder.childEntity, target.datacenter, "datacenter")
        vm = content.searchIndex.FindChild(_folder(datacenter, target.folder), version)
        if vm is None:
            raise GoldenError(f"no template {target.folder}/{version} in vCenter", field="version")
        names = {f.key: f.name for f in content.customFieldsManager.field or []}
        return {names[v.key]: v.value for v in vm.customValue} | {"template": vm.config.template}
    finally:
        Disconnect(si)
