"""One release from end to end on real emulators, no VM boot: a signed, published version promoted
candidate -> canary -> stable, released to moto (a private, tagged AMI in two regions, an SSM parameter
per channel) and to the vCenter simulator (a template with its attributes), then revoked: verify fails
naming the reason, the AMIs have no launch permission left, and no channel resolves to it."""

import json

import boto3
import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.release import vsphere
from pipeline.store import channels
from pipeline.store.store import Store

from .emulators import moto_server, point_boto3_at, small_qcow2, vcsim
from .runfixtures import gated_and_signed, make_run

VERSION = "golden-linux-2026.12.01+1"
REGIONS = ["eu-west-1", "eu-central-1"]
ACCOUNT = "111122223333"
CHANNELS = ["candidate", "canary", "stable"]


@pytest.fixture
def emulators(monkeypatch):
    with moto_server() as moto, vcsim() as sim:
        point_boto3_at(monkeypatch, moto, REGIONS[0], reset=False)
        monkeypatch.setenv("GOLDEN_VSPHERE_PASSWORD", sim.password)
        monkeypatch.setenv("GOLDEN_ACTOR", "release-bot")
        yield moto, sim


def published(tmp_path):
    """A store holding VERSION as `golden publish --run` leaves it: gated, signed, its key trusted, on candidate."""
    disk = small_qcow2(str(tmp_path / "disk.qcow2"))
    run = make_run(tmp_path / "runs", version=VERSION, payload=open(disk, "rb").read())
    record = json.load(open(run.path("artifact.json")))
    json.dump({**record, "hardening_version": "1.1.1"}, open(run.path("artifact.json"), "w"))
    store = Store(str(tmp_path / "store"))
    store.publish(run, log=lambda m: None, public_key=gated_and_signed(run, tmp_path))
    return store


def test_promoted_released_and_revoked(tmp_path, emulators, capsys):
    moto, sim = emulators
    store = published(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""name: linux
role: general-purpose
base: {{suite: bookworm}}
aws:
  regions: [{', '.join(REGIONS)}]
  launch_permissions: {{accounts: ["{ACCOUNT}"]}}
vsphere: {{datacenter: DC0, cluster: DC0_C0, datastore: LocalDS_0, folder: golden}}
""")
    common = ["--store", store.root, "--spec", str(spec)]
    assert channels.resolve(store, "candidate") == VERSION
    assert main(["release", "aws", VERSION, *common]) == 0
    amis = dict(line.split("\t") for line in capsys.readouterr().out.split("\n") if line)
    for channel in CHANNELS[1:]:
        # The promotion alone moves the channel's SSM parameter (the AWS target follows the store).
        assert main(["promote", VERSION, "--channel", channel, "--reason", "bake clean", "--store", store.root]) == 0
        assert channels.resolve(store, channel) == VERSION
    assert main(["release", "vsphere", VERSION, *common, "--url", sim.url, "--user", sim.user, "--insecure"]) == 0
    capsys.readouterr()

    entry = store.entry(VERSION)
    assert [e["action"] for e in store.events()] == ["publish", "release", "promote", "promote"]
    assert set(amis) == set(REGIONS) and entry["targets"]["aws"]["amis"] == amis
    for region, ami in amis.items():
        ec2, ssm = (boto3.session.Session().client(s, region_name=region) for s in ("ec2", "ssm"))
        (image,) = ec2.describe_images(Owners=["self"])["Images"]
        assert image["ImageId"] == ami and not image.get("Public")
        tags = {t["Key"]: t["Value"] for t in image["Tags"]}
        assert tags["golden:version"] == VERSION and tags["golden:sha256"] == entry["sha256"]
        assert ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == [
            {"UserId": ACCOUNT}]
        for channel in CHANNELS:
            assert ssm.get_parameter(Name=f"/golden/linux/{channel}")["Parameter"]["Value"] == ami
    connection = vsphere.Connection(sim.url, sim.user, sim.password, insecure=True)
    target = vsphere.settings_from_spec(str(spec))
    labels = vsphere.attributes(connection, target, VERSION)
    assert labels["template"] is True and labels["golden:sha256"] == entry["sha256"]
    assert labels["golden:gate-digest"] == tags["golden:gate-digest"]

    assert main(["revoke", VERSION, "--reason", "CVE-2026-0001 exploited", "--store", store.root]) == 0
    assert main(["verify", VERSION, "--store", store.root]) == 1
    assert "CVE-2026-0001 exploited" in capsys.readouterr().err
    for channel in CHANNELS:
        with pytest.raises(GoldenError, match="CVE-2026-0001 exploited"):
            channels.resolve(store, channel)
    for region, ami in amis.items():
        ec2, ssm = (boto3.session.Session().client(s, region_name=region) for s in ("ec2", "ssm"))
        assert ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == []
        assert ssm.get_parameters_by_path(Path="/golden/linux")["Parameters"] == []
    assert main(["release", "aws", VERSION, *common]) == 2
    assert "revoked" in capsys.readouterr().err
