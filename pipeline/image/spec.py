"""Image specs (`images/<name>.yaml`): what to build, for which role, with which agents.

    spec = ImageSpec.load("images/golden-linux.yaml")
    spec.name, spec.role, spec.level, spec.base.suite, spec.agents
"""

import os
import re
from dataclasses import dataclass, field

from pipeline import yamlsrc
from pipeline.checks.baseline import Baseline
from pipeline.paths import IMAGES_DIR
from pipeline.store.version import NAME_RE

TARGETS = ("qemu", "amazon-ebs")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
HARDENING_VERSION_RE = re.compile(r"^(current|\d+\.\d+\.\d+)$")


@dataclass
class BaseSpec:
    source: str                # the spec file, for error messages
    line: int | None
    suite: str = "bookworm"
    packages: list = field(default_factory=list)
    mirrors: list = field(default_factory=list)
    image: str | None = None   # an existing qcow2 instead of building one
    sha256: str | None = None


@dataclass
class Agent:
    name: str
    packages: list
    service: str
    probe: dict


@dataclass
class ImageSpec:
    path: str
    name: str
    description: str
    role: str
    level: int
    base: BaseSpec
    targets: list
    agents: list
    time_servers: list
    hardening_version: str
    customize: list            # absolute paths of extra provisioning scripts, run after hardening
    allowed: dict = field(default_factory=dict)  # listening / services / packages allowlists (globs)
    feeds: dict = field(default_factory=dict)   # feed kind -> [path or URL]
    scan_policy: str | None = None              # scan policy file (default: pipeline/scan-policy.yaml)

    @classmethod
    def load(cls, path, baseline=None):
        baseline = baseline or Baseline.load()
        doc = yamlsrc.load(path)
        here = os.path.dirname(os.path.abspath(path))
        top = yamlsrc.Fields(doc, doc.data)
        name = top.get("name", str, required=True,
                       check=lambda v: None if NAME_RE.match(v) else
                       "must be lowercase letters, digits and hyphens (it becomes golden-<name>-YYYY.MM.DD+N)")
        description = top.get("description", str, default="")
        role = top.get("role", str, required=True,
                       check=lambda v: None if v in baseline.roles else
                       f"unknown role {v!r} (roles of {os.path.basename(baseline.path)}: {', '.join(baseline.roles)})")
        level = top.get("level", int, default=baseline.level_for(role),
                        check=lambda v: None if v in (1, 2) else "must be 1 or 2")
        base = _base(doc, top.sub("base", required=True), here, path)
        targets = top.get("targets", list, default=["qemu"],
                          check=lambda v: next((f"unknown target {t!r} (known: {', '.join(TARGETS)})"
                                                for t in v if t not in TARGETS), None))
        agents = [_agent(doc, a, i) for i, a in enumerate(top.get("agents", list, default=[]))]
        time_servers = top.get("time_servers", list, default=[],
                               check=lambda v: None if all(isinstance(s, str) and s for s in v)
                               else "must be a list of host names")
        hardening = top.sub("hardening")
        hardening_version = "current"
        if hardening:
            hardening_version = str(hardening.get("version", str, default="current",
                                                  check=lambda v: None if HARDENING_VERSION_RE.match(v)
                                                  else "must be `current` or a version such as 1.0.0"))
            hardening.done()
        feeds, scan_policy = _scan(doc, top.sub("scan"), here)
        allowed = _allowed(doc, top.sub("allowed"), here)
        customize = []
        for i, script in enumerate(top.get("customize", list, default=[])):
            full = os.path.normpath(os.path.join(here, str(script)))
            if not os.path.isfile(full):
                raise doc.error(f"script not found: {full}", doc.data["customize"], i, field=f"customize[{i}]")
            customize.append(full)
        top.done()
        return cls(os.path.abspath(path), name, description, role, level, base, targets, agents,
                   time_servers, hardening_version, customize, allowed, feeds, scan_policy)


def _base(doc, f, here, path):
    b = BaseSpec(source=path, line=doc.line(f.mapping))
    image = f.get("image", str)
    if image is not None:
        b.image = os.path.normpath(os.path.join(here, os.path.expanduser(image)))
        b.sha256 = f.get("sha256", str, required=True,
                         check=lambda v: None if SHA256_RE.match(v) else "must be 64 lowercase hex digits")
        b.line = doc.line(f.mapping, "image")
    else:
        b.suite = f.get("suite", str, default="bookworm")
        b.packages = f.get("packages", list, default=[])
        b.mirrors = f.get("mirrors", list, default=[],
                          check=lambda v: None if all(isinstance(m, str) and m.startswith("deb ") for m in v)
                          else "each mirror must be a one-line apt source: deb URI SUITE COMPONENT...")
    f.done()
    return b


def _allowed(doc, f, here):
    """allowed: {listening: [tcp/22, udp/323@127.0.0.1], services: [globs], packages: [globs] or FILE}."""
    out = {"listening": None, "services": None, "packages": None}
    if f is None:
        return out
    strings = lambda v: None if all(isinstance(x, str) and x for x in v) else "must be a list of strings"  # noqa: E731
    out["listening"] = f.get("listening", list, check=lambda v: strings(v) or next(
        (f"{x!r} is not PROTO/PORT[@ADDRESS] (e.g. tcp/22, udp/323@127.0.0.1)" for x in v
         if not re.match(r"^(tcp|udp)6?/\d+(@\S+)?$", x)), None))
    out["services"] = f.get("services", list, check=strings)
    packages = f.get("packages", (list, str))
    if isinstance(packages, str):
        path = os.path.normpath(os.path.join(here, packages))
        if not os.path.isfile(path):
            raise f.error("packages", f"package allowlist not found: {path}")
        with open(path, encoding="utf-8") as fh:
            packages = [l.split("#", 1)[0].strip() for l in fh if l.split("#", 1)[0].strip()]
    out["packages"] = packages
    f.done()
    return out


def _scan(doc, f, here):
    """scan: {feeds: {debian-tracker: [...], osv: [...]}, policy: FILE}; paths are relative to the spec."""
    if f is None:
        return {}, None
    feeds = {}
    raw = f.sub("feeds", required=True)
    for kind in ("debian-tracker", "osv"):
        locations = raw.get(kind, list, default=[],
                            check=lambda v: None if all(isinstance(x, str) and x for x in v) else "must list paths or URLs")
        resolved = []
        for j, loc in enumerate(locations):
            if "://" in loc:
                resolved.append(loc)
                continue
            full = os.path.normpath(os.path.join(here, loc))
            if not os.path.exists(full):
                raise doc.error(f"feed not found: {full}", raw.mapping[kind], j, field=f"scan.feeds.{kind}[{j}]")
            resolved.append(full)
        if resolved:
            feeds[kind] = resolved
    raw.done()
    if not feeds:
        raise f.error("feeds", "must name at least one feed (debian-tracker or osv)")
    policy = f.get("policy", str)
    if policy is not None:
        policy = os.path.normpath(os.path.join(here, policy))
        if not os.path.isfile(policy):
            raise f.error("policy", f"policy file not found: {policy}")
    f.done()
    return feeds, policy


def _agent(doc, raw, i):
    f = yamlsrc.Fields(doc, raw, f"agents[{i}]")
    name = f.get("name", str, required=True)
    packages = f.get("packages", list, default=[name])
    service = f.get("service", str, default=name)
    probe = f.get("probe", dict, default={})
    allowed = {"http", "command", "expect"}
    if set(probe) - allowed:
        raise f.error("probe", f"unknown probe field (allowed: {', '.join(sorted(allowed))})")
    f.done()
    return Agent(name, packages, service, dict(probe))


def known_images(directory=IMAGES_DIR, baseline=None):
    """Image specs of the repository: {name: role} (exception scopes name images by these names)."""
    import glob
    out = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        spec = ImageSpec.load(path, baseline)
        out[spec.name] = spec.role
    return out
