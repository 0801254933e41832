"""The tested bytes as an AMI: an EBS snapshot written block by block, registered, copied, private, tagged.

    target = settings_from_spec("images/golden-linux.yaml")    # the spec's `aws:` section, validated
    amis = publish(tested, target, channel="candidate")         # {region: ami id}; nothing left on failure

The disk is uploaded with the EBS direct APIs (StartSnapshot, PutSnapshotBlock with a SHA256 per
512 KiB block, CompleteSnapshot with the linear aggregate), as AWS's coldsnap does, so the snapshot
holds exactly the raw bytes of the qcow2 that passed the gate; no instance ever boots to make it.
The first region of `aws.regions` receives the upload; the others get copies. Launch permissions are
an allowlist (accounts, organisations, OUs) and never public. `/golden/<image>/<channel>` in SSM
Parameter Store names the AMI of a channel in every region.

Spec section:

    aws:
      regions: [eu-west-1, eu-central-1]
      launch_permissions: {accounts: ["123456789012"], organizations: [arn:aws:organizations::...], ous: [...]}

Credentials and endpoints come from boto3's own chain (AWS_PROFILE, AWS_ENDPOINT_URL, ...).
"""

import base64
import concurrent.futures
import datetime as dt
import hashlib
import math
import os
import re
import tempfile
from dataclasses import dataclass, field

from pipeline import yamlsrc
from pipeline.errors import GoldenError
from pipeline.release import tested as tested_mod
from pipeline.store.version import Version

BLOCK = 512 * 1024                  # the EBS direct APIs' block size
UPLOAD_THREADS = 8
ACCOUNT_RE = re.compile(r"^\d{12}$")
ORG_RE = re.compile(r"^arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$")
OU_RE = re.compile(r"^arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")
PUBLIC_WORDS = {"all", "public", "*"}
# Error codes by which AWS refuses the caller's credentials themselves (not a permission of the call).
CREDENTIAL_CODES = {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                    "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException"}
# One launch-permission kind: the spec's key, the API's key, the pattern a value must match, an example.
PERMISSION_KINDS = (("accounts", "UserId", ACCOUNT_RE, "123456789012"),
                    ("organizations", "OrganizationArn", ORG_RE,
                     "arn:aws:organizations::123456789012:organization/o-abcdefghij"),
                    ("ous", "OrganizationalUnitArn", OU_RE,
                     "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh"))


@dataclass
class AwsTarget:
    regions: list                   # regions[0] receives the upload, the rest get copies
    launch_permissions: list = field(default_factory=list)   # [{"UserId": ...} | {"OrganizationArn": ...} | ...]
    source: str | None = None


def known_regions():
    import boto3
    session = boto3.session.Session()
    return {r for p in session.get_available_partitions() for r in session.get_available_regions("ec2", p)}


def settings(mapping, path):
    """The `aws:` mapping of the spec at `path`, validated; errors name the file, line and field."""
    doc = yamlsrc.Doc(path, mapping)
    f = yamlsrc.Fields(doc, mapping, "aws")
    known = known_regions()
    regions = f.get("regions", list, required=True, check=lambda v: (
        "must name at least one region" if not v else
        next((f"unknown region {r!r} (the first of {', '.join(sorted(known)[:4])}, ...)" for r in v
              if not isinstance(r, str) or r not in known), None) or
        ("lists a region twice" if len(set(v)) != len(v) else None)))
    permissions = []
    lp = f.sub("launch_permissions")
    if lp is not None:
        for word in set(lp.mapping) & {"public", "group", "groups", "all"}:
            raise lp.error(word, "AMIs are never public: list accounts, organizations or ous instead")
        for key, api_key, pattern, example in PERMISSION_KINDS:
            for i, value in enumerate(lp.get(key, list, default=[])):
                where = f"aws.launch_permissions.{key}[{i}]"
                line = doc.line(lp.mapping[key], i)
                if isinstance(value, str) and value.lower() in PUBLIC_WORDS:
                    raise GoldenError(f"{value!r} would make the AMI public; AMIs are private to an allowlist",
                                      file=path, line=line, field=where)
                if not isinstance(value, str) or not pattern.match(value):
                    raise GoldenError(f"{value!r} is not a valid {key[:-1]} (e.g. {example})", file=path,
                                      line=line, field=where)
                permissions.append({api_key: value})
        lp.done()
    f.done()
    return AwsTarget(regions=list(regions), launch_permissions=permissions, source=path)


def settings_from_spec(spec_path):
    """The `aws:` section of an image spec file."""
    return tested_mod.release_settings(spec_path, "aws", "{regions: [...], launch_permissions: {...}}")


def ami_name(version):
    """AMI names allow no "+": golden-linux-2026.11.27+1 is golden-linux-2026.11.27-build1 (as in packer/)."""
    return version.replace("+", "-build")


def parameter_name(image, channel):
    return f"/golden/{image}/{channel}"


class Aws:
    """boto3 clients by (service, region), with AWS errors turned into GoldenErrors that name the call."""

    def __init__(self):
        import boto3
        self.session = boto3.session.Session()
        self._clients = {}

    def client(self, service, region):
        if (service, region) not in self._clients:
            self._clients[service, region] = self.session.client(service, region_name=region)
        return self._clients[service, region]

    def call(self, service, region, operation, **params):
        import botocore.exceptions
        import botocore.parsers
        try:
            return getattr(self.client(service, region), operation)(**params)
        except botocore.exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            hint = ("; the credentials boto3 found were refused (AWS_PROFILE, AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, ~/.aws)" if err.get("Code") in CREDENTIAL_CODES else "")
            raise GoldenError(f"AWS {service} {operation} in {region} failed: {err.get('Code')}: "
                              f"{err.get('Message')}{hint}", field="aws") from None
        except (botocore.exceptions.BotoCoreError, botocore.parsers.ResponseParserError) as exc:
            # no endpoint, no credentials, or an answer that is not AWS's (an HTTP 500 page)
            raise GoldenError(f"AWS {service} {operation} in {region}: {exc}", field="aws") from None


def _tags(labels):
    return [{"Key": k, "Value": v} for k, v in labels.items()]


def _images(aws, region, version):
    """This account's AMIs of `version` in `region` (found by their golden:version tag)."""
    return aws.call("ec2", region, "describe_images", Owners=["self"],
                    Filters=[{"Name": "tag:golden:version", "Values": [version]}])["Images"]


def _snapshots(aws, region, version, image=None):
    """Snapshot ids of `version` in `region`: those tagged with it and those the AMI maps."""
    tagged = aws.call("ec2", region, "describe_snapshots", OwnerIds=["self"],
                      Filters=[{"Name": "tag:golden:version", "Values": [version]}])["Snapshots"]
    ids = [s["SnapshotId"] for s in tagged]
    for m in (image or {}).get("BlockDeviceMappings", []):
        sid = m.get("Ebs", {}).get("SnapshotId")
        if sid and sid not in ids:
            ids.append(sid)
    return ids


def upload_snapshot(aws, region, raw_path, labels, description):
    """Write the raw disk as a new EBS snapshot with the direct APIs; returns (snapshot id, blocks written).

    All-zero blocks are not sent: an EBS snapshot reads unwritten blocks as zeros.
    """
    size = os.path.getsize(raw_path)
    snap = aws.call("ebs", region, "start_snapshot", VolumeSize=max(1, math.ceil(size / 2**30)),
                    Tags=_tags(labels), Description=description)
    snapshot_id = snap["SnapshotId"]
    zero = bytes(BLOCK)

    def put(index, data):
        digest = hashlib.sha256(data).digest()
        aws.call("ebs", region, "put_snapshot_block", SnapshotId=snapshot_id, BlockIndex=index, BlockData=data,
                 DataLength=len(data), Checksum=base64.b64encode(digest).decode(), ChecksumAlgorithm="SHA256")
        return index, digest

    try:
        digests = {}
        with open(raw_path, "rb") as fh, concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            pending = set()
            index = 0
            while data := fh.read(BLOCK):
                data = data.ljust(BLOCK, b"\0")   # the last block of a disk not a multiple of 512 KiB
                if data != zero:
                    pending.add(pool.submit(put, index, data))
                if len(pending) >= 4 * UPLOAD_THREADS:
                    done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    digests.update(f.result() for f in done)
                index += 1
            digests.update(f.result() for f in pending)
        aggregate = hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()
        aws.call("ebs", region, "complete_snapshot", SnapshotId=snapshot_id, ChangedBlocksCount=len(digests),
                 Checksum=base64.b64encode(aggregate).decode(), ChecksumAlgorithm="SHA256",
                 ChecksumAggregationMethod="LINEAR")
        aws.client("ec2", region).get_waiter("snapshot_completed").wait(
            SnapshotIds=[snapshot_id], WaiterConfig={"Delay": 5, "MaxAttempts": 360})
    except BaseException:
        aws.call("ec2", region, "delete_snapshot", SnapshotId=snapshot_id)
        raise
    return snapshot_id, len(digests)


def _register(aws, region, tested, snapshot_id):
    return aws.call("ec2", region, "register_image", Name=ami_name(tested.version),
                    Description=f"{tested.version} sha256 {tested.sha256}", Architecture="x86_64",
                    RootDeviceName="/dev/xvda", VirtualizationType="hvm", EnaSupport=True,
                    BootMode="legacy-bios",     # the image boots with GRUB from an MBR (BIOS), as QEMU tested it
                    BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {
                        "SnapshotId": snapshot_id, "VolumeType": "gp3", "DeleteOnTermination": True}}])["ImageId"]


def _tag_and_check(aws, region, ami, snapshot_ids, labels):
    """Tag the AMI and its snapshots, then read the AMI's tags back: an untagged AMI is not published."""
    aws.call("ec2", region, "create_tags", Resources=[ami, *snapshot_ids],
             Tags=_tags({**labels, "Name": labels["golden:version"]}))
    image = aws.call("ec2", region, "describe_images", ImageIds=[ami])["Images"][0]
    found = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    missing = [k for k, v in labels.items() if found.get(k) != v]
    if missing:
        raise GoldenError(f"AMI {ami} in {region} lacks the tags {', '.join(missing)} after tagging", field="aws")
    return image


def _set_permissions(aws, region, ami, permissions):
    if permissions:
        aws.call("ec2", region, "modify_image_attribute", ImageId=ami, LaunchPermission={"Add": permissions})
    granted = aws.call("ec2", region, "describe_image_attribute", ImageId=ami,
                       Attribute="launchPermission")["LaunchPermissions"]
    if any(p.get("Group") == "all" for p in granted):
        raise GoldenError(f"AMI {ami} in {region} is public; refusing to publish it", field="aws")


def set_channel(tested_or_version, target, channel, aws=None):
    """Point /golden/<image>/<channel> at the version's AMI in every region of the target."""
    aws = aws or Aws()
    version = getattr(tested_or_version, "version", tested_or_version)
    name = parameter_name(Version.parse(version).name, channel)
    out = {}
    for region in target.regions:
        images = _images(aws, region, version)
        if not images:
            raise GoldenError(f"{version} has no AMI in {region}: publish it to AWS first", field="version")
        aws.call("ssm", region, "put_parameter", Name=name, Value=images[0]["ImageId"], Type="String",
                 DataType="aws:ec2:image", Overwrite=True, Description=f"{version} on channel {channel}")
        out[region] = images[0]["ImageId"]
    return out


def publish(tested, target, channel="candidate", aws=None, log=print):
    """Upload, register, tag, copy and share the tested image; {region: ami}. Undone entirely on any failure."""
    aws = aws or Aws()
    labels = tested.labels()
    home = target.regions[0]
    existing = _images(aws, home, tested.version)
    if existing:
        found = {t["Key"]: t["Value"] for t in existing[0].get("Tags", [])}
        if found.get("golden:sha256") != tested.sha256:
            raise GoldenError(f"{existing[0]['ImageId']} in {home} is tagged {tested.version} but carries sha256 "
                              f"{found.get('golden:sha256')}, not {tested.sha256}", field="version")
        log(f"{tested.version} is already an AMI ({existing[0]['ImageId']} in {home}): setting channel {channel}")
        return set_channel(tested, target, channel, aws)
    made = []           # (region, ami or None, [snapshot ids]) for the undo
    try:
        with tempfile.TemporaryDirectory(prefix="golden-ami-") as tmp:
            raw = tested_mod.convert(tested.path, os.path.join(tmp, "disk.raw"), "raw")
            log(f"uploading {os.path.getsize(raw) / 2**20:.0f} MiB (raw) to an EBS snapshot in {home}")
            snapshot_id, blocks = upload_snapshot(aws, home, raw, labels, f"{tested.version} sha256 {tested.sha256}")
        made.append((home, None, [snapshot_id]))
        log(f"snapshot {snapshot_id}: {blocks} blocks of 512 KiB written")
        ami = _register(aws, home, tested, snapshot_id)
        made[-1] = (home, ami, [snapshot_id])
        aws.client("ec2", home).get_waiter("image_available").wait(ImageIds=[ami],
                                                                   WaiterConfig={"Delay": 10, "MaxAttempts": 180})
        image = aws.call("ec2", home, "describe_images", ImageIds=[ami])["Images"][0]
        made[-1] = (home, ami, _snapshots(aws, home, tested.version, image))
        _tag_and_check(aws, home, ami, made[-1][2], labels)
        _set_permissions(aws, home, ami, target.launch_permissions)
        amis = {home: ami}
        for region in target.regions[1:]:
            copy = aws.call("ec2", region, "copy_image", SourceImageId=ami, SourceRegion=home,
                            Name=ami_name(tested.version),
                            Description=f"{tested.version} sha256 {tested.sha256}")["ImageId"]
            made.append((region, copy, []))
            aws.client("ec2", region).get_waiter("image_available").wait(
                ImageIds=[copy], WaiterConfig={"Delay": 15, "MaxAttempts": 240})
            image = aws.call("ec2", region, "describe_images", ImageIds=[copy])["Images"][0]
            snapshots = _snapshots(aws, region, tested.version, image)
            made[-1] = (region, copy, snapshots)
            _tag_and_check(aws, region, copy, snapshots, labels)
            _set_permissions(aws, region, copy, target.launch_permissions)
            amis[region] = copy
            log(f"copied to {region}: {copy}")
        set_channel(tested, target, channel, aws)
    except BaseException:
        for region, ami, snapshots in reversed(made):
            _remove(aws, region, ami, snapshots, log)
        raise
    log(f"published {tested.version} as " + ", ".join(f"{a} ({r})" for r, a in amis.items()) +
        f"; {parameter_name(tested.image, channel)} points at it")
    return amis


def _remove(aws, region, ami, snapshots, log):
    """Deregister an AMI and delete its snapshots (the undo of a publish, and `delete`)."""
    if ami:
        aws.call("ec2", region, "deregister_image", ImageId=ami)
        log(f"deregistered {ami} in {region}")
    for sid in snapshots:
        aws.call("ec2", region, "delete_snapshot", SnapshotId=sid)
        log(f"deleted snapshot {sid} in {region}")


def _channel_parameters(aws, region, image, ami):
    path = f"/golden/{image}"
    params = aws.call("ssm", region, "get_parameters_by_path", Path=path, Recursive=False)["Parameters"]
    return [p["Name"] for p in params if p["Value"] == ami]


def revoke(version, target, reason, aws=None, log=print):
    """Strip every launch permission of the version's AMIs, tag them revoked, drop channels naming them."""
    aws = aws or Aws()
    image_name = Version.parse(version).name
    for region in target.regions:
        for image in _images(aws, region, version):
            ami = image["ImageId"]
            granted = aws.call("ec2", region, "describe_image_attribute", ImageId=ami,
                               Attribute="launchPermission")["LaunchPermissions"]
            if granted:
                aws.call("ec2", region, "modify_image_attribute", ImageId=ami, LaunchPermission={"Remove": granted})
            aws.call("ec2", region, "create_tags", Resources=[ami], Tags=_tags({"golden:revoked": reason[:256]}))
            for name in _channel_parameters(aws, region, image_name, ami):
                aws.call("ssm", region, "delete_parameter", Name=name)
                log(f"{name} in {region} no longer names revoked {ami}")
            log(f"revoked {ami} in {region}: no launch permissions left")


def deprecate(version, target, at=None, aws=None, log=print):
    """EnableImageDeprecation on the version's AMIs (at `at`, UTC; default: a minute from now, the earliest AWS takes)."""
    aws = aws or Aws()
    at = at or dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    for region in target.regions:
        for image in _images(aws, region, version):
            aws.call("ec2", region, "enable_image_deprecation", ImageId=image["ImageId"], DeprecateAt=at)
            log(f"{image['ImageId']} in {region} deprecated from {at.isoformat(timespec='minutes')}")


def delete(version, target, aws=None, log=print):
    """Deregister the version's AMIs, delete their snapshots and the channel parameters naming them."""
    aws = aws or Aws()
    image_name = Version.parse(version).name
    for region in target.regions:
        for image in _images(aws, region, version):
            for name in _channel_parameters(aws, region, image_name, image["ImageId"]):
                aws.call("ssm", region, "delete_parameter", Name=name)
            _remove(aws, region, image["ImageId"], _snapshots(aws, region, version, image), log)


def record_release(store, version, amis, channel):
    """Record in the store where a version was released, so that revocation and lifecycle follow it there."""
    with store.change("release", version=version, target="aws", amis=amis) as c:
        entry = store.entry(version, c.index)
        entry.setdefault("targets", {})["aws"] = {"amis": amis, "channel": channel, "at": c.event["at"]}


def follow_store(store, version, action, record):
    """The store's hook (pipeline.store.hooks): a version the store revokes, deprecates or deletes has its
    recorded AMIs revoked (no launch permission left), deprecated or deregistered in every region; a
    version promoted to a channel gets that channel's SSM parameter in every region."""
    index = store.index()
    entry = index["images"].get(version) or index["deleted"].get(version) or {}
    released = (entry.get("targets") or {}).get("aws")
    if not released:
        return
    target = AwsTarget(regions=list(released["amis"]))
    if action == "revoke":
        revoke(version, target, record.get("reason") or "revoked")
    elif action == "deprecate":
        deprecate(version, target)
    elif action == "delete":
        delete(version, target)
    elif action == "promote":
        set_channel(version, target, record["channel"])
