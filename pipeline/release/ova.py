"""An OVA of the tested disk: a streamOptimized VMDK, an OVF descriptor and a SHA256 manifest, in a tar.

    path = build(tested, "/tmp/out")     # /tmp/out/<version>.ova, checked by check() before it is returned
    problems = check(path)               # [] or what ovftool would reject (member order, digests, references)

The VMDK is `qemu-img convert -O vmdk -o subformat=streamOptimized` of the qcow2 that passed the gate;
the descriptor carries the golden labels (version, sha256, gate digest) as ProductSection properties.
"""

import hashlib
import io
import os
import re
import tarfile
import xml.etree.ElementTree as ET

from pipeline.errors import GoldenError
from pipeline.release import tested as tested_mod
from pipeline.util import sha256_file

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VMW = "http://www.vmware.com/schema/ovf"
STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
MANIFEST_LINE = re.compile(r"^SHA256\((?P<name>[^)]+)\)= (?P<hex>[0-9a-f]{64})$")
# The virtual hardware the image was tested on: 2 vCPUs, 2 GiB, one disk on LSI Logic SCSI, one vmxnet3 NIC.
CPUS, MEMORY_MB = 2, 2048


def descriptor(tested, disk_name, disk_size, capacity):
    """The OVF 1.x descriptor (text) for one disk file of `disk_size` bytes and `capacity` bytes of guest disk."""
    for prefix, uri in (("ovf", OVF), ("rasd", RASD), ("vssd", VSSD), ("vmw", VMW)):
        ET.register_namespace(prefix, uri)
    o, r = (lambda tag: f"{{{OVF}}}{tag}"), (lambda tag: f"{{{RASD}}}{tag}")
    env = ET.Element(o("Envelope"), {f"{{{VMW}}}buildId": "golden"})
    refs = ET.SubElement(env, o("References"))
    ET.SubElement(refs, o("File"), {o("href"): disk_name, o("id"): "file1", o("size"): str(disk_size)})
    disks = ET.SubElement(env, o("DiskSection"))
    ET.SubElement(disks, o("Info")).text = "Virtual disks"
    ET.SubElement(disks, o("Disk"), {o("capacity"): str(capacity), o("capacityAllocationUnits"): "byte",
                                     o("diskId"): "vmdisk1", o("fileRef"): "file1", o("format"): STREAM_OPTIMIZED})
    nets = ET.SubElement(env, o("NetworkSection"))
    ET.SubElement(nets, o("Info")).text = "Logical networks"
    ET.SubElement(ET.SubElement(nets, o("Network"), {o("name"): "VM Network"}), o("Description")).text = "network"
    system = ET.SubElement(env, o("VirtualSystem"), {o("id"): tested.version})
    ET.SubElement(system, o("Info")).text = f"{tested.version}, the tested golden image"
    ET.SubElement(system, o("Name")).text = tested.version
    os_section = ET.SubElement(system, o("OperatingSystemSection"), {o("id"): "96", f"{{{VMW}}}osType": "debian11_64Guest"})
    ET.SubElement(os_section, o("Info")).text = "Debian GNU/Linux (64-bit)"
    product = ET.SubElement(system, o("ProductSection"))
    ET.SubElement(product, o("Info")).text = "What was tested and gated"
    ET.SubElement(product, o("Product")).text = tested.image
    ET.SubElement(product, o("Version")).text = tested.version
    for key, value in tested.labels().items():
        ET.SubElement(product, o("Property"), {o("key"): key.replace(":", "."), o("type"): "string",
                                               o("value"): value, o("userConfigurable"): "false"})
    hw = ET.SubElement(system, o("VirtualHardwareSection"))
    ET.SubElement(hw, o("Info")).text = "Virtual hardware"
    sysinfo = ET.SubElement(hw, o("System"))
    for tag, text in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                      ("VirtualSystemIdentifier", tested.version), ("VirtualSystemType", "vmx-13")):
        ET.SubElement(sysinfo, f"{{{VSSD}}}{tag}").text = text
    items = [
        {"AllocationUnits": "hertz * 10^6", "ElementName": f"{CPUS} virtual CPUs", "InstanceID": "1",
         "ResourceType": "3", "VirtualQuantity": str(CPUS)},
        {"AllocationUnits": "byte * 2^20", "ElementName": f"{MEMORY_MB} MB of memory", "InstanceID": "2",
         "ResourceType": "4", "VirtualQuantity": str(MEMORY_MB)},
        {"ElementName": "SCSI controller 0", "InstanceID": "3", "ResourceSubType": "lsilogic", "ResourceType": "6"},
        {"AddressOnParent": "0", "ElementName": "Hard disk 1", "HostResource": "ovf:/disk/vmdisk1",
         "InstanceID": "4", "Parent": "3", "ResourceType": "17"},
        {"AutomaticAllocation": "true", "Connection": "VM Network", "ElementName": "Network adapter 1",
         "InstanceID": "5", "ResourceSubType": "VmxNet3", "ResourceType": "10"},
    ]
    for fields in items:
        item = ET.SubElement(hw, o("Item"))
        for tag in sorted(fields):      # CIM RASD elements in alphabetical order, as the schema's sequence has them
            ET.SubElement(item, r(tag)).text = fields[tag]
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(env, encoding="unicode") + "\n"


def build(tested, directory):
    """Write <version>.ova into `directory` from the tested qcow2; returns its path (checked)."""
    name = tested.version.replace("+", "-build")
    disk_name = f"{name}-disk1.vmdk"
    disk = tested_mod.convert(tested.path, os.path.join(directory, disk_name), "vmdk", "-o", "subformat=streamOptimized")
    ovf_text = descriptor(tested, disk_name, os.path.getsize(disk), tested.virtual_size()).encode()
    ovf_name = f"{name}.ovf"
    manifest = (f"SHA256({ovf_name})= {hashlib.sha256(ovf_text).hexdigest()}\n"
                f"SHA256({disk_name})= {sha256_file(disk)}\n").encode()
    path = os.path.join(directory, f"{name}.ova")
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in ((ovf_name, ovf_text), (f"{name}.mf", manifest)):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        tar.add(disk, arcname=disk_name)
    os.unlink(disk)
    problems = check(path)
    if problems:
        raise GoldenError("the OVA does not pass the OVF checks: " + "; ".join(problems), file=path)
    return path


def check(path):
    """What ovftool would refuse in an OVA: the descriptor first, then the manifest; every digest and reference."""
    problems = []
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        if not names or not names[0].endswith(".ovf"):
            return [f"the first member must be the .ovf descriptor, not {names[:1]}"]
        if len(names) < 2 or names[1] != names[0][:-4] + ".mf":
            problems.append(f"the second member must be the manifest {names[0][:-4]}.mf")
        if any("/" in n or n.startswith(".") for n in names):
            problems.append("members must be plain file names in the archive's root")
        digests, sizes = {}, {m.name: m.size for m in members}
        for m in members:
            h = hashlib.sha256()
            fh = tar.extractfile(m)
            while block := fh.read(1 << 20):
                h.update(block)
            digests[m.name] = h.hexdigest()
        ovf_text = tar.extractfile(members[0]).read()
        manifest = tar.extractfile(names[1]).read().decode() if names[1:2] and names[1].endswith(".mf") else ""
    listed = {}
    for line in manifest.splitlines():
        match = MANIFEST_LINE.match(line)
        if not match:
            problems.append(f"manifest line {line!r} is not SHA256(file)= hex")
            continue
        listed[match["name"]] = match["hex"]
    for name in names:
        if not name.endswith(".mf") and listed.get(name) != digests[name]:
            problems.append(f"manifest digest of {name} is {listed.get(name)}, the file's is {digests[name]}")
    try:
        env = ET.fromstring(ovf_text)
    except ET.ParseError as exc:
        return problems + [f"the descriptor is not XML: {exc}"]
    o = lambda tag: f"{{{OVF}}}{tag}"
    if env.tag != o("Envelope"):
        problems.append(f"the root element is {env.tag}, not the OVF Envelope")
    files = {f.get(o("id")): f for f in env.iterfind(f"{o('References')}/{o('File')}")}
    for fid, f in files.items():
        href = f.get(o("href"))
        if href not in sizes:
            problems.append(f"File {fid} names {href}, which the OVA does not hold")
        elif f.get(o("size")) is not None and int(f.get(o("size"))) != sizes[href]:
            problems.append(f"File {fid} says {f.get(o('size'))} bytes, {href} has {sizes[href]}")
    disks = list(env.iterfind(f"{o('DiskSection')}/{o('Disk')}"))
    for d in disks:
        if d.get(o("fileRef")) not in files:
            problems.append(f"Disk {d.get(o('diskId'))} refers to no File ({d.get(o('fileRef'))})")
        if not (d.get(o("capacity")) or "").isdigit():
            problems.append(f"Disk {d.get(o('diskId'))} has no capacity in bytes")
    system = env.find(o("VirtualSystem"))
    if system is None or not system.get(o("id")):
        problems.append("no VirtualSystem with an ovf:id")
    else:
        hosts = [e.text for e in system.iter(f"{{{RASD}}}HostResource")]
        for d in disks:
            if f"ovf:/disk/{d.get(o('diskId'))}" not in hosts:
                problems.append(f"Disk {d.get(o('diskId'))} is attached to no hardware Item")
        ids = [e.text for e in system.iter(f"{{{RASD}}}InstanceID")]
        if len(ids) != len(set(ids)):
            problems.append("hardware Items repeat an InstanceID")
    return problems
