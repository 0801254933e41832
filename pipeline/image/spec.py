"""Image specs (`images/<name>.yaml`): what to build, for which role, with which agents.

    spec = ImageSpec.load("images/golden-bastion.yaml")    # `extends: golden-linux.yaml`
    spec.name, spec.role, spec.level, spec.base.suite, spec.agents

A spec may `extends:` another (a path relative to it): mappings merge key by key, the extending
spec's values win, a list replaces the inherited one, `KEY+: [...]` appends to it (to a file's list
where the inherited value names a file, as allowed.packages may), `KEY: null` drops it. Errors name
the file that holds the bad value; relative paths resolve from that file.
"""

import ipaddress
import os
import re
from dataclasses import dataclass, field

from pipeline import yamlsrc
from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.paths import IMAGES_DIR
from pipeline.store.version import NAME_RE

TARGETS = ("qemu", "amazon-ebs")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_CADENCE_DAYS = 7         # the planned cadence: weekly unless the spec says otherwise
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
    published: dict | None = None   # {"image": NAME, "channel": CHANNEL}: the store's image on that channel


class LayeredDoc(yamlsrc.Doc):
    """A spec merged with the specs it extends; errors and relative paths follow each value's own file.

        doc = LayeredDoc.load("images/golden-bastion.yaml")
        doc.error("bad", doc.data, "role").file      # the file that set role
    """

    def __init__(self, path, data, origins):
        super().__init__(path, data)
        self.origins = origins     # (id(container), key or None) -> file

    def origin(self, container, key=None):
        return self.origins.get((id(container), key)) or self.origins.get((id(container), None)) or self.path

    def here(self, container, key=None):
        return os.path.dirname(os.path.abspath(self.origin(container, key)))

    def error(self, reason, container=None, key=None, field=None):
        line = self.line(container, key) if container is not None else None
        file = self.origin(container, key) if container is not None else self.path
        return GoldenError(reason, file=file, line=line, field=field)

    @classmethod
    def load(cls, path, _chain=()):
        path = os.path.abspath(path)
        doc = yamlsrc.load(path)
        origins = {}
        _claim(doc.data, path, origins)
        if not isinstance(doc.data, dict) or "extends" not in doc.data:
            return cls(path, doc.data, origins)
        parent_rel = doc.data["extends"]
        if not isinstance(parent_rel, str) or not parent_rel:
            raise doc.error("must be the path of another image spec (relative to this one)", doc.data, "extends",
                            field="extends")
        parent_path = os.path.normpath(os.path.join(os.path.dirname(path), parent_rel))
        if parent_path in (*_chain, path):
            cycle = " -> ".join(os.path.basename(p) for p in (*_chain, path, parent_path))
            raise doc.error(f"extends makes a cycle: {cycle}", doc.data, "extends", field="extends")
        if not os.path.isfile(parent_path):
            raise doc.error(f"extended spec not found: {parent_path}", doc.data, "extends", field="extends")
        parent = cls.load(parent_path, (*_chain, path))
        origins.update(parent.origins)
        child = yamlsrc.LineDict((k, v) for k, v in doc.data.items() if k != "extends")
        child.line, child.lines = doc.data.line, doc.data.lines
        origins[(id(child), None)] = path
        for k in child:
            origins[(id(child), k)] = path
        return cls(path, _merge(parent.data, child, origins, doc, ""), origins)


def _claim(node, path, origins):
    """Record `path` as the file of every container (and mapping key) under node."""
    if isinstance(node, dict):
        origins[(id(node), None)] = path
        for k, v in node.items():
            origins[(id(node), k)] = path
            _claim(v, path, origins)
    elif isinstance(node, list):
        origins[(id(node), None)] = path
        for v in node:
            _claim(v, path, origins)


def _merge(parent, child, origins, doc, prefix):
    """The child mapping over the parent one: mappings merge (`KEY!` replaces one whole), lists replace
    (`KEY+` appends), null drops."""
    out = yamlsrc.LineDict(parent)
    out.line, out.lines = parent.line, dict(parent.lines)
    for k in parent:
        origins[(id(out), k)] = origins.get((id(parent), k))
    origins[(id(out), None)] = origins.get((id(child), None))
    for key, value in child.items():
        name = f"{prefix}{key}"
        written = key
        replace = isinstance(key, str) and key.endswith("!")
        if replace:
            key = key[:-1]
        if isinstance(key, str) and key.endswith("+"):
            base_key = key[:-1]
            inherited = parent.get(base_key, [])
            if isinstance(inherited, str) and isinstance(value, list):
                # A list kept in a file (allowed.packages): appending to it lists the file first.
                inherited = _file_entry(inherited, origins.get((id(parent), base_key)), origins)
            if not isinstance(value, list) or not isinstance(inherited, list):
                raise doc.error(f"`{key}` appends a list to an inherited list", child, key, field=name)
            merged = yamlsrc.LineList([*inherited, *value])
            merged.line = getattr(value, "line", None)
            merged.lines = {}
            origins[(id(merged), None)] = origins.get((id(child), key))
            # Each item keeps its own file, so an inherited relative path still resolves from the parent.
            for i in range(len(inherited)):
                origins[(id(merged), i)] = origins.get((id(inherited), i)) or origins.get((id(inherited), None))
            key, value = base_key, merged
        elif not replace and isinstance(value, dict) and isinstance(parent.get(key), dict):
            value = _merge(parent[key], value, origins, doc, f"{name}.")
        if value is None:
            out.pop(key, None)
            continue
        out[key] = value
        written = written if written in child.lines else f"{key}+"
        out.lines[key] = child.lines.get(written)
        origins[(id(out), key)] = origins.get((id(child), written)) or origins.get((id(child), key))
    return out


def _file_entry(path, origin, origins):
    """[{file: PATH}], resolving PATH from the file that named it."""
    entry = yamlsrc.LineDict(file=path)
    origins[(id(entry), None)] = origins[(id(entry), "file")] = origin
    return [entry]


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
    firewall_input: list = field(default_factory=list)  # nftables input rules the spec opens (4.3.7's, added to)
    feeds: dict = field(default_factory=dict)   # feed kind -> [path or URL]
    scan_policy: str | None = None              # scan policy file (default: pipeline/supply/scan-policy.yaml)
    releases: dict = field(default_factory=dict)  # target -> its settings (aws: AwsTarget, vsphere: VsphereTarget)
    cadence_days: int = DEFAULT_CADENCE_DAYS    # a planned rebuild is due when the newest image is older

    @classmethod
    def load(cls, path, baseline=None):
        baseline = baseline or Baseline.load()
        doc = LayeredDoc.load(path)
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
        base = _base(doc, top.sub("base", required=True))
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
        feeds, scan_policy = _scan(doc, top.sub("scan"))
        allowed = _allowed(doc, top.sub("allowed"))
        firewall_input = _firewall(doc, top.sub("firewall"))
        customize = []
        for i, script in enumerate(top.get("customize", list, default=[])):
            full = os.path.normpath(os.path.join(doc.here(doc.data["customize"], i), str(script)))
            if not os.path.isfile(full):
                raise doc.error(f"script not found: {full}", doc.data["customize"], i, field=f"customize[{i}]")
            customize.append(full)
        releases = _releases(top, doc)
        rebuild = top.sub("rebuild")
        cadence_days = DEFAULT_CADENCE_DAYS
        if rebuild:
            cadence_days = rebuild.get("cadence_days", int, default=DEFAULT_CADENCE_DAYS,
                                       check=lambda v: None if 1 <= v <= 90 else "must be 1 to 90 days")
            rebuild.done()
        top.done()
        return cls(os.path.abspath(path), name, description, role, level, base, targets, agents,
                   time_servers, hardening_version, customize, allowed, firewall_input, feeds, scan_policy, releases,
                   cadence_days)


def _releases(top, doc):
    """`aws:` and `vsphere:`: where `golden release` puts the tested bytes, validated by the target's own
    module (so a wrong region or a public launch permission is refused before anything is built)."""
    from pipeline.release import aws, vsphere
    out = {}
    for key, module in (("aws", aws), ("vsphere", vsphere)):
        raw = top.get(key, dict)
        if raw is not None:
            out[key] = module.settings(raw, doc.origin(raw))
    return out


def _base(doc, f):
    b = BaseSpec(source=doc.origin(f.mapping), line=doc.line(f.mapping))
    image = f.get("image", str)
    channel = f.get("channel", str, check=lambda v: None if NAME_RE.match(v) else
                    "must be a channel name (lowercase letters, digits and hyphens)")
    if channel is not None:
        # The image published as NAME on CHANNEL in the store; pipeline/image/base.py resolves it.
        f.get("image", str, required=True, check=lambda v: None if NAME_RE.match(v) else
              "with channel, must be the name of a published image (e.g. linux), not a file")
        b.published = {"image": image, "channel": channel}
        b.line = doc.line(f.mapping, "channel")
    elif image is not None:
        b.image = os.path.normpath(os.path.join(doc.here(f.mapping, "image"), os.path.expanduser(image)))
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


def _allowed(doc, f):
    """allowed: {listening: [tcp/22, udp/323@127.0.0.1], services: [globs], packages: FILE or [glob | {file: FILE}]}."""
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
        out["packages"] = _package_file(doc, f.mapping, "packages", "allowed.packages")
    elif packages is not None:
        out["packages"] = [name for i, entry in enumerate(packages) for name in _package_entry(doc, packages, i)]
    f.done()
    return out


def _package_entry(doc, packages, i):
    """One entry of allowed.packages: a name or glob, or {file: PATH} (one name or glob per line), so a
    spec that extends another adds to its file with `packages+: [nginx]`."""
    entry = packages[i]
    if isinstance(entry, str) and entry.strip():
        return [entry.strip()]
    if isinstance(entry, dict) and set(entry) == {"file"} and isinstance(entry["file"], str) and entry["file"]:
        return _package_file(doc, entry, "file", f"allowed.packages[{i}].file")
    raise doc.error(f"must be a package name or glob, or {{file: PATH}}, not {entry!r}", packages, i,
                    field=f"allowed.packages[{i}]")


def _package_file(doc, container, key, where):
    path = os.path.normpath(os.path.join(doc.here(container, key), container[key]))
    if not os.path.isfile(path):
        raise doc.error(f"package allowlist not found: {path}", container, key, field=where)
    with open(path, encoding="utf-8") as fh:
        return [l.split("#", 1)[0].strip() for l in fh if l.split("#", 1)[0].strip()]


def _firewall(doc, f):
    """firewall: {input: [{port: tcp/80, from: 10.0.2.2}]}: inbound openings beyond the baseline's, as
    nftables input rules the hardening adds to 4.3.7's (`ip saddr 10.0.2.2 tcp dport 80 accept`)."""
    if f is None:
        return []
    rules = []
    for i, raw in enumerate(f.get("input", list, required=True)):
        g = yamlsrc.Fields(doc, raw, f"firewall.input[{i}]")
        port = g.get("port", str, required=True, check=lambda v: None if re.match(r"^(tcp|udp)/\d+$", v)
                     and 0 < int(v.split("/")[1]) < 65536 else "must be PROTO/PORT with PROTO tcp or udp (e.g. tcp/80)")
        source = g.get("from", str, check=_network_reason)
        g.done()
        proto, number = port.split("/")
        match = ""
        if source is not None:
            family = "ip" if ipaddress.ip_network(source, strict=False).version == 4 else "ip6"
            match = f"{family} saddr {source} "
        rules.append(f"{match}{proto} dport {number} accept")
    f.done()
    return rules


def _network_reason(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not an IP address or network (e.g. 10.0.2.2, 192.0.2.0/24)"
    return None


def _scan(doc, f):
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
            full = os.path.normpath(os.path.join(doc.here(raw.mapping[kind]), loc))
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
        policy = os.path.normpath(os.path.join(doc.here(f.mapping, "policy"), policy))
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
