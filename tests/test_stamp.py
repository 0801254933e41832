"""The image's stamp (/etc/golden/image.json): what the build writes into the provision directory, and
the findings the hygiene and acceptance tests both judge it by."""

import json
import subprocess

import pytest

from pipeline.checks.baseline import Baseline
from pipeline.errors import GoldenError
from pipeline.image import stamp
from pipeline.image.build import prepare_provision
from pipeline.image.spec import ImageSpec

from .conftest import ROOT

VERSION = "golden-web-2026.12.01+3"


@pytest.fixture(scope="module")
def web():
    return ImageSpec.load(f"{ROOT}/images/golden-web.yaml")


def test_the_provision_directory_carries_the_stamp_and_the_firewall_openings(tmp_path, web):
    rows = prepare_provision(web, Baseline.load(), str(tmp_path), VERSION)
    record = json.loads((tmp_path / stamp.PROVISION_NAME).read_text())
    assert {k: record[k] for k in ("version", "image", "role", "level", "spec")} == {
        "version": VERSION, "image": "web", "role": "web", "level": 1, "spec": "images/golden-web.yaml"}
    assert set(record) == set(stamp.FIELDS) and len(record["spec_sha256"]) == 64
    assert record["built_at"].endswith("+00:00") and record["commit"] != "unknown"
    assert stamp.findings(json.dumps(record), VERSION, web) == []
    (inputs,) = [r[3] for r in rows if r[:3] == ("4.3.7", "params", "input")]
    assert inputs.startswith("ct state invalid drop") and inputs.endswith(
        "ip saddr 10.0.2.2 tcp dport 80 accept ip saddr 10.0.2.2 tcp dport 9100 accept")
    assert not [r for r in rows if r[0] == "2.1.18"], "the web role keeps nginx: 2.1.18 is not adopted for it"


def test_the_commit_of_a_checkout_and_of_a_tree_that_is_none(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert stamp.commit(str(repo)) == (head, False)
    (repo / "f").write_text("2\n")
    assert stamp.commit(str(repo)) == (head, True)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert stamp.commit(str(plain)) == ("unknown", None)


def test_a_spec_outside_the_repository_is_named_by_its_absolute_path(tmp_path, web):
    spec = tmp_path / "variant.yaml"
    spec.write_text(f"extends: {ROOT}/images/golden-web.yaml\ncustomize+: [{ROOT}/tests/data/web-limit-req.sh]\n")
    record = stamp.record(ImageSpec.load(str(spec)), VERSION)
    assert record["spec"] == str(spec) and record["spec_sha256"] != stamp.record(web, VERSION)["spec_sha256"]


def _good(web):
    return dict(stamp.record(web, VERSION))


@pytest.mark.parametrize("change,modes,finding", [
    (None, None, "no /etc/golden/image.json"),
    ("{not json", None, "is not JSON"),
    ("[]", None, "is not a JSON object"),
    ({"version": "golden-web-2026.12.01+2"}, None, "says version 'golden-web-2026.12.01+2', the image is "
                                                   "'golden-web-2026.12.01+3'"),
    ({"role": "general-purpose"}, None, "says role 'general-purpose', the image is 'web'"),
    ({"image": "linux"}, None, "says image 'linux'"),
    ({"level": 2}, None, "says level 2"),
    ({"commit": stamp.FIELDS}, None, None),
    ("drop built_at", None, "has no built_at"),
    ({}, {stamp.PATH: (0o666, "root:root")}, "/etc/golden/image.json is 0666 root:root, expected 0644 root:root"),
    ({}, {"/etc/golden": (0o755, "1000:root")}, "/etc/golden is 0755 1000:root, expected 0755 root:root"),
])
def test_each_wrong_stamp_is_a_finding(web, change, modes, finding):
    record = _good(web)
    if change == "drop built_at":
        del record["built_at"]
        text = json.dumps(record)
    elif isinstance(change, dict):
        text = json.dumps(record | change)
    else:
        text = change
    found = stamp.findings(text, VERSION, web, modes)
    if finding is None:
        assert found == []          # what the stamp records beyond the image's identity is not judged
    else:
        assert len(found) == 1 and finding in found[0], found


def test_openings_with_nowhere_to_go_are_refused(tmp_path, web):
    """A role whose plan has no 4.3.7 input rules (an exception skips it) cannot take the spec's openings."""
    with pytest.raises(GoldenError, match="no 4.3.7 input rules") as err:
        prepare_provision(web, Baseline.load(), str(tmp_path), VERSION, skipped={"4.3.7": "EXC-1"})
    assert err.value.field == "firewall.input" and err.value.file.endswith("golden-web.yaml")
