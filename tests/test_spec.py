import pytest

from pipeline.errors import GoldenError
from pipeline.image.spec import ImageSpec

GOOD = """\
name: web
role: bastion
base:
  suite: bookworm
agents:
  - name: node-exporter
    packages: [prometheus-node-exporter]
    service: prometheus-node-exporter.service
    probe: {http: "http://127.0.0.1:9100/metrics", expect: node_exporter_build_info}
"""


def load(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return ImageSpec.load(str(path))


def test_default_spec_loads():
    spec = ImageSpec.load("images/golden-linux.yaml")
    assert (spec.name, spec.role, spec.level, spec.targets) == ("linux", "general-purpose", 1, ["qemu"])
    assert spec.base.image is None and spec.base.suite == "bookworm"


def test_role_picks_the_level(tmp_path):
    spec = load(tmp_path, GOOD)
    assert spec.level == 2 and spec.agents[0].service == "prometheus-node-exporter.service"


def test_existing_image_base(tmp_path):
    spec = load(tmp_path, "name: x\nrole: admin\nbase:\n  image: vendor.qcow2\n  sha256: " + "a" * 64 + "\n")
    assert spec.base.image == str(tmp_path / "vendor.qcow2") and spec.base.sha256 == "a" * 64


@pytest.mark.parametrize("text,line,field,reason", [
    (GOOD.replace("name: web", "name: Web_1"), 1, "name", "lowercase letters"),
    (GOOD.replace("role: bastion", "role: database"), 2, "role", "unknown role 'database'"),
    (GOOD.replace("role: bastion\n", ""), None, "role", "is required"),
    (GOOD.replace("suite: bookworm", "suite: [bookworm]"), 4, "base.suite", "must be a string"),
    (GOOD + "level: 3\n", 10, "level", "must be 1 or 2"),
    (GOOD + "targets: [vmware]\n", 10, "targets", "unknown target 'vmware'"),
    (GOOD + "colour: blue\n", 10, "colour", "unknown field"),
    (GOOD.replace("    probe:", "    probes:"), 9, "agents[0].probes", "unknown field"),
    ("name: x\nrole: admin\nbase:\n  image: v.qcow2\n  sha256: abc\n", 5, "base.sha256", "64 lowercase hex"),
    ("name: x\nrole: admin\nbase:\n  image: v.qcow2\n", None, "base.sha256", "is required"),
    (GOOD + "customize: [missing.sh]\n", 10, "customize[0]", "script not found"),
    (GOOD + "hardening: {version: latest}\n", 10, "hardening.version", "must be `current`"),
])
def test_bad_specs_name_file_line_field_and_reason(tmp_path, text, line, field, reason):
    with pytest.raises(GoldenError) as err:
        load(tmp_path, text)
    e = err.value
    assert e.file.endswith("spec.yaml") and e.field == field and reason in e.reason, str(e)
    if line:
        assert e.line == line, str(e)


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(GoldenError) as err:
        load(tmp_path, "name: x\nrole: [admin\nbase: {}\n")
    assert "malformed YAML" in str(err.value) and err.value.line == 3


def test_duplicate_keys_are_an_error(tmp_path):
    with pytest.raises(GoldenError, match="duplicate key 'name'"):
        load(tmp_path, "name: x\nname: y\n")


def test_missing_file(tmp_path):
    with pytest.raises(GoldenError, match="file not found"):
        ImageSpec.load(str(tmp_path / "nope.yaml"))
