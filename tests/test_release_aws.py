"""`golden release aws` against moto in server mode over HTTP: the snapshot holds the tested bytes,
the AMI is in every region, private, tagged, and named by its channel's SSM parameter; bad input
leaves nothing behind."""

import base64
import contextlib
import hashlib
import json
import os
import re
import subprocess

import boto3
import botocore.exceptions
import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.release import aws
from pipeline.release import tested as tested_mod
from pipeline.store.revocation import revoke
from pipeline.util import sha256_file

from .emulators import moto_server, point_boto3_at, published_store, small_qcow2

VERSION = "golden-linux-2026.12.01+1"
ACCOUNT = "111122223333"
ORG = "arn:aws:organizations::111122223333:organization/o-abcdefghij"
REGIONS = ["eu-west-1", "eu-central-1"]


def publish_small(tmp_path, version=VERSION):
    return published_store(str(tmp_path / "store"), version, small_qcow2(str(tmp_path / "disk.qcow2")))


def write_spec(tmp_path, aws_section):
    path = tmp_path / "spec.yaml"
    path.write_text("name: linux\nrole: general-purpose\nbase: {suite: bookworm}\n" + aws_section)
    return str(path)


GOOD_AWS = f"""aws:
  regions: [{', '.join(REGIONS)}]
  launch_permissions:
    accounts: ["{ACCOUNT}"]
    organizations: ["{ORG}"]
"""


@pytest.fixture(scope="module")
def moto():
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(moto, monkeypatch):
    """boto3's own environment pointed at the emulator, its state reset for each test."""
    point_boto3_at(monkeypatch, moto, REGIONS[0])
    return moto


def client(service, region):
    return boto3.session.Session().client(service, region_name=region)     # credentials read from env now


def golden_images(region):
    return client("ec2", region).describe_images(Owners=["self"])["Images"]


def golden_snapshots(region):
    return client("ec2", region).describe_snapshots(OwnerIds=["self"])["Snapshots"]


def test_publish_uploads_the_tested_bytes_and_registers_a_private_tagged_ami_in_two_regions(tmp_path, aws_env, capsys):
    store = publish_small(tmp_path)
    spec = write_spec(tmp_path, GOOD_AWS)
    assert main(["release", "aws", VERSION, "--spec", spec, "--store", store.root, "--channel", "stable"]) == 0
    out = dict(line.split("\t") for line in capsys.readouterr().out.split("\n") if line)
    assert set(out) == set(REGIONS)
    entry = store.entry(VERSION)
    gate_digest = sha256_file(os.path.join(store.root, entry["gate"]))

    raw = tested_mod.convert(os.path.join(store.root, entry["file"]), str(tmp_path / "expected.raw"), "raw")
    with open(raw, "rb") as fh:
        expected = fh.read()
    ebs = client("ebs", REGIONS[0])
    (snapshot,) = [s for s in golden_snapshots(REGIONS[0])
                   if {"Key": "golden:version", "Value": VERSION} in s.get("Tags", []) and s["VolumeSize"] == 1]
    blocks = ebs.list_snapshot_blocks(SnapshotId=snapshot["SnapshotId"])["Blocks"]
    got = bytearray(len(expected))
    for b in blocks:
        data = ebs.get_snapshot_block(SnapshotId=snapshot["SnapshotId"], BlockIndex=b["BlockIndex"],
                                      BlockToken=b["BlockToken"])["BlockData"].read()
        got[b["BlockIndex"] * aws.BLOCK:(b["BlockIndex"] + 1) * aws.BLOCK] = data
    assert bytes(got) == expected
    assert sorted(b["BlockIndex"] for b in blocks) == [0, 1, 5]    # zero blocks 2-4 are not sent

    for region in REGIONS:
        (image,) = golden_images(region)
        assert image["ImageId"] == out[region]
        assert image["Name"] == "golden-linux-2026.12.01-build1"
        tags = {t["Key"]: t["Value"] for t in image["Tags"]}
        assert tags["golden:sha256"] == entry["sha256"]
        assert tags["golden:gate-digest"] == gate_digest
        assert tags["golden:hardening-version"] == "1.1.1" and tags["golden:commit"] == "test"
        granted = client("ec2", region).describe_image_attribute(
            ImageId=image["ImageId"], Attribute="launchPermission")["LaunchPermissions"]
        assert sorted(map(json.dumps, granted)) == sorted(map(json.dumps, [{"UserId": ACCOUNT},
                                                                           {"OrganizationArn": ORG}]))
        for sid in aws._snapshots(aws.Aws(), region, VERSION, image):
            snap = client("ec2", region).describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
            assert {"Key": "golden:sha256", "Value": entry["sha256"]} in snap["Tags"]
        param = client("ssm", region).get_parameter(Name="/golden/linux/stable")["Parameter"]
        assert param["Value"] == image["ImageId"]


def test_golden_publish_target_aws_is_golden_release_aws(tmp_path, aws_env, capsys):
    store = publish_small(tmp_path)
    spec = write_spec(tmp_path, GOOD_AWS)
    assert main(["publish", "--store", store.root, "--target", "aws", VERSION, "--spec", spec, "--channel",
                 "canary"]) == 0
    amis = dict(line.split("\t") for line in capsys.readouterr().out.split("\n") if line)
    assert set(amis) == set(REGIONS)
    for region, ami in amis.items():
        assert [i["ImageId"] for i in golden_images(region)] == [ami]
        assert client("ssm", region).get_parameter(Name="/golden/linux/canary")["Parameter"]["Value"] == ami
    assert store.entry(VERSION)["targets"]["aws"] == {**store.entry(VERSION)["targets"]["aws"], "amis": amis,
                                                       "channel": "canary"}
    assert main(["publish", "--store", store.root, "--run", "somerun", "--target", "aws", VERSION]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["publish", "--store", store.root, VERSION]) == 2
    assert "only with --target aws|vsphere" in capsys.readouterr().err


def test_publishing_again_only_moves_the_channel(tmp_path, aws_env):
    store = publish_small(tmp_path)
    target = aws.settings(aws.yamlsrc.parse(GOOD_AWS).data["aws"], "spec.yaml")
    tested = tested_mod.load(store, VERSION)
    first = aws.publish(tested, target, channel="candidate", log=lambda m: None)
    again = aws.publish(tested, target, channel="stable", log=lambda m: None)
    assert first == again
    assert all(len(golden_images(r)) == 1 for r in REGIONS)
    assert client("ssm", REGIONS[1]).get_parameter(Name="/golden/linux/stable")["Parameter"]["Value"] == first[REGIONS[1]]


@pytest.mark.parametrize("section, field, reason", [
    ("aws:\n  regions: [eu-west-1, mars-north-1]\n", "aws.regions", "unknown region 'mars-north-1'"),
    ("aws:\n  regions: [eu-west-1]\n  launch_permissions:\n    accounts: [all]\n",
     "aws.launch_permissions.accounts[0]", "would make the AMI public"),
    ("aws:\n  regions: [eu-west-1]\n  launch_permissions:\n    group: all\n",
     "aws.launch_permissions.group", "never public"),
    ("aws:\n  regions: [eu-west-1]\n  launch_permissions:\n    accounts: ['12345']\n",
     "aws.launch_permissions.accounts[0]", "not a valid account"),
])
def test_bad_spec_is_exit_2_naming_file_line_field_and_nothing_is_uploaded(tmp_path, aws_env, capsys, section,
                                                                           field, reason):
    store = publish_small(tmp_path)
    spec = write_spec(tmp_path, section)
    assert main(["release", "aws", VERSION, "--spec", spec, "--store", store.root]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:" in err and field in err and reason in err
    for region in ("eu-west-1", "eu-central-1"):
        assert golden_images(region) == [] and golden_snapshots(region) == []


def test_a_tampered_image_is_refused_before_upload(tmp_path, aws_env, capsys):
    store = publish_small(tmp_path)
    path = os.path.join(store.root, store.entry(VERSION)["file"])
    os.chmod(path, 0o644)
    subprocess.run(["qemu-io", "-c", "write -P 0x01 1M 4k", path], check=True, capture_output=True)
    assert main(["release", "aws", VERSION, "--spec", write_spec(tmp_path, GOOD_AWS), "--store", store.root]) == 2
    assert "changed since it was tested" in capsys.readouterr().err
    assert golden_snapshots(REGIONS[0]) == []


def test_a_revoked_version_is_refused(tmp_path, aws_env, capsys):
    store = publish_small(tmp_path)
    revoke(store, VERSION, "CVE-2026-0001 in the kernel")
    assert main(["release", "aws", VERSION, "--spec", write_spec(tmp_path, GOOD_AWS), "--store", store.root]) == 2
    assert "revoked" in capsys.readouterr().err
    assert golden_snapshots(REGIONS[0]) == [] and golden_images(REGIONS[0]) == []


IAM_SETUP_CALLS = 3          # create_user, put_user_policy, create_access_key: made before IAM is enforced


@contextlib.contextmanager
def publisher(monkeypatch, deny=None, unchecked=0):
    """A moto enforcing IAM, and boto3's environment set to a user allowed everything but `deny`; the first
    `unchecked` calls after the IAM setup are not checked (moto's INITIAL_NO_AUTH_ACTION_COUNT)."""
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": str(IAM_SETUP_CALLS + unchecked)}) as url:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="root",
                           aws_secret_access_key="root")
        iam.create_user(UserName="publisher")
        statements = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
        if deny:
            statements.append({"Effect": "Deny", "Action": deny, "Resource": "*"})
        iam.put_user_policy(UserName="publisher", PolicyName="publish", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName="publisher")["AccessKey"]
        for k, v in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                     "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_DEFAULT_REGION": REGIONS[0]}.items():
            monkeypatch.setenv(k, v)
        yield key


def test_an_upload_refused_half_way_leaves_no_snapshot(tmp_path, monkeypatch, capsys):
    """CompleteSnapshot is refused after the blocks were sent: the started snapshot is deleted again."""
    with publisher(monkeypatch, deny="ebs:CompleteSnapshot"):
        store = publish_small(tmp_path)
        assert main(["release", "aws", VERSION, "--spec", write_spec(tmp_path, GOOD_AWS), "--store", store.root]) == 2
        assert "AWS ebs complete_snapshot in eu-west-1 failed" in capsys.readouterr().err
        assert golden_images(REGIONS[0]) == [] and golden_snapshots(REGIONS[0]) == []


def test_an_ami_that_cannot_be_tagged_is_deregistered_and_its_snapshots_deleted(tmp_path, monkeypatch, capsys):
    """ec2:CreateTags is denied: the AMI was registered, cannot carry its tags, and is undone."""
    # moto refuses IAM-checked EBS calls (see the xfail below): the lookup, StartSnapshot, the 3 blocks of the
    # small disk and CompleteSnapshot go unchecked; RegisterImage and everything after it are checked
    with publisher(monkeypatch, deny="ec2:CreateTags", unchecked=1 + 1 + 3 + 1):
        store = publish_small(tmp_path)
        assert main(["release", "aws", VERSION, "--spec", write_spec(tmp_path, GOOD_AWS), "--store", store.root]) == 2
        err = capsys.readouterr().err
        assert "AWS ec2 create_tags in eu-west-1 failed: AccessDenied" in err
        assert re.search(r"deregistered ami-\w+ in eu-west-1", err)
        assert golden_images(REGIONS[0]) == [] and golden_snapshots(REGIONS[0]) == []
        assert golden_images(REGIONS[1]) == [] and golden_snapshots(REGIONS[1]) == []


@pytest.mark.xfail(strict=True, reason="moto 5.2.5 with IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT) answers ebs "
                   "CompleteSnapshot with 403 SignatureDoesNotMatch even for a user allowed everything, so the tests "
                   "above leave the EBS direct API calls unchecked")
def test_ebs_direct_api_calls_pass_an_iam_check(tmp_path, monkeypatch):
    with publisher(monkeypatch):
        store = publish_small(tmp_path)
        target = aws.AwsTarget(regions=REGIONS[:1])
        aws.publish(tested_mod.load(store, VERSION), target, log=lambda m: None)


def test_wrong_credentials_are_exit_2_and_publish_nothing(tmp_path, monkeypatch, capsys):
    with publisher(monkeypatch) as key:
        store = publish_small(tmp_path)
        spec = write_spec(tmp_path, GOOD_AWS)
        for name, wrong in (("AWS_SECRET_ACCESS_KEY", "not-" + key["SecretAccessKey"]),
                            ("AWS_ACCESS_KEY_ID", "AKIA" + "0" * 16)):
            with monkeypatch.context() as env:
                env.setenv(name, wrong)
                assert main(["release", "aws", VERSION, "--spec", spec, "--store", store.root]) == 2
            err = capsys.readouterr().err
            assert "AWS ec2 describe_images in eu-west-1 failed: AuthFailure" in err, name
            assert "the credentials boto3 found were refused" in err
        for region in REGIONS:
            assert golden_images(region) == [] and golden_snapshots(region) == []


def test_revoke_strips_launch_permissions_and_the_channel(tmp_path, aws_env):
    store = publish_small(tmp_path)
    target = aws.settings(aws.yamlsrc.parse(GOOD_AWS).data["aws"], "spec.yaml")
    amis = aws.publish(tested_mod.load(store, VERSION), target, channel="stable", log=lambda m: None)
    aws.revoke(VERSION, target, "CVE-2026-0001", log=lambda m: None)
    for region in REGIONS:
        assert client("ec2", region).describe_image_attribute(
            ImageId=amis[region], Attribute="launchPermission")["LaunchPermissions"] == []
        (image,) = golden_images(region)
        assert {"Key": "golden:revoked", "Value": "CVE-2026-0001"} in image["Tags"]
        with pytest.raises(botocore.exceptions.ClientError, match="ParameterNotFound"):
            client("ssm", region).get_parameter(Name="/golden/linux/stable")


def test_delete_deregisters_and_deletes_snapshots_everywhere(tmp_path, aws_env):
    store = publish_small(tmp_path)
    target = aws.settings(aws.yamlsrc.parse(GOOD_AWS).data["aws"], "spec.yaml")
    aws.publish(tested_mod.load(store, VERSION), target, log=lambda m: None)
    aws.delete(VERSION, target, log=lambda m: None)
    for region in REGIONS:
        assert golden_images(region) == [] and golden_snapshots(region) == []
        with pytest.raises(botocore.exceptions.ClientError, match="ParameterNotFound"):
            client("ssm", region).get_parameter(Name="/golden/linux/candidate")


@pytest.mark.xfail(raises=GoldenError, strict=True,
                   reason="moto 5.2.5 does not implement ec2 EnableImageDeprecation (it answers HTTP 500 NotImplementedError); publish and the lookup of the AMIs by tag run, the deprecation call is made and refused")
def test_deprecate_sets_the_deprecation_time(tmp_path, aws_env):
    store = publish_small(tmp_path)
    target = aws.settings(aws.yamlsrc.parse(GOOD_AWS).data["aws"], "spec.yaml")
    amis = aws.publish(tested_mod.load(store, VERSION), target, log=lambda m: None)
    aws.deprecate(VERSION, target, log=lambda m: None)
    for region in REGIONS:
        assert client("ec2", region).describe_images(ImageIds=[amis[region]])["Images"][0].get("DeprecationTime")


def test_checksums_sent_per_block_are_the_sha256_of_the_block(tmp_path, aws_env):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\x07" * aws.BLOCK + bytes(aws.BLOCK) + b"\x09" * 1000)
    sid, written = aws.upload_snapshot(aws.Aws(), REGIONS[0], str(raw), {"golden:sha256": "x" * 64}, "t")
    assert written == 2
    ebs = client("ebs", REGIONS[0])
    for b in ebs.list_snapshot_blocks(SnapshotId=sid)["Blocks"]:
        got = ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])
        data = got["BlockData"].read()
        assert base64.b64decode(got["Checksum"]) == hashlib.sha256(data).digest()


def test_golden_revoke_reaches_the_released_amis_and_verify_refuses_the_version(tmp_path, aws_env, capsys):
    """The store is the authority and the AMIs follow it: `golden revoke` of a released version strips
    every launch permission of its AMIs in every region (the store hook), and verify fails naming why."""
    store = publish_small(tmp_path)
    spec = write_spec(tmp_path, GOOD_AWS)
    assert main(["release", "aws", VERSION, "--spec", spec, "--store", store.root]) == 0
    amis = dict(line.split("\t") for line in capsys.readouterr().out.split("\n") if line)
    assert store.entry(VERSION)["targets"]["aws"]["amis"] == amis
    assert main(["revoke", VERSION, "--reason", "CVE-2026-0001 exploited", "--store", store.root]) == 0
    for region, ami in amis.items():
        assert client("ec2", region).describe_image_attribute(
            ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == []
    capsys.readouterr()
    assert main(["verify", VERSION, "--store", store.root]) == 1
    assert "CVE-2026-0001 exploited" in capsys.readouterr().err
