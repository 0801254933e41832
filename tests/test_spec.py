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
    (GOOD + "allowed: {packages: [nginx, 7]}\n", 10, "allowed.packages[1]",
     "must be a package name or glob, or {file: PATH}, not 7"),
    (GOOD + "allowed: {packages: [{path: x.packages}]}\n", 10, "allowed.packages[0]", "must be a package name or glob"),
    (GOOD + "allowed: {packages: [{file: missing.packages}]}\n", 10, "allowed.packages[0].file",
     "package allowlist not found"),
    (GOOD + "allowed: {packages: missing.packages}\n", 10, "allowed.packages", "package allowlist not found"),
    (GOOD + "firewall: {input: [{port: 80}]}\n", 10, "firewall.input[0].port", "must be a string"),
    (GOOD + "firewall: {input: [{port: icmp/8}]}\n", 10, "firewall.input[0].port", "must be PROTO/PORT"),
    (GOOD + "firewall: {input: [{port: tcp/70000}]}\n", 10, "firewall.input[0].port", "must be PROTO/PORT"),
    (GOOD + "firewall: {input: [{port: tcp/80, from: the-lb}]}\n", 10, "firewall.input[0].from",
     "'the-lb' is not an IP address"),
    (GOOD + "firewall: {input: [{port: tcp/80, to: 10.0.2.15}]}\n", 10, "firewall.input[0].to", "unknown field"),
    (GOOD + "firewall: {output: []}\n", 10, "firewall.input", "is required"),
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


PARENT = GOOD + "time_servers: [10.0.2.2]\ncustomize: [motd.sh]\n"


def layered(tmp_path, child, parent=PARENT):
    (tmp_path / "base").mkdir(exist_ok=True)
    (tmp_path / "base" / "motd.sh").write_text("echo hi\n")
    (tmp_path / "base" / "parent.yaml").write_text(parent)
    (tmp_path / "child.yaml").write_text(child)
    return ImageSpec.load(str(tmp_path / "child.yaml"))


def test_extends_merges_mappings_replaces_lists_and_resolves_paths_from_their_own_file(tmp_path):
    spec = layered(tmp_path, "extends: base/parent.yaml\nname: jump\nbase: {packages: [aide]}\n"
                             "time_servers: [ntp.example]\n")
    assert (spec.name, spec.role, spec.level, spec.base.suite) == ("jump", "bastion", 2, "bookworm")
    assert spec.base.packages == ["aide"] and spec.time_servers == ["ntp.example"]
    assert spec.customize == [str(tmp_path / "base" / "motd.sh")]     # relative to parent.yaml
    assert spec.agents[0].name == "node-exporter"


def test_extends_appends_with_key_plus_and_drops_with_null(tmp_path):
    spec = layered(tmp_path, "extends: base/parent.yaml\ntime_servers+: [ntp.example]\ncustomize: null\n")
    assert spec.time_servers == ["10.0.2.2", "ntp.example"] and spec.customize == []


def test_extends_replaces_a_whole_mapping_with_key_bang(tmp_path):
    """A variant built on a published image gives its base in another form: `base!` replaces the
    inherited base instead of merging into it (merged, the parent's suite would sit beside the image)."""
    (tmp_path / "disk.qcow2").write_bytes(b"qcow2")
    spec = layered(tmp_path, "extends: base/parent.yaml\nbase!: {image: disk.qcow2, sha256: " + "a" * 64 + "}\n")
    assert spec.base.image == str(tmp_path / "disk.qcow2") and spec.base.packages == [] and spec.base.line == 2
    with pytest.raises(GoldenError, match="base.suite: unknown field"):
        layered(tmp_path, "extends: base/parent.yaml\nbase: {image: disk.qcow2, sha256: " + "a" * 64 + "}\n")


@pytest.mark.parametrize("child,parent,file,line,field,reason", [
    ("extends: base/parent.yaml\nlevel: 3\n", PARENT, "child.yaml", 2, "level", "must be 1 or 2"),
    ("extends: base/parent.yaml\nname: jump\n", PARENT.replace("role: bastion", "role: database"),
     "parent.yaml", 2, "role", "unknown role 'database'"),
    ("extends: base/parent.yaml\nbase: {suite: [x]}\n", PARENT, "child.yaml", 2, "base.suite", "must be a string"),
    ("extends: base/parent.yaml\nagents+: {name: x}\n", PARENT, "child.yaml", 2, "agents+", "appends a list"),
    ("extends: base/missing.yaml\n", PARENT, "child.yaml", 1, "extends", "extended spec not found"),
    ("extends: base/parent.yaml\n", "extends: ../child.yaml\n" + PARENT, "parent.yaml", 1, "extends",
     "extends makes a cycle: child.yaml -> parent.yaml -> child.yaml"),
])
def test_extends_errors_name_the_file_that_holds_the_bad_value(tmp_path, child, parent, file, line, field, reason):
    with pytest.raises(GoldenError) as err:
        layered(tmp_path, child, parent)
    e = err.value
    assert (e.file.endswith(file), e.line, e.field) == (True, line, field) and reason in e.reason, str(e)


def test_a_spec_extending_itself_is_a_cycle(tmp_path):
    with pytest.raises(GoldenError, match="cycle: spec.yaml -> spec.yaml"):
        load(tmp_path, "extends: spec.yaml\n" + GOOD)


def test_bastion_is_the_default_image_at_level_2():
    linux, bastion = ImageSpec.load("images/golden-linux.yaml"), ImageSpec.load("images/golden-bastion.yaml")
    assert (bastion.name, bastion.role, bastion.level) == ("bastion", "bastion", 2)
    same = ("base", "targets", "agents", "time_servers", "hardening_version", "customize", "allowed", "feeds")
    assert all(getattr(linux, f) == getattr(bastion, f) for f in same)
    assert "agents" not in open("images/golden-bastion.yaml").read()      # its differences only


def test_published_base_names_an_image_and_a_channel(tmp_path):
    spec = load(tmp_path, "name: x\nrole: admin\nbase: {image: linux, channel: stable}\n")
    assert spec.base.published == {"image": "linux", "channel": "stable"} and spec.base.image is None


@pytest.mark.parametrize("base,field,reason", [
    ("{image: ./linux.qcow2, channel: stable}", "base.image", "name of a published image"),
    ("{image: linux, channel: Stable}", "base.channel", "must be a channel name"),
    ("{channel: stable}", "base.image", "is required"),
    ("{image: linux, channel: stable, sha256: abc}", "base.sha256", "unknown field"),
])
def test_bad_published_base(tmp_path, base, field, reason):
    with pytest.raises(GoldenError) as err:
        load(tmp_path, f"name: x\nrole: admin\nbase: {base}\n")
    assert err.value.field == field and reason in err.value.reason and err.value.line == 3, str(err.value)


def test_an_extending_spec_adds_to_a_package_allowlist_kept_in_a_file(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "parent.packages").write_text("bash\nlib*-dev  # headers\n\n")
    (tmp_path / "base" / "parent.yaml").write_text(GOOD + "allowed: {packages: parent.packages}\n")
    (tmp_path / "child.yaml").write_text("extends: base/parent.yaml\nallowed: {packages+: [nginx, \"nginx-*\"]}\n")
    assert ImageSpec.load(str(tmp_path / "base" / "parent.yaml")).allowed["packages"] == ["bash", "lib*-dev"]
    child = ImageSpec.load(str(tmp_path / "child.yaml"))
    assert child.allowed["packages"] == ["bash", "lib*-dev", "nginx", "nginx-*"]   # the file from parent.yaml's folder
    listed = load(tmp_path, GOOD + "allowed: {packages: [{file: base/parent.packages}, curl]}\n")
    assert listed.allowed["packages"] == ["bash", "lib*-dev", "curl"]


def test_firewall_openings_become_nftables_input_rules(tmp_path):
    spec = load(tmp_path, GOOD + "firewall:\n  input: [{port: tcp/80, from: 10.0.2.2}, {port: udp/5353},"
                                 " {port: tcp/443, from: \"2001:db8::/32\"}]\n")
    assert spec.firewall_input == ["ip saddr 10.0.2.2 tcp dport 80 accept", "udp dport 5353 accept",
                                   "ip6 saddr 2001:db8::/32 tcp dport 443 accept"]
    assert load(tmp_path, GOOD).firewall_input == []


def test_the_web_image_is_the_published_default_plus_nginx():
    web, linux = ImageSpec.load("images/golden-web.yaml"), ImageSpec.load("images/golden-linux.yaml")
    assert (web.name, web.role, web.level) == ("web", "web", 1)
    assert web.base.published == {"image": "linux", "channel": "candidate"} and web.base.packages == []
    assert web.allowed["packages"] == [*linux.allowed["packages"], "nginx", "nginx-common"]
    assert "tcp/80" in web.allowed["listening"] and "nginx.service" in web.allowed["services"]
    (nginx,) = [a for a in web.agents if a.name == "nginx"]
    assert nginx.service == "nginx.service" and nginx.probe["http"] == "http://127.0.0.1/"
    assert "ip saddr 10.0.2.2 tcp dport 80 accept" in web.firewall_input


def test_appended_scripts_resolve_each_from_the_file_that_lists_it(tmp_path):
    """`customize+` after an inherited script: the parent's still resolves from the parent's folder."""
    (tmp_path / "own.sh").write_text("echo own\n")
    spec = layered(tmp_path, "extends: base/parent.yaml\ncustomize+: [own.sh]\n")
    assert spec.customize == [str(tmp_path / "base" / "motd.sh"), str(tmp_path / "own.sh")]
