"""Offline vulnerability feeds: the Debian security tracker JSON and OSV records, fetched once and cached.

    feeds = load_feeds({"debian-tracker": "https://…/tracker/data/json", "osv": ["osv-debian/"]}, cache_dir)
    feeds.tracker["openssh"]["CVE-2023-38408"]["releases"]["bookworm"]     # the tracker's own shape
    feeds.osv_for("Debian:12", "openssh")                                   # [(record, affected), ...]

A URL is downloaded once into `<cache_dir>/feeds/` with a JSON record beside it (`url`, `sha256`,
`size`, `fetched_at`); later loads reuse the copy unless `refresh=True`. A local path is read in
place and recorded the same way (a directory's digest is the sha256 of its sorted
"sha256  relative-path" lines). Gzip files and OSV zip exports (`…/Debian/all.zip`) are read as is.
OSV records that are `withdrawn` are ignored.
"""

import dataclasses
import datetime as dt
import glob
import gzip
import hashlib
import io
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from pipeline.errors import GoldenError
from pipeline.util import read_json, sha256_file, write_json_atomic

KINDS = ("debian-tracker", "osv")


@dataclasses.dataclass
class Feeds:
    tracker: dict                       # source package -> CVE id -> entry (tracker JSON shape)
    osv: dict                           # (ecosystem, package) -> [(record, affected entry), ...]
    records: list                       # one per feed: kind, location, path, sha256, size, fetched_at
    tracker_files: dict = dataclasses.field(default_factory=dict)     # source package -> feed file

    def osv_for(self, ecosystem, package):
        return self.osv.get((ecosystem, package), [])


def load_feeds(sources, cache_dir, now=None, refresh=False):
    """Fetch (or reuse) and parse each feed; `sources` maps a kind in KINDS to a location or a list."""
    now = now or dt.datetime.now(dt.timezone.utc)
    feeds = Feeds(tracker={}, osv={}, records=[])
    for kind, locations in sources.items():
        if kind not in KINDS:
            raise GoldenError(f"unknown feed kind (known: {', '.join(KINDS)})", field=f"feeds.{kind}")
        for location in [locations] if isinstance(locations, str) else list(locations or []):
            record = fetch(location, cache_dir, now, refresh)
            record["kind"] = kind
            if kind == "debian-tracker":
                _add_tracker(feeds, record["path"])
            else:
                _add_osv(feeds, record["path"])
            feeds.records.append(record)
    return feeds


def fetch(location, cache_dir, now, refresh=False):
    """The local copy of a feed and its record: a URL is downloaded once into the cache."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme not in ("http", "https"):
        path = os.path.abspath(parsed.path if parsed.scheme == "file" else location)
        if not os.path.exists(path):
            raise GoldenError("feed not found", file=path)
        digest, size = _digest(path)
        return {"location": path, "path": path, "sha256": digest, "size": size,
                "fetched_at": _iso(now), "cached": False}
    directory = os.path.join(cache_dir, "feeds")
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(parsed.path.rstrip("/")) or "feed"
    path = os.path.join(directory, f"{hashlib.sha256(location.encode()).hexdigest()[:16]}-{name}")
    meta_path = path + ".json"
    if not refresh and os.path.exists(path) and os.path.exists(meta_path):
        meta = read_json(meta_path, "feed cache record")
        if meta.get("sha256") == sha256_file(path):     # a cache file changed on disk is fetched again
            return dict(meta, path=path, cached=True)
    digest, size = _download(location, path)
    meta = {"location": location, "sha256": digest, "size": size, "fetched_at": _iso(now)}
    write_json_atomic(meta_path, meta)
    return dict(meta, path=path, cached=False)


def _download(url, path):
    fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=os.path.dirname(path))
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=300) as resp:
            while block := resp.read(1 << 20):
                h.update(block)
                size += len(block)
                out.write(block)
        os.replace(tmp, path)
    except (urllib.error.URLError, OSError) as exc:
        raise GoldenError(f"cannot fetch the feed: {getattr(exc, 'reason', exc)}", file=url) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return h.hexdigest(), size


def _digest(path):
    if os.path.isfile(path):
        return sha256_file(path), os.path.getsize(path)
    lines, size = [], 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            lines.append(f"{sha256_file(full)}  {os.path.relpath(full, path)}\n")
            size += os.path.getsize(full)
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(), size


def _iso(when):
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read_bytes(path):
    with open(path, "rb") as fh:
        data = fh.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _json(data, path):
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GoldenError(f"malformed JSON: {exc}", file=path) from None


def _add_tracker(feeds, path):
    data = _json(_read_bytes(path), path)
    if not isinstance(data, dict):
        raise GoldenError("not a Debian security tracker JSON (top level is not an object)", file=path)
    for package, issues in data.items():
        if not isinstance(issues, dict):
            raise GoldenError("must map CVE ids to entries", file=path, field=package)
        for cve, entry in issues.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("releases", {}), dict):
                raise GoldenError("entry must be an object with a `releases` object", file=path,
                                  field=f"{package}.{cve}")
        feeds.tracker.setdefault(package, {}).update(issues)
        feeds.tracker_files[package] = path


def _osv_records(path):
    if os.path.isdir(path):
        for dirpath, _, files in os.walk(path):
            for name in sorted(files):
                if name.endswith(".json"):
                    full = os.path.join(dirpath, name)
                    yield full, _json(_read_bytes(full), full)
        return
    data = _read_bytes(path)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if name.endswith(".json"):
                    yield f"{path}!{name}", _json(zf.read(name), f"{path}!{name}")
        return
    doc = _json(data, path)
    for i, rec in enumerate(doc if isinstance(doc, list) else [doc]):
        yield (f"{path}[{i}]" if isinstance(doc, list) else path), rec


def _add_osv(feeds, path):
    for where, rec in _osv_records(path):
        if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get("affected", []), list):
            raise GoldenError("not an OSV record (needs `id` and an `affected` list)", file=where)
        if rec.get("withdrawn"):
            continue
        rec.setdefault("_file", where)
        for affected in rec.get("affected", []):
            pkg = affected.get("package") or {}
            if pkg.get("ecosystem") and pkg.get("name"):
                feeds.osv.setdefault((pkg["ecosystem"], pkg["name"]), []).append((rec, affected))


_CHANGELOG_ENTRY = re.compile(r"^(\S+) \(([^)]+)\) [^;]+; urgency=(\w+)", re.M)
_CVE = re.compile(r"CVE-\d{4}-\d{4,7}")


def tracker_from_changelogs(root, release="bookworm"):
    """A tracker-format feed of the CVEs Debian's changelogs (in an image's /usr/share/doc) say were fixed.
    Offline evidence where the tracker is out of reach; it knows only fixes, never open issues.

    A changelog is one line of descent, newest entry first: every entry from the one that names a
    CVE up to the top carries the fix. The fixed version is the lowest of those in dpkg order, which
    is the naming entry itself except for stable rebuilds: `590-2.1~deb12u1` carries the fix of
    `590-2.1` named below it, yet sorts before it."""
    from debian.debian_support import Version
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "usr/share/doc/*/changelog.Debian.gz"))):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        heads = list(_CHANGELOG_ENTRY.finditer(text))
        lowest = None           # the lowest version from the top entry down to this one
        for i, head in enumerate(heads):
            source, version, urgency = head.group(1), head.group(2), head.group(3).lower()
            try:
                if lowest is None or Version(version) < Version(lowest):
                    lowest = version
            except ValueError:
                pass            # an unparsable historic version: keep the lowest so far
            body = text[head.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            urgency = {"emergency": "high", "critical": "high"}.get(urgency, urgency)
            for cve in set(_CVE.findall(body)):
                # entries run newest first: the last one that names it is the oldest that fixed it
                out.setdefault(source, {})[cve] = {
                    "description": f"fixed in Debian {source} {version} (changelog)",
                    "releases": {release: {"status": "resolved", "fixed_version": lowest,
                                           "urgency": urgency if urgency in ("low", "medium", "high") else "medium"}}}
    return out
