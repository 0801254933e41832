"""The base image: what a vendor cloud image would be, built offline when none is at hand.

Debian with a real bootloader (GRUB on an MBR-partitioned disk), cloud-init (NoCloud), OpenSSH
and no keys of any kind. Packages come from the host's configured mirror. The result is cached
under a key made of every input, so a second run reuses it.

    base = ensure_base(spec, cache_dir, log)     # -> BaseImage(path, sha256, ...)
"""

import datetime as dt
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

from pipeline.errors import GoldenError
from pipeline.image import mirror
from pipeline.util import require_tool, sha256_file, write_json_atomic

RECIPE_VERSION = 4   # bump when the recipe below changes what it produces
DISK_SIZE = "4G"
PACKAGES = [
    "linux-image-cloud-amd64", "grub-pc", "systemd-sysv", "udev", "dbus", "kmod", "iproute2", "ifupdown",
    "isc-dhcp-client", "netbase", "openssh-server", "openssh-sftp-server", "cloud-init", "sudo",
    "ca-certificates", "procps", "less", "apt-utils",
]

GRUB_DEFAULTS = """\
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
"""

CLOUD_CFG = """\
# Written by the golden base recipe: local images are seeded by a NoCloud drive labelled cidata.
datasource_list: [ NoCloud, None ]
manage_etc_hosts: localhost
locale: C.UTF-8
# Host keys are made at first boot; Ed25519 and ECDSA only (RSA keygen costs tens of seconds
# under emulation, and DSA is obsolete).
ssh_genkeytypes: [ed25519, ecdsa]
"""


@dataclass
class BaseImage:
    path: str
    sha256: str
    origin: str          # "built", "given" or "published"
    info: dict


def cache_key(suite, packages, sources):
    inputs = {"recipe": RECIPE_VERSION, "suite": suite, "packages": sorted(packages), "disk": DISK_SIZE,
              "sources": [s.one_line() for s in sources]}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20], inputs


_verified = {}     # (path, size, mtime) -> sha256, so preflight and the base stage hash once


def _given_digest(path, log):
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _verified:
        log(f"verifying sha256 of {path}")
        _verified[key] = sha256_file(path)
    return _verified[key]


def preflight(base_spec, cache_dir, store=None):
    """Fail before any work if the base cannot be had: a missing or wrong given image, a published base
    its channel does not resolve to, or missing tools."""
    if base_spec.image or base_spec.published:
        ensure_base(base_spec, cache_dir, lambda m: None, store=store)
        return
    sources = mirror.parse_lines(base_spec.mirrors) if base_spec.mirrors else mirror.host_sources(base_spec.suite)
    key, _ = cache_key(base_spec.suite, PACKAGES + list(base_spec.packages), sources)
    if not os.path.isfile(os.path.join(cache_dir, "base", key, "base.qcow2")):
        _require_build_tools()


def _require_build_tools():
    if os.geteuid() != 0:
        raise GoldenError("building a base image needs root (mmdebstrap, loop devices, mounts)", field="base")
    for tool, pkg in (("mmdebstrap", "mmdebstrap"), ("sfdisk", "fdisk"), ("mkfs.ext4", "e2fsprogs"),
                      ("qemu-img", "qemu-utils"), ("losetup", "mount"), ("partx", "util-linux")):
        require_tool(tool, pkg)


def ensure_base(base_spec, cache_dir, log, rebuild=False, store=None):
    """Return the base image for a spec's `base` section, building and caching it if needed."""
    if base_spec.published:
        return published_base(base_spec, store, log)
    if base_spec.image:
        if not os.path.isfile(base_spec.image):
            raise GoldenError(f"base image not found: {base_spec.image}", file=base_spec.source,
                              line=base_spec.line, field="base.image")
        actual = _given_digest(base_spec.image, log)
        if actual != base_spec.sha256:
            raise GoldenError(f"sha256 of {base_spec.image} is {actual}, the spec says {base_spec.sha256}",
                              file=base_spec.source, line=base_spec.line, field="base.sha256")
        return BaseImage(base_spec.image, actual, "given", {"path": base_spec.image})
    sources = mirror.parse_lines(base_spec.mirrors) if base_spec.mirrors else mirror.host_sources(base_spec.suite)
    packages = PACKAGES + list(base_spec.packages)
    key, inputs = cache_key(base_spec.suite, packages, sources)
    final = os.path.join(cache_dir, "base", key)
    image = os.path.join(final, "base.qcow2")
    meta = os.path.join(final, "base.json")
    if not rebuild and os.path.isfile(image) and os.path.isfile(meta):
        with open(meta, encoding="utf-8") as fh:
            info = json.load(fh)
        log(f"base image cached: {image}")
        return BaseImage(image, info["sha256"], "built", info)
    _require_build_tools()
    os.makedirs(os.path.join(cache_dir, "base"), exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".build-{key}-", dir=os.path.join(cache_dir, "base"))
    try:
        t0 = time.monotonic()
        root = os.path.join(work, "root")
        log(f"mmdebstrap {base_spec.suite} ({len(packages)} packages) from "
            + ", ".join(sorted({s.uri for s in sources})))
        _mmdebstrap(base_spec.suite, packages, sources, root, os.path.join(work, "mmdebstrap.log"))
        log(f"root filesystem ready ({time.monotonic() - t0:.0f}s); configuring it as a cloud image")
        fs_uuid = str(uuid.uuid4())
        kernel = _configure_root(root, fs_uuid)
        raw = os.path.join(work, "disk.raw")
        log("partitioning, filling the filesystem and installing GRUB")
        _make_disk(root, raw, fs_uuid)
        shutil.rmtree(root)
        log("converting to qcow2")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, os.path.join(work, "base.qcow2")], check=True)
        os.unlink(raw)
        info = dict(inputs, sha256=sha256_file(os.path.join(work, "base.qcow2")), kernel=kernel,
                    built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    build_seconds=round(time.monotonic() - t0, 1))
        write_json_atomic(os.path.join(work, "base.json"), info)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(work, final)
        log(f"base image built in {info['build_seconds']}s: {image}")
        return BaseImage(image, info["sha256"], "built", info)
    finally:
        if os.path.exists(work):
            shutil.rmtree(work, ignore_errors=True)


def _mmdebstrap(suite, packages, sources, root, logfile):
    cmd = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(packages),
           "--components=" + ",".join(sorted({c for s in sources for c in s.components})),
           suite, root] + [s.one_line() for s in sources]
    with open(logfile, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(logfile, encoding="utf-8", errors="replace") as fh:
            tail = "".join(fh.readlines()[-15:])
        raise GoldenError(f"mmdebstrap failed (exit {proc.returncode}):\n{tail}", file=logfile)


def _write(root, rel, text, mode=0o644):
    path = os.path.join(root, rel.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


def _configure_root(root, fs_uuid):
    """Make the tree behave like a vendor cloud image: no keys, no identity, serial console."""
    _write(root, "/etc/fstab", f"UUID={fs_uuid} / ext4 errors=remount-ro 0 1\n")
    _write(root, "/etc/default/grub", GRUB_DEFAULTS)
    _write(root, "/etc/cloud/cloud.cfg.d/90-golden-base.cfg", CLOUD_CFG)
    _write(root, "/etc/hostname", "localhost\n")
    _write(root, "/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    _write(root, "/etc/network/interfaces",
           "# cloud-init writes the interface configuration into interfaces.d\n"
           "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n")
    for key in glob.glob(os.path.join(root, "etc/ssh/ssh_host_*")):
        os.unlink(key)
    _write(root, "/etc/machine-id", "")
    dbus_id = os.path.join(root, "var/lib/dbus/machine-id")
    if os.path.lexists(dbus_id):
        os.unlink(dbus_id)
    kernels = sorted(glob.glob(os.path.join(root, "boot/vmlinuz-*")))
    if not kernels:
        raise GoldenError("no kernel was installed in the base root", field="base.packages")
    return os.path.basename(kernels[-1]).removeprefix("vmlinuz-")


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise GoldenError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _partition_node(loop):
    """The partition device of a loop device; created by hand where no udev does it."""
    name = os.path.basename(loop)
    sysfs = f"/sys/block/{name}/{name}p1/dev"
    for _ in range(20):
        if os.path.exists(sysfs):
            break
        subprocess.run(["partx", "-a", loop], capture_output=True)
        time.sleep(0.25)
    else:
        raise GoldenError(f"the kernel did not expose a partition on {loop}")
    node = f"{loop}p1"
    if not os.path.exists(node):
        with open(sysfs, encoding="ascii") as fh:
            major, minor = (int(x) for x in fh.read().split(":"))
        os.mknod(node, 0o600 | 0o060000, os.makedev(major, minor))
    return node


def _make_disk(root, raw, fs_uuid):
    with open(raw, "wb") as fh:
        fh.truncate(_size_bytes(DISK_SIZE))
    _run(["sfdisk", "-q", raw], input="label: dos\nstart=2048, type=83, bootable\n")
    loop = _run(["losetup", "--find", "--show", "--partscan", raw]).strip()
    mnt = raw + ".mnt"
    mounted, created = [], []
    by_uuid = f"/dev/disk/by-uuid/{fs_uuid}"
    try:
        part = _partition_node(loop)
        created.append(part)
        _run(["mkfs.ext4", "-q", "-U", fs_uuid, "-L", "root", "-d", root, part])
        os.makedirs(mnt)
        _run(["mount", part, mnt])
        mounted.append(mnt)
        for d in ("dev", "proc", "sys"):
            _run(["mount", "--bind", f"/{d}", os.path.join(mnt, d)])
            mounted.append(os.path.join(mnt, d))
        # grub-mkconfig writes root=UUID=... only if it can see the by-uuid link (udev's job).
        os.makedirs("/dev/disk/by-uuid", exist_ok=True)
        if not os.path.lexists(by_uuid):
            os.symlink(part, by_uuid)
            created.append(by_uuid)
        _run(["chroot", mnt, "grub-install", "--target=i386-pc", loop])
        _run(["chroot", mnt, "update-grub"])
        with open(os.path.join(mnt, "boot/grub/grub.cfg"), encoding="utf-8") as fh:
            if f"root=UUID={fs_uuid}" not in fh.read():
                raise GoldenError("grub.cfg does not boot the root filesystem by UUID")
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", path], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        for path in created:
            if os.path.lexists(path):
                os.unlink(path)
        if os.path.isdir(mnt):
            os.rmdir(mnt)


def _size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]]


def published_base(base_spec, store, log=print):
    """`base: {image: NAME, channel: CHANNEL}`: the version the store's channel resolves to (never a
    revoked one), verified like `golden verify` before anything is built on it; never cached or copied."""
    from pipeline.store import channels
    from pipeline.supply.verify import verify
    where = {"file": base_spec.source, "line": base_spec.line, "field": "base.channel"}
    if store is None:
        raise GoldenError("a published base needs the image store (--store)", **where)
    name = f"{base_spec.published['image']}/{base_spec.published['channel']}"
    try:
        version = channels.resolve(store, name)
    except GoldenError as exc:
        raise GoldenError(f"no base to build on: {exc.reason}", **where) from None
    log(f"base: {name} is {version}; verifying it")
    _, findings = verify(store, version)
    bad = [f"{check}: {detail}" for check, ok, detail in findings if not ok]
    if bad:
        raise GoldenError(f"the base {version} ({name}) does not verify: " + "; ".join(bad), **where)
    entry = store.entry(version)
    return BaseImage(os.path.join(store.root, entry["file"]), entry["sha256"], "published",
                     {"version": version, "channel": name})

