"""The local image store: a directory with an index, where published versions never change.

    store = Store("store/")
    store.publish(run, public_key="golden.pub")  # refuses without a passing gate whose digest matches,
                                                 # and without valid signatures by a trusted key
    store.versions()           # ['golden-linux-2026.11.26+1', ...] in version order

Layout: index.json (the commit point: what is published, the channels, the trusted keys, the
revocations), images/<version>/ (the qcow2, its gate record, JUnit, SBOM, scan and run metadata,
read-only), keys/*.pub (public PEM of the keys the index trusts), events.jsonl (every change, one
JSON line each). Every change takes the store's flock, appends its event (numbered with the
index's next `seq`) and then replaces index.json atomically; an event whose seq is above the
index's was never committed and a later event of the same seq supersedes it.

Trust: a key is trusted only when the index lists it. The first publish into a store that trusts
no key trusts the publisher's key, after the run's signatures verify with it, in the same index
commit as the image; `golden store trust KEY.pub` and `golden store rotate KEYID KEY.pub` are the
explicit ways. A store index written before trust was recorded trusts its keys/*.pub as they are.

Publishing copies into .staging/, verifies the copy's digests (the image against the gate, the
records against the signed provenance), renames it into images/, then commits the index. A crash
before the commit leaves the set of published images as it was; the next publish removes
.staging/ leftovers only. A sealed image directory the index does not list is "unlisted": reported
by `golden list` and removed only by `golden store gc --unlisted`.
"""

import contextlib
import datetime as dt
import errno
import fcntl
import getpass
import glob
import json
import os
import re
import shutil
import tempfile

from pipeline.errors import GoldenError
from pipeline.evidence.gate import require_pass
from pipeline.store.version import Version
from pipeline.supply import attest
from pipeline.supply.packages import INDEX_FILE, write_index
from pipeline.supply.sbom import SBOM_FILE
from pipeline.util import sha256_file, write_json_atomic

RECORDS = ("gate.json", "run.json", "artifact.json", "timings.json", "exceptions.json", "sbom.cdx.json", "scan.json",
           "scan.cdx.json", "expected-tests.json", "expected-hygiene.json", "hygiene.json", "test.json", "reboot.json",
           attest.PROVENANCE_FILE, attest.TEST_RESULT_FILE)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Top-level fields of index.json and the type each must have.
INDEX_FIELDS = {"images": dict, "channels": dict, "keys": dict, "rotations": list, "deleted": dict, "seq": int}
ENTRY_FIELDS = {"version": str, "file": str, "sha256": str}


def actor():
    """Who makes a change: $GOLDEN_ACTOR, else the user name."""
    return os.environ.get("GOLDEN_ACTOR") or getpass.getuser()


def utc_now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def timestamp(when):
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


class Store:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.index_path = os.path.join(self.root, "index.json")
        self.events_path = os.path.join(self.root, "events.jsonl")

    # ------------------------------------------------------------ reading

    def index(self):
        """The validated index, every field present (an absent index is an empty store)."""
        try:
            with open(self.index_path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            data = {"images": {}, "keys": {}}
        except json.JSONDecodeError as exc:
            raise GoldenError(f"store index is corrupt: {exc.msg}", file=self.index_path, line=exc.lineno) from None
        except OSError as exc:
            raise GoldenError(f"cannot read the store index: {exc.strerror}", file=self.index_path) from None
        return self._validated(data)

    def _validated(self, data):
        def bad(reason, field=None):
            return GoldenError(reason, file=self.index_path, field=field)
        if not isinstance(data, dict):
            raise bad(f"must be a JSON object with an \"images\" object, not {type(data).__name__}")
        if "images" not in data:
            raise bad("missing: every store index lists its images (an empty store has \"images\": {})", "images")
        for name, kind in INDEX_FIELDS.items():
            if name in data and not isinstance(data[name], kind) or isinstance(data.get(name), bool):
                raise bad(f"must be a JSON {'object' if kind is dict else kind.__name__}, "
                          f"not {type(data[name]).__name__}", name)
        for version, entry in data["images"].items():
            where = f"images.{version}"
            if not Version.is_version(version):
                raise bad("not a version of the form golden-<name>-YYYY.MM.DD+N", where)
            if not isinstance(entry, dict):
                raise bad(f"must be an object, not {type(entry).__name__}", where)
            for name, kind in ENTRY_FIELDS.items():
                if not isinstance(entry.get(name), kind):
                    raise bad("missing or not a string", f"{where}.{name}")
            if entry["version"] != version:
                raise bad(f"is {entry['version']!r}, its key is {version!r}", f"{where}.version")
            if not SHA256_RE.match(entry["sha256"]):
                raise bad("must be 64 lowercase hex digits", f"{where}.sha256")
        for keyid, rec in (data.get("keys") or {}).items():
            if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
                raise bad("must be an object with the key's \"file\"", f"keys.{keyid}")
        for image, chans in (data.get("channels") or {}).items():
            for name, ch in (chans.items() if isinstance(chans, dict) else [(None, chans)]):
                if not isinstance(ch, dict) or not isinstance(ch.get("history"), list):
                    raise bad("must be an object with a \"version\" and a \"history\" list",
                              f"channels.{image}" + (f".{name}" if name else ""))
        if "keys" not in data:      # an index from before trust was recorded: its keys/ files are trusted
            data["keys"] = {rec_id: rec for rec_id, rec in self._key_files().items()}
        data.setdefault("channels", {})
        data.setdefault("rotations", [])
        data.setdefault("deleted", {})
        data.setdefault("seq", 0)
        return data

    def _key_files(self):
        out = {}
        for path in sorted(glob.glob(os.path.join(self.root, "keys", "*.pub"))):
            out[attest.public_key(path).keyid] = {"file": os.path.relpath(path, self.root), "trusted_at": None,
                                                  "by": None, "reason": "in keys/ before trust was recorded"}
        return out

    def versions(self, index=None):
        return sorted((index or self.index())["images"], key=Version.sort_key)

    def entry(self, version, index=None):
        images = (index or self.index())["images"]
        if version not in images:
            raise GoldenError(f"{version} is not published in {self.root}", field="version")
        return images[version]

    def taken(self):
        """Every version number the store has used: published, deleted, or left in an unlisted directory;
        a new build never takes one of them."""
        index = self.index()
        return set(index["images"]) | set(index["deleted"]) | set(self.unlisted(index))

    def unlisted(self, index=None):
        """Image directories in images/ the index does not list (sealed by a publish that never committed, or
        listed by an index that was replaced): reported, never removed without `golden store gc --unlisted`."""
        images = (index or self.index())["images"]
        directory = os.path.join(self.root, "images")
        names = os.listdir(directory) if os.path.isdir(directory) else []
        return sorted(n for n in names if n not in images)

    def events(self):
        """The committed events, oldest first (a line of a change that never committed is left out)."""
        seq = self.index()["seq"]
        by_seq = {}
        try:
            with open(self.events_path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:       # a line cut by a crash while it was written
                        continue
                    if isinstance(event, dict) and isinstance(event.get("seq"), int) and event["seq"] <= seq:
                        by_seq[event["seq"]] = event
        except FileNotFoundError:
            pass
        return [by_seq[n] for n in sorted(by_seq)]

    # ------------------------------------------------------------ trust

    def trusted_keys(self, index=None):
        """{keyid: public key PEM} of the keys the index trusts."""
        out = {}
        for keyid, rec in (index or self.index())["keys"].items():
            path = os.path.join(self.root, rec["file"])
            try:
                with open(path, "rb") as fh:
                    pem = fh.read()
            except OSError as exc:
                raise GoldenError(f"a trusted key's file cannot be read: {exc.strerror}", file=path) from None
            actual = attest.public_key(pem, path).keyid
            if actual != keyid:
                raise GoldenError(f"holds key {actual}, the store index trusts {keyid} under this name", file=path)
            out[keyid] = pem
        return out

    def verify_signatures(self, directory, image_file, digest, keys=None):
        """The statements of a run's (or published image's) attestations, each verified with a trusted key
        (or one of `keys`, {keyid: PEM}); each statement's "_keyid" is the key that verified it."""
        keys = self.trusted_keys() if keys is None else keys
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

    def signer_accepted(self, recorded, actual, index=None):
        """Whether `actual` may stand for the index's `recorded` signer: the same key, or reached from it by
        recorded rotations."""
        reached, rotations = {recorded}, (index or self.index())["rotations"]
        changed = True
        while changed:
            changed = False
            for r in rotations:
                if r.get("from") in reached and r.get("to") not in reached:
                    reached.add(r["to"])
                    changed = True
        return actual in reached

    def _stage_key(self, c, pem, reason):
        """Write keys/<name>.pub for a key and list it in the change's index: trusted once the index commits, and
        the file removed again if the change does not commit."""
        keyid = attest.public_key(pem).keyid
        name = keyid.replace("SHA256:", "").replace("/", "_").replace("+", "-")[:16] + ".pub"
        path = os.path.join(self.root, "keys", name)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
            c.undo.append(lambda: _rmdir_if_empty(os.path.dirname(path)))
        if os.path.exists(path):        # left by a change that never committed, or the same key trusted again
            with open(path, "rb") as fh:
                held = attest.public_key(fh.read(), path).keyid
            if held != keyid:
                raise GoldenError(f"holds another key ({held})", file=path)
        else:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
            c.undo.append(lambda: os.path.exists(tmp) and os.unlink(tmp))
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
            c.undo.append(lambda: os.path.exists(path) and os.unlink(path))
        c.index["keys"][keyid] = {"file": os.path.relpath(path, self.root), "trusted_at": c.event["at"],
                                  "by": c.event["by"], "reason": reason}
        return path

    def trust(self, public_key, reason, rotate_from=None):
        """Trust a public key (a PEM file); with `rotate_from` (a trusted keyid) record that images signed by that
        key may be re-signed by this one.

            store.trust("new.pub", "second signer for the CI runner")
            store.trust("new.pub", "yearly rotation", rotate_from="SHA256:...")
        """
        try:
            with open(public_key, "rb") as fh:
                pem = fh.read()
        except OSError as exc:
            raise GoldenError(f"cannot read the public key: {exc.strerror}", file=public_key) from None
        keyid = attest.public_key(pem, public_key).keyid
        with self.change("rotate" if rotate_from else "trust", keyid=keyid, reason=reason) as c:
            index, event = c.index, c.event
            if rotate_from:
                if rotate_from not in index["keys"]:
                    raise GoldenError(f"{rotate_from} is not a key this store trusts", field="from")
                if rotate_from == keyid:
                    raise GoldenError("a key cannot replace itself", field="from")
                index["rotations"].append({"from": rotate_from, "to": keyid, "at": event["at"], "by": event["by"],
                                           "reason": reason})
                event["from"] = rotate_from
            elif keyid in index["keys"]:
                raise GoldenError(f"{keyid} is trusted already", file=public_key)
            event["file"] = self._stage_key(c, pem, reason)
        return keyid

    # ------------------------------------------------------------ changing

    @contextlib.contextmanager
    def _lock(self):
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, ".lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def change(self, action, **details):
        """One recorded, atomic change: under the lock the body edits `c.index` and `c.event`; on a normal exit the
        event is appended to events.jsonl and the index committed; on any failure before the commit the `c.undo`
        callbacks run (newest first), events.jsonl is cut back to what it was, and nothing is committed. A store
        that cannot be written (a full disk, a read-only filesystem) is a GoldenError naming the file, after the
        undo, whichever change it was (publish, trust, promote, revoke, gc, lifecycle...).

            with store.change("promote", version=v) as c:
                c.index["channels"]... ; c.event["reason"] = why
        """
        try:
            with self._lock():
                index = self.index()
                c = Change(index, {"seq": index["seq"] + 1, "at": timestamp(utc_now()), "by": actor(),
                                   "action": action, **details})
                events_size = _size(self.events_path)
                try:
                    yield c
                    index["seq"] = c.event["seq"]
                    self._append_event(c.event)
                    write_json_atomic(self.index_path, index)       # the commit point
                except BaseException:
                    if not self._committed(c.event["seq"]):
                        for undo in reversed(c.undo):
                            undo()
                        _cut_back(self.events_path, events_size)
                    raise
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            hint = "free space on the store's filesystem and try again; " if exc.errno == errno.ENOSPC else ""
            raise GoldenError(f"cannot write the store ({action}): {reason}; {hint}the store is as it was",
                              file=exc.filename or self.root) from None

    def _committed(self, seq):
        """Whether index.json on disk holds change `seq` (an interrupt can land after the commit point)."""
        try:
            with open(self.index_path, encoding="utf-8") as fh:
                return json.load(fh).get("seq") == seq
        except (OSError, ValueError, AttributeError):
            return False

    def _append_event(self, event):
        with open(self.events_path, "a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":          # close a line a crash cut short, so this one stands alone
                    fh.write(b"\n")
            fh.write(json.dumps(event, sort_keys=True, default=str).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def publish(self, run, log=print, public_key=None):
        """Publish a run's candidate; on the first publish into a store that trusts no key, `public_key` (a PEM
        file) is trusted in the same commit, after the run's signatures verify with it."""
        gate_path = run.path("gate.json")
        record, digest = require_pass(gate_path, run.artifact)
        if record.get("version") != run.version:
            raise GoldenError(f"gate record is for {record.get('version')}, not {run.version}", file=gate_path)
        with self.change("publish", version=run.version, sha256=digest) as c:     # a full disk: GoldenError, undone
            entry = self._publish(c, run, log, public_key, record, digest)
        log(f"published {run.version} ({digest[:16]}...) in {self.root}")
        return entry

    def _publish(self, c, run, log, public_key, record, digest):
        index, event = c.index, c.event
        if run.version in index["images"] or run.version in index["deleted"]:
            raise GoldenError(f"{run.version} is already published; published versions are immutable",
                              field="version")
        keys, new_key = self.trusted_keys(index), None
        if not keys:
            if not public_key:
                raise GoldenError("the store trusts no signing key yet: publish with the signing key's public half "
                                  "or `golden store trust KEY.pub`", file=os.path.join(self.root, "keys"))
            with open(public_key, "rb") as fh:
                new_key = fh.read()
            keys = {attest.public_key(new_key, public_key).keyid: new_key}
        statements = self.verify_signatures(run.dir, os.path.basename(run.artifact), digest, keys)
        provenance = statements[attest.PROVENANCE_FILE]
        attest.check_byproducts(provenance, run.dir)       # the gate record read above is the one signed
        final = os.path.join(self.root, "images", run.version)
        if os.path.lexists(final):
            raise GoldenError("an unlisted image directory holds this version: inspect it, then remove it with "
                              "`golden store gc --unlisted`", file=final)
        staging_root = os.path.join(self.root, ".staging")
        if os.path.isdir(staging_root):         # only the publisher's own leftovers, under the lock
            _force_rmtree(staging_root)
        c.undo.append(lambda: _force_rmtree(staging_root))
        os.makedirs(staging_root)
        staging = tempfile.mkdtemp(prefix=f"{run.version}-", dir=staging_root)
        image_name = os.path.basename(run.artifact)
        log(f"copying {image_name} into the store")
        shutil.copyfile(run.artifact, os.path.join(staging, image_name))
        copied = sha256_file(os.path.join(staging, image_name))
        if copied != digest:
            raise GoldenError(f"the copy's sha256 {copied} differs from the gated {digest}", file=run.artifact)
        names = [n for n in RECORDS if os.path.exists(run.path(n))]
        names += sorted(os.path.basename(p) for p in glob.glob(run.path("junit*.xml")))
        for name in names:
            shutil.copyfile(run.path(name), os.path.join(staging, name))
        attest.check_byproducts(provenance, staging)      # what is sealed is what was signed
        if os.path.exists(os.path.join(staging, SBOM_FILE)):  # `golden cve` reads this, not the SBOM
            write_index(os.path.join(staging, SBOM_FILE), os.path.join(staging, INDEX_FILE))
        for name in os.listdir(staging):
            p = os.path.join(staging, name)
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(p, 0o444)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(staging, final)
        c.undo.append(lambda: _force_rmtree(final))
        os.chmod(final, 0o555)
        if new_key:
            path = self._stage_key(c, new_key, f"signed the first image published, {run.version}")
            log(f"store trusted no key yet: trusting {provenance['_keyid']} ({os.path.relpath(path, self.root)})")
            event["trusted"] = provenance["_keyid"]
        artifact = _read_optional(os.path.join(final, "artifact.json"))
        base = artifact.get("base") or _read_optional(os.path.join(final, "run.json")).get("base") or {}
        index["images"][run.version] = entry = {
            "version": run.version,
            "image": Version.parse(run.version).name,
            "file": f"images/{run.version}/{image_name}",
            "sha256": digest,
            "size": os.path.getsize(os.path.join(final, image_name)),
            "gate": f"images/{run.version}/gate.json",
            "counts": record.get("counts"),
            "signed_by": provenance["_keyid"],
            "base_sha256": base.get("sha256"),
            "published_at": event["at"],
        }
        from pipeline.store import channels
        channels.point(index, channels.CANDIDATE, run.version, event, "published")
        return entry

    def gc_unlisted(self, log=print):
        """Remove the image directories the index does not list; refuses while a channel or a fleet names one."""
        from pipeline.store import channels
        from pipeline.store.lifecycle import versions_in_use
        with self.change("gc-unlisted") as c:
            index, event = c.index, c.event
            names = self.unlisted(index)
            pointed = channels.pointed_at(index)
            in_use = versions_in_use(self)
            held = [n for n in names if n in pointed or n in in_use]
            if held:
                raise GoldenError(f"refusing: {', '.join(held)} is named by a channel or a fleet",
                                  file=os.path.join(self.root, "images"))
            for name in names:
                _force_rmtree(os.path.join(self.root, "images", name))
                log(f"removed unlisted images/{name}")
            event["removed"] = names
        return names

    def resolvable(self, version, now=None):
        """The store entry of a version a rollout may use; GoldenError if it is not published, is revoked (or
        descends from a revoked image), or does not verify.

            entry = store.resolvable("golden-linux-2026.11.26+4")
        """
        from pipeline.store.revocation import revocation
        from pipeline.supply.verify import verify
        index = self.index()
        self.entry(version, index)
        reason = revocation(self, index, version, now)
        if reason:
            raise GoldenError(f"{version} {reason}", field="version")
        _, findings = verify(self, version)
        bad = [f"{n}: {d}" for n, ok, d in findings if not ok]
        if bad:
            raise GoldenError(f"{version} does not verify: " + "; ".join(bad), field="version")
        return self.entry(version)


class Change:
    """What one `Store.change()` holds: the index being edited, its event, and how to undo what it wrote."""

    def __init__(self, index, event):
        self.index, self.event, self.undo = index, event, []


def _size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return None


def _cut_back(path, size):
    """A file back to `size` bytes (None: it did not exist), if a change that did not commit grew it."""
    now = _size(path)
    if now is None or now == size:
        return
    if size is None:
        os.unlink(path)
    else:
        os.truncate(path, size)


def _read_optional(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _rmdir_if_empty(path):
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _force_rmtree(path):
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
