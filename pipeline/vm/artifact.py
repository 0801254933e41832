"""Read an artifact's files without booting it, without copying it, and without writing a byte.

    with mounted_root("runs/<v>/<v>.qcow2") as root:
        open(os.path.join(root, "var/lib/dpkg/status")).read()

qemu-storage-daemon opens the qcow2 read-only and exports it as a raw disk through FUSE; the
root partition is loop-mounted from it read-only with `noload` (no journal replay).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from pipeline.errors import GoldenError
from pipeline.util import require_tool, stop_process
from pipeline.vm.qemu import set_death_signal


def _partitions(raw):
    out = subprocess.run(["sfdisk", "-J", raw], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    return json.loads(out.stdout)["partitiontable"].get("partitions", [])


@contextlib.contextmanager
def mounted_root(image):
    image = os.path.abspath(image)
    if not os.path.isfile(image):
        raise GoldenError("image not found", file=image)
    daemon = require_tool("qemu-storage-daemon", "qemu-system-common")
    require_tool("sfdisk", "fdisk")
    tmp = tempfile.mkdtemp(prefix="golden-artifact-")
    raw, root = os.path.join(tmp, "disk.raw"), os.path.join(tmp, "root")
    open(raw, "w").close()
    os.mkdir(root)
    fmt = "qcow2" if _is_qcow2(image) else "raw"
    proc = subprocess.Popen(
        [daemon, "--blockdev", f"driver=file,node-name=file0,filename={image},read-only=on",
         "--blockdev", f"driver={fmt},node-name=disk0,file=file0,read-only=on",
         "--export", f"type=fuse,id=exp0,node-name=disk0,mountpoint={raw},writable=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=lambda: set_death_signal(signal.SIGKILL))
    mounted = False
    try:
        deadline = time.monotonic() + 15
        while os.path.getsize(raw) == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise GoldenError(f"qemu-storage-daemon could not export the image: "
                                  f"{proc.stderr.read().decode(errors='replace').strip()}", file=image)
            time.sleep(0.05)
        parts = [p for p in _partitions(raw) if p.get("type") in ("83", "0FC63DAF-8483-4772-8E79-3D69D8477DE4")]
        if not parts:
            raise GoldenError("no Linux partition in the image's partition table", file=image)
        part = max(parts, key=lambda p: p["size"])
        subprocess.run(["mount", "-o", f"ro,loop,noload,offset={part['start'] * 512},sizelimit={part['size'] * 512}",
                        raw, root], check=True, capture_output=True)
        mounted = True
        yield root
    finally:
        if mounted:
            subprocess.run(["umount", root], capture_output=True)
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _is_qcow2(path):
    with open(path, "rb") as fh:
        return fh.read(4) == b"QFI\xfb"
