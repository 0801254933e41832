"""`golden sbom`: a CycloneDX 1.6 SBOM of a candidate, read from the image's own dpkg database.

    doc = build_sbom("runs/<v>/<v>.qcow2", name="linux", version="<v>", sha256=digest)
    write_sbom(run)                     # runs/<version>/sbom.cdx.json, schema-validated

The artifact is mounted read-only (`artifact.mounted_root`); nothing runs inside it and nothing is
fetched. Every package dpkg has on disk (any status but `config-files` and `not-installed`) is a
component with a purl `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12`. The purl spec's deb
type keeps the epoch inside the version (`pkg:deb/debian/attr@1:2.4.47-2%2Bb1`): it has no epoch
qualifier, unlike rpm. Each binary's source package (dpkg's `Source: name (version)`, or the binary's
own name and version when absent) is a component too, with the purl qualifier `arch=source` that the
spec reserves for source packages.

Binary → source relation: an edge in `dependencies` (binary dependsOn its source). CycloneDX has no
"built from" relation; `dependencies` is the graph every consumer loads (Dependency-Track,
cyclonedx-cli, sbom-utility), while `pedigree.ancestors` embeds a copy of the ancestor in each
binary and is carried as opaque data by those tools. The graph holds no binary → binary runtime
edges, so an edge into an `arch=source` component can only mean "built from". The image itself is
`metadata.component` and depends on every binary.
"""

import datetime as dt
import json
import os
import uuid

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from debian.deb822 import Packages
from packageurl import PackageURL

from pipeline.errors import GoldenError
from pipeline.util import read_json, write_json_atomic
from pipeline.vm.artifact import mounted_root

STATUS = "var/lib/dpkg/status"
SBOM_FILE = "sbom.cdx.json"
# dpkg statuses whose files are not on disk: such a package is not in the image.
_ABSENT = {"not-installed", "config-files"}


def build_sbom(image_path, *, name, version, sha256, now=None):
    """The SBOM of a qcow2 (or raw) image, as a CycloneDX 1.6 JSON dict."""
    with mounted_root(image_path) as root:
        return sbom_from_root(root, name=name, version=version, sha256=sha256, now=now)


def write_sbom(run, *, name=None, now=None):
    """Build, validate and write runs/<version>/sbom.cdx.json for the run's artifact."""
    artifact = read_json(run.path("artifact.json"), "artifact record")
    doc = build_sbom(run.artifact, name=name or run.meta.get("image") or run.version, version=run.version,
                     sha256=artifact["sha256"], now=now)
    validate_sbom(doc, file=run.path(SBOM_FILE))
    write_json_atomic(run.path(SBOM_FILE), doc)
    return run.path(SBOM_FILE)


def installed_packages(root):
    """dpkg's binary packages on disk under `root`: dicts of name, version, arch, source, source_version."""
    path = os.path.join(root, STATUS)
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise GoldenError("no dpkg database in the image (is it a Debian system?)", file=STATUS) from None
    packages = []
    with fh:
        for para in Packages.iter_paragraphs(fh, use_apt_pkg=False):
            if "Package" not in para:
                continue
            status = para.get("Status", "").split()
            if len(status) != 3:
                raise GoldenError(f"package {para['Package']}: malformed Status {para.get('Status')!r}",
                                  file=STATUS, field="Status")
            if status[2] in _ABSENT:
                continue
            if not para.get("Version"):
                raise GoldenError(f"package {para['Package']} has no Version", file=STATUS, field="Version")
            packages.append({"name": para["Package"], "version": para["Version"],
                             "arch": para.get("Architecture", "all"), "status": status[2],
                             "source": para.source, "source_version": str(para.source_version)})
    return packages


def os_release(root):
    """ID, VERSION_ID and VERSION_CODENAME of the image's os-release (Debian 12 if it has none)."""
    fields = {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}
    for rel in ("etc/os-release", "usr/lib/os-release"):
        path = os.path.join(root, rel)
        if os.path.isfile(path) or os.path.islink(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue        # an absolute symlink points outside the mounted root: try the next
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep and key in fields:
                    fields[key] = value.strip().strip('"\'')
            break
    return fields


def _purl(vendor, name, version, arch, distro):
    return PackageURL(type="deb", namespace=vendor, name=name.lower(), version=version,
                      qualifiers={"arch": arch, "distro": distro})


def sbom_from_root(root, *, name, version, sha256, now=None):
    """The SBOM of a root filesystem directory (the inner function `build_sbom` uses)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rel = os_release(root)
    vendor, distro = rel["ID"].lower(), f"{rel['ID'].lower()}-{rel['VERSION_ID']}"
    packages = installed_packages(root)
    if not packages:
        raise GoldenError("the dpkg database lists no installed package", file=STATUS)
    image = Component(type=ComponentType.OPERATING_SYSTEM, name=name, version=version,
                      bom_ref=f"image:{name}@{version}",
                      hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)],
                      properties=[Property(name="golden:distro", value=distro),
                                  Property(name="golden:codename", value=rel["VERSION_CODENAME"])])
    # The serial number follows from the image digest, so rebuilding the SBOM of one image gives one id.
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"golden:{name}:{version}:{sha256}"),
              metadata=BomMetaData(component=image, timestamp=now))
    sources, binaries = {}, []
    for pkg in sorted(packages, key=lambda p: (p["name"], p["arch"])):
        key = (pkg["source"], pkg["source_version"])
        if key not in sources:
            purl = _purl(vendor, pkg["source"], pkg["source_version"], "source", distro)
            sources[key] = Component(name=pkg["source"], version=pkg["source_version"], purl=purl,
                                     bom_ref=purl.to_string(),
                                     properties=[Property(name="golden:package-kind", value="source")])
            bom.components.add(sources[key])
        purl = _purl(vendor, pkg["name"], pkg["version"], pkg["arch"], distro)
        props = [Property(name="golden:package-kind", value="binary")]
        if pkg["status"] != "installed":
            props.append(Property(name="golden:dpkg-status", value=pkg["status"]))
        binary = Component(name=pkg["name"], version=pkg["version"], purl=purl, bom_ref=purl.to_string(),
                           properties=props)
        bom.components.add(binary)
        bom.register_dependency(binary, [sources[key]])
        binaries.append(binary)
    bom.register_dependency(image, binaries)
    return json.loads(JsonV1Dot6(bom).output_as_string())


def validate_sbom(doc, file=SBOM_FILE):
    """Raise GoldenError when the CycloneDX 1.6 JSON schema rejects `doc`."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    if error is not None:
        data = error.data
        where = "/".join(str(p) for p in getattr(data, "absolute_path", [])) or "(document)"
        raise GoldenError(f"not a valid CycloneDX 1.6 document: {getattr(data, 'message', data)}",
                          file=file, field=where)
    return doc


def packages_in(doc):
    """(binaries, sources) of an SBOM dict: lists of {name, version, purl, bom-ref}; binaries carry `source`."""
    # bom-ref is optional in CycloneDX; a component without one takes part in no dependency
    comps = {c.get("bom-ref") or f"#component-{i}": c for i, c in enumerate(doc.get("components", []))}
    source_of = {}
    for dep in doc.get("dependencies", []):
        for ref in dep.get("dependsOn", []):
            if _kind(comps.get(ref)) == "source" and _kind(comps.get(dep["ref"])) == "binary":
                source_of[dep["ref"]] = ref
    binaries, sources = [], []
    for ref, comp in comps.items():
        row = {"name": comp["name"], "version": comp.get("version"), "purl": comp.get("purl"), "bom-ref": ref}
        if _kind(comp) == "source":
            sources.append(row)
        elif _kind(comp) == "binary":
            src = comps.get(source_of.get(ref))
            row["source"] = {"name": src["name"], "version": src.get("version"), "bom-ref": src["bom-ref"]} \
                if src else None
            binaries.append(row)
    return binaries, sources


def _kind(comp):
    for prop in (comp or {}).get("properties", []):
        if prop.get("name") == "golden:package-kind":
            return prop.get("value")
    return None
