"""The local image store: a directory with an index, where published versions never change.

    store = Store("store/")
    store.publish(run)         # refuses without a passing gate record whose digest matches
    store.versions()           # ['golden-linux-2026.11.26+1', ...] in version order

Layout: index.json (the list of what is published: the commit point), images/<version>/ (the
qcow2, its gate record and run metadata, read-only). Publishing copies into .staging/, verifies the
copy's digest, renames it into images/, then replaces index.json atomically. A crash anywhere
before that last step leaves the index, and so the set of published images, as it was; leftovers
are swept by the next publish.
"""

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import tempfile

from .errors import GoldenError
from .gate import require_pass
from .util import sha256_file, write_json_atomic
from .version import Version


class Store:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.index_path = os.path.join(self.root, "index.json")

    def index(self):
        try:
            with open(self.index_path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {"images": {}}
        except json.JSONDecodeError as exc:
            raise GoldenError(f"store index is corrupt: {exc.msg}", file=self.index_path) from None
        return data

    def versions(self):
        return sorted(self.index()["images"], key=Version.sort_key)

    def entry(self, version):
        images = self.index()["images"]
        if version not in images:
            raise GoldenError(f"{version} is not published in {self.root}", field="version")
        return images[version]

    @contextlib.contextmanager
    def _lock(self):
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, ".lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _sweep(self, published):
        """Remove what a crashed publish left: staging dirs and image dirs the index does not list."""
        staging = os.path.join(self.root, ".staging")
        if os.path.isdir(staging):
            shutil.rmtree(staging)
        images = os.path.join(self.root, "images")
        if os.path.isdir(images):
            for name in os.listdir(images):
                if name not in published:
                    _force_rmtree(os.path.join(images, name))

    def publish(self, run, log=print, extra_files=()):
        gate_path = run.path("gate.json")
        record, digest = require_pass(gate_path, run.artifact)
        if record.get("version") != run.version:
            raise GoldenError(f"gate record is for {record.get('version')}, not {run.version}", file=gate_path)
        with self._lock():
            index = self.index()
            if run.version in index["images"]:
                raise GoldenError(f"{run.version} is already published; published versions are immutable",
                                  field="version")
            self._sweep(index["images"])
            staging_root = os.path.join(self.root, ".staging")
            os.makedirs(staging_root, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=f"{run.version}-", dir=staging_root)
            final = os.path.join(self.root, "images", run.version)
            try:
                image_name = os.path.basename(run.artifact)
                log(f"copying {image_name} into the store")
                shutil.copyfile(run.artifact, os.path.join(staging, image_name))
                copied = sha256_file(os.path.join(staging, image_name))
                if copied != digest:
                    raise GoldenError(f"the copy's sha256 {copied} differs from the gated {digest}",
                                      file=run.artifact)
                files = [gate_path, run.path("run.json")] + [p for p in extra_files if os.path.exists(p)]
                for path in files:
                    shutil.copyfile(path, os.path.join(staging, os.path.basename(path)))
                for name in os.listdir(staging):
                    p = os.path.join(staging, name)
                    with open(p, "rb") as fh:
                        os.fsync(fh.fileno())
                    os.chmod(p, 0o444)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.rename(staging, final)
                os.chmod(final, 0o555)
                index["images"][run.version] = {
                    "version": run.version,
                    "image": Version.parse(run.version).name,
                    "file": f"images/{run.version}/{image_name}",
                    "sha256": digest,
                    "size": os.path.getsize(os.path.join(final, image_name)),
                    "gate": f"images/{run.version}/gate.json",
                    "counts": record.get("counts"),
                    "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                }
                write_json_atomic(self.index_path, index)       # the commit point
            except BaseException:
                for path in (staging, final):
                    if os.path.exists(path) and run.version not in self.index()["images"]:
                        _force_rmtree(path)
                raise
        log(f"published {run.version} ({digest[:16]}...) in {self.root}")
        return index["images"][run.version]


def _force_rmtree(path):
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
