"""The image's own answer to "what do I run": /etc/golden/image.json, stamped by the build.

    write(spec, "golden-web-2026.12.01+1", provision_dir)      # packer/scripts/stamp.sh installs it
    findings(text, "golden-web-2026.12.01+1", spec)            # [] when the stamp names this image
"""

import datetime as dt
import hashlib
import json
import os
import subprocess

from pipeline.paths import ROOT
from pipeline.util import write_json_atomic

PATH = "/etc/golden/image.json"          # in the image; packer/scripts/stamp.sh names it too
PROVISION_NAME = "image.json"            # in the provision directory the build uploads
# Mode and owner of the stamp and its directory, as stamp.sh installs them.
MODES = {PATH: (0o644, "root:root"), os.path.dirname(PATH): (0o755, "root:root")}
FIELDS = ("version", "image", "role", "level", "built_at", "commit", "dirty", "spec", "spec_sha256")


def commit(repo=ROOT):
    """(commit, dirty) of the repository the image is built from; ("unknown", None) outside a git checkout."""
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown", None
    status = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True)
    return head.stdout.strip(), (bool(status.stdout.strip()) if status.returncode == 0 else None)


def record(spec, version, repo=ROOT, now=None):
    """The stamp of one build of `spec` as `version`."""
    from pipeline.image.spec import LayeredDoc
    merged = json.dumps(LayeredDoc.load(spec.path).data, sort_keys=True, default=str)
    rel = os.path.relpath(spec.path, repo)
    head, dirty = commit(repo)
    return {"version": version, "image": spec.name, "role": spec.role, "level": spec.level,
            "built_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
            "commit": head, "dirty": dirty, "spec": spec.path if rel.startswith("..") else rel,
            "spec_sha256": hashlib.sha256(merged.encode()).hexdigest()}


def write(spec, version, directory, repo=ROOT):
    write_json_atomic(os.path.join(directory, PROVISION_NAME), record(spec, version, repo))


def findings(text, version, spec, modes=None):
    """What is wrong with a stamp's text (None: no stamp at all) for the image `version` of `spec`, and
    with the {path: (mode, "user:group")} of the stamp and its directory when given."""
    out = [f"{path} is {mode:04o} {owner}, expected {MODES[path][0]:04o} {MODES[path][1]}"
           for path, (mode, owner) in sorted((modes or {}).items()) if (mode, owner) != MODES[path]]
    if text is None:
        return out + [f"no {PATH}: the image cannot say what it is"]
    try:
        record = json.loads(text)
    except ValueError as exc:
        return out + [f"{PATH} is not JSON: {exc}"]
    if not isinstance(record, dict):
        return out + [f"{PATH} is not a JSON object: {text[:100]!r}"]
    out += [f"{PATH} has no {k}" for k in FIELDS if k not in record]
    expected = {"version": version, "image": spec.name, "role": spec.role, "level": spec.level}
    out += [f"{PATH} says {k} {record[k]!r}, the image is {v!r}" for k, v in expected.items()
            if k in record and record[k] != v]
    return out
