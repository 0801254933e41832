"""The local image store: a directory with an index, where published versions never change.

    store = Store("store/")
    store.publish(run, public_key="golden.pub")  # refuses without a passing gate whose digest matches,
                                                 # and without valid signatures by a trusted key
    store.versions()           # ['golden-linux-2026.11.26+1', ...] in version order

Trusted signing keys live in keys/ (public PEM). The first publish into an empty store trusts the
publisher's key; afterwards only keys already in keys/ are accepted (add one by copying its .pub).

Layout: index.json (the list of what is published: the commit point), images/<version>/ (the
qcow2, its gate record and run metadata, read-only). Publishing copies into .staging/, verifies the
copy's digest, renames it into images/, then replaces index.json atomically. A crash anywhere
before that last step leaves the index, and so the set of published images, as it was; leftovers
are swept by the next publish.
"""

import contextlib
import datetime as dt
import fcntl
import glob
import json
import os
import shutil
import tempfile

from pipeline.errors import GoldenError
from pipeline.evidence.gate import require_pass
from pipeline.store.version import Version
from pipeline.supply import attest
from pipeline.util import sha256_file, write_json_atomic

RECORDS = ("gate.json", "run.json", "artifact.json", "timings.json", "exceptions.json", "sbom.cdx.json", "scan.json",
           "scan.cdx.json", attest.PROVENANCE_FILE, attest.TEST_RESULT_FILE)


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

    def trusted_keys(self):
        """{keyid: public key PEM} of the keys this store accepts signatures from."""
        out = {}
        for path in sorted(glob.glob(os.path.join(self.root, "keys", "*.pub"))):
            with open(path, "rb") as fh:
                pem = fh.read()
            out[attest.public_key(pem).keyid] = pem
        return out

    def verify_signatures(self, directory, image_file, digest):
        """The statements of a run's (or published image's) attestations, each verified with a trusted key."""
        keys = self.trusted_keys()
        if not keys:
            raise GoldenError("the store trusts no signing key yet", file=os.path.join(self.root, "keys"))
        statements = {}
        for name, ptype in attest.ATTESTATIONS:
            path = os.path.join(directory, name)
            if not os.path.exists(path):
                raise GoldenError("no signed attestation: the candidate was not signed", file=path)
            errors = []
            for keyid, pem in keys.items():
                try:
                    statements[name] = attest.verify_envelope(path, pem, digest, ptype)
                    statements[name]["_keyid"] = keyid
                    break
                except GoldenError as exc:
                    errors.append(exc.reason)
            else:
                raise GoldenError("no trusted key verifies it: " + "; ".join(errors), file=path)
        result = statements[attest.TEST_RESULT_FILE]["predicate"].get("result")
        if result not in ("PASSED", "WARNED"):
            raise GoldenError(f"the signed test result is {result}, not PASSED", file=os.path.join(
                directory, attest.TEST_RESULT_FILE))
        return statements

    def _trust_first_key(self, public_key, log):
        if self.trusted_keys() or not public_key:
            return
        with open(public_key, "rb") as fh:
            pem = fh.read()
        keyid = attest.public_key(pem).keyid
        os.makedirs(os.path.join(self.root, "keys"), exist_ok=True)
        name = keyid.replace("SHA256:", "").replace("/", "_").replace("+", "-")[:16] + ".pub"
        with open(os.path.join(self.root, "keys", name), "wb") as fh:
            fh.write(pem)
        log(f"store has no trusted key yet: trusting {keyid} (keys/{name})")

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

    def publish(self, run, log=print, public_key=None):
        gate_path = run.path("gate.json")
        record, digest = require_pass(gate_path, run.artifact)
        if record.get("version") != run.version:
            raise GoldenError(f"gate record is for {record.get('version')}, not {run.version}", file=gate_path)
        with self._lock():
            self._trust_first_key(public_key, log)
            statements = self.verify_signatures(run.dir, os.path.basename(run.artifact), digest)
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
                for path in (run.path(n) for n in RECORDS if os.path.exists(run.path(n))):
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
                    "signed_by": statements[attest.PROVENANCE_FILE]["_keyid"],
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
