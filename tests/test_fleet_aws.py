"""The AWS fleet engine against moto in server mode over HTTP: a group pinned to numbered launch template
versions, rollouts in waves judged by CloudWatch alarms, rollback to the numbered version recorded first."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import boto3
import pytest

from pipeline.errors import GoldenError
from pipeline.fleet import aws as engine
from pipeline.paths import ROOT
from pipeline.release import aws as release
from pipeline.release import tested as tested_mod
from pipeline.store.revocation import revoke
from pipeline.store.store import Store
from pipeline.util import read_json

from .emulators import moto_server, small_qcow2
from .runfixtures import gated_and_signed, make_run

REGION = "eu-west-1"
A, B, C, D = (f"golden-linux-2026.12.01+{n}" for n in (1, 2, 3, 4))
DATA = os.path.join(os.path.dirname(__file__), "data", "aws-fleet")
POLICY = os.path.join(DATA, "policy.yaml")
LONG_CANARY = os.path.join(DATA, "long-canary-bake.yaml")
ALARM = "web-5xx"
quiet = lambda m: None      # noqa: E731


@pytest.fixture
def aws_env(monkeypatch):
    """boto3's own environment pointed at a moto server of this test's own (moto_server pipes the server's
    request log to a pipe nobody reads: a server kept for the module stalls once that pipe is full)."""
    with moto_server() as url:
        for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield url


def client(service):
    return boto3.session.Session().client(service, region_name=REGION)


@pytest.fixture(scope="module")
def signed_store(tmp_path_factory):
    """A, B, C and D published and signed in a local store, made once for the module and copied by each test."""
    tmp = tmp_path_factory.mktemp("aws-fleet")
    store = Store(tmp / "store")
    for version in (A, B, C, D):
        with open(small_qcow2(str(tmp / f"{version}.qcow2")), "rb") as fh:
            run = make_run(tmp / "runs", version=version, payload=fh.read())
        store.publish(run, log=quiet, public_key=gated_and_signed(run, tmp))
    return store.root


@pytest.fixture
def store(signed_store, tmp_path, aws_env):
    """The signed store with A, B and C released as AMIs in REGION (D is not released); an alarm in state OK."""
    store = Store(shutil.copytree(signed_store, tmp_path / "store"))
    target = release.AwsTarget(regions=[REGION])
    for version in (A, B, C):
        release.record_release(store, version, release.publish(tested_mod.load(store, version), target, log=quiet),
                               "candidate")
    client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    set_alarm("OK")
    return store


def set_alarm(state):
    client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason=f"set by the test: {state}")


def ami(store, version):
    return store.entry(version)["targets"]["aws"]["amis"][REGION]


def group():
    return client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["golden-web"])["AutoScalingGroups"][0]


def running_amis():
    """{instance id: AMI} of the group's instances, as EC2 reports them."""
    ids = [i["InstanceId"] for i in group()["Instances"]]
    return {i["InstanceId"]: i["ImageId"] for r in client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
            for i in r["Instances"]}


def template():
    (lt,) = client("ec2").describe_launch_templates(LaunchTemplateNames=["golden-web"])["LaunchTemplates"]
    versions = client("ec2").describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"])
    return lt, {v["VersionNumber"]: v for v in versions["LaunchTemplateVersions"]}


def fleet_on_a(store):
    return engine.create_fleet(store, "web", A, 4, REGION, alarms=[ALARM], log=quiet)


def test_a_fleet_on_a_rolled_out_to_b_goes_through_every_wave_and_a_manual_rollback_returns_it_to_a(store):
    fleet = fleet_on_a(store)
    g = group()
    assert g["LaunchTemplate"]["Version"] == "1" and g["DesiredCapacity"] == 4
    lt, versions = template()
    assert versions[1]["VersionDescription"] == A and versions[1]["LaunchTemplateData"]["ImageId"] == ami(store, A)
    amis = running_amis()
    assert len(amis) == 4 and set(amis.values()) == {ami(store, A)}
    record = read_json(os.path.join(store.root, "fleets", "web.json"))
    assert record["engine"] == "aws" and record["versions"] == [A] == fleet.versions
    assert {h["instance_id"] for h in record["hosts"]} == set(amis)
    assert all(h["version"] == A and h["state"] == "active" and "ssh" not in h for h in record["hosts"])
    assert record["aws"]["template_versions"] == {A: 1} and record["aws"]["launch_template"] == lt["LaunchTemplateId"]

    lines = []
    record = engine.rollout(store, "web", B, POLICY, log=lines.append)
    assert record["result"] == "completed" and record["failure"] is None and record["engine"] == "aws"
    assert any("StartInstanceRefresh is not available" in line and "HTTP 500" in line for line in lines)
    assert record["aws"]["method"] == "terminate-in-group"
    waves = {w["name"]: w for w in record["waves"]}
    assert [w["name"] for w in record["waves"] if w["result"] == "passed"] == ["canary", "half", "all"]
    assert waves["pilot"]["result"] == waves["quarter"]["result"] == "skipped"
    assert [len(w["replacements"]) for w in record["waves"][:3]] == [1, 1, 2]
    assert all(m["value"] == "OK" and m["passed"] for n in ("canary", "half", "all") for m in waves[n]["measurements"])
    amis = running_amis()
    assert len(amis) == 4 and set(amis.values()) == {ami(store, B)}
    assert group()["LaunchTemplate"]["Version"] == "2"
    lt, versions = template()
    assert lt["DefaultVersionNumber"] == 2 and versions[2]["VersionDescription"] == B
    fleet = read_json(os.path.join(store.root, "fleets", "web.json"))
    assert fleet["versions"] == [B] and {h["instance_id"] for h in fleet["hosts"]} == set(amis)
    saved = read_json(os.path.join(store.root, "rollouts", "web", record["id"], "rollout.json"))
    assert saved == record and saved["from"] == [A] and saved["to"] == B

    record = engine.rollback(store, "web", log=quiet)
    assert record["result"] == "rolled_back" and record["to"] == A and record["aws"]["to_template_version"] == 1
    assert set(running_amis().values()) == {ami(store, A)} and group()["LaunchTemplate"]["Version"] == "1"
    assert template()[0]["DefaultVersionNumber"] == 1


def test_an_alarm_at_the_canary_stops_the_rollout_and_returns_the_group_to_the_previous_numbered_version(store):
    fleet_on_a(store)
    assert engine.rollout(store, "web", B, POLICY, log=quiet)["result"] == "completed"
    seen = []

    def hurt(wave, instances):       # the canary's traffic trips the alarm (moto never evaluates alarms)
        seen.append((wave, instances))
        set_alarm("ALARM")

    record = engine.rollout(store, "web", C, POLICY, log=quiet, on_wave=hurt)
    assert record["result"] == "rolled_back"
    assert record["failure"]["wave"] == "canary" and record["failure"]["metric"] == ALARM
    assert record["failure"]["value"] == "ALARM" and "canary" in record["reason"] and ALARM in record["reason"]
    assert [w for w, _ in seen] == ["canary"]
    canary = record["waves"][0]
    assert canary["result"] == "failed" and len(canary["replacements"]) == 1 and canary["replacements"][0]["to"] == C
    assert all(w["result"] in ("pending", "skipped") for w in record["waves"][1:-1])
    assert record["waves"][-1]["name"] == "rollback" and record["waves"][-1]["result"] == "passed"
    amis = running_amis()
    assert seen[0][1][0] not in amis                                  # the canary instance on C is gone
    assert len(amis) == 4 and set(amis.values()) == {ami(store, B)}
    assert group()["LaunchTemplate"]["Version"] == "2"
    lt, versions = template()
    assert lt["DefaultVersionNumber"] == 2 and sorted(versions) == [1, 2, 3]
    assert versions[3]["VersionDescription"] == C
    assert read_json(os.path.join(store.root, "fleets", "web.json"))["versions"] == [B]


def test_an_alarm_with_insufficient_data_fails_the_wave(store):
    fleet_on_a(store)
    set_alarm("INSUFFICIENT_DATA")
    record = engine.rollout(store, "web", B, POLICY, log=quiet)
    assert record["result"] == "rolled_back"
    assert record["failure"]["wave"] == "canary" and record["failure"]["value"] == "INSUFFICIENT_DATA"
    assert set(running_amis().values()) == {ami(store, A)} and group()["LaunchTemplate"]["Version"] == "1"


def test_an_error_in_the_middle_of_a_wave_returns_the_group_to_the_version_before(store):
    fleet_on_a(store)

    def controller_dies(wave, instances):
        raise RuntimeError("lost the connection to the load generator")

    with pytest.raises(RuntimeError):
        engine.rollout(store, "web", B, POLICY, log=quiet, on_wave=controller_dies)
    (rid,) = os.listdir(os.path.join(store.root, "rollouts", "web"))
    record = read_json(os.path.join(store.root, "rollouts", "web", rid, "rollout.json"))
    assert record["result"] == "failed" and "lost the connection" in record["reason"]
    assert f"every instance runs {A} again" in record["reason"]
    assert set(running_amis().values()) == {ami(store, A)} and group()["LaunchTemplate"]["Version"] == "1"


def test_bad_input_is_refused_before_anything_is_touched(store):
    """A revoked version, a version with no AMI in the fleet's region, a policy error, an unknown alarm."""
    fleet_on_a(store)
    before = running_amis()
    revoke(store, B, "CVE-2026-0001 in the kernel")
    with pytest.raises(GoldenError, match="revoked.*CVE-2026-0001") as exc:
        engine.rollout(store, "web", B, POLICY, log=quiet)
    assert exc.value.field == "version"
    with pytest.raises(GoldenError, match=re.escape(f"{D} has no AMI in {REGION}")):
        engine.rollout(store, "web", D, POLICY, log=quiet)
    bad = os.path.join(DATA, "zero-percent.yaml")
    with pytest.raises(GoldenError) as exc:
        engine.rollout(store, "web", C, bad, log=quiet)
    assert exc.value.file == bad and exc.value.field == "waves[1].percent" and exc.value.line
    with pytest.raises(GoldenError, match="no CloudWatch alarm named web-latency"):
        engine.rollout(store, "web", C, POLICY, alarms=["web-latency"], log=quiet)
    with pytest.raises(GoldenError, match="revoked"):
        engine.create_fleet(store, "api", B, 2, REGION, alarms=[ALARM], log=quiet)
    assert running_amis() == before and group()["LaunchTemplate"]["Version"] == "1"
    assert sorted(template()[1]) == [1]
    assert not os.path.exists(os.path.join(store.root, "rollouts"))
    assert not os.path.exists(os.path.join(store.root, "fleets", "api.json"))


def golden(store, *args, **kwargs):
    """`golden ARGS --store STORE` as a subprocess of its own, against the test's moto (aws_env's environment)."""
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args, "--store", str(store.root)], cwd=ROOT,
                            **kwargs)


def unfinished_record(store):
    """The fleet's one rollout record as last written, or None before the controller wrote it."""
    d = os.path.join(store.root, "rollouts", "web")
    paths = [os.path.join(d, rid, "rollout.json") for rid in (os.listdir(d) if os.path.isdir(d) else [])]
    return read_json(paths[0]) if paths and os.path.isfile(paths[0]) else None


def test_a_controller_killed_mid_wave_leaves_a_rollout_that_only_resume_touches_and_resume_rolls_it_back(
        store, tmp_path):
    """kill -9 of `golden rollout` in the canary's bake; meanwhile the group replaces an instance by itself (as an
    ASG health check would), so the fleet record misses it. `--to` and rollback are refused; `--resume` re-reads
    the group into the fleet record and returns the whole group to A."""
    fleet_on_a(store)
    log = tmp_path / "controller.log"
    with open(log, "w") as out:
        proc = golden(store, "rollout", "web", "--to", B, "--policy", LONG_CANARY, stdout=out,
                      stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        while True:
            record = unfinished_record(store)
            canary = record["waves"][0] if record and record.get("waves") else {}
            if canary.get("result") == "running" and canary["replacements"]:
                break
            assert proc.poll() is None, f"the controller ended ({proc.returncode}): {log.read_text()}"
            assert time.monotonic() < deadline, f"no canary replacement within 40 s: {log.read_text()}"
            time.sleep(0.2)
        assert group()["LaunchTemplate"]["Version"] == "2"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert unfinished_record(store)["result"] == "running"
    recorded = {h["instance_id"] for h in read_json(os.path.join(store.root, "fleets", "web.json"))["hosts"]}
    (canary_instance,) = [r["instance"] for r in canary["replacements"]]
    gone = sorted(i for i, a in running_amis().items() if a == ami(store, A))[0]
    client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=gone,
                                                                   ShouldDecrementDesiredCapacity=False)
    unrecorded = set(running_amis()) - recorded
    assert canary_instance in recorded and len(unrecorded) == 1
    assert running_amis()[next(iter(unrecorded))] == ami(store, B)    # launched from the pinned version 2

    again = golden(store, "rollout", "web", "--to", C, "--policy", POLICY, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)
    _, err = again.communicate(timeout=60)
    assert again.returncode == 2 and "--resume" in err and unfinished_record(store)["id"] in err
    assert sorted(template()[1]) == [1, 2]                             # no launch template version for C
    with pytest.raises(GoldenError, match="--resume"):
        engine.rollback(store, "web", log=quiet)
    assert group()["LaunchTemplate"]["Version"] == "2"

    resume = golden(store, "rollout", "web", "--resume", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = resume.communicate(timeout=120)
    assert resume.returncode == 1, err
    assert "golden: rolled back at wave canary: controller interrupted" in err
    assert "is in golden-web but was not in the fleet record" in err and gone in err
    record = unfinished_record(store)
    assert record["result"] == "rolled_back" and record["finished_at"]
    assert record["failure"] == {"wave": "canary", "metric": None, "value": None, "threshold": None,
                                 "reason": "controller interrupted"}
    assert "wave canary was interrupted" in record["reason"] and f"returned golden-web to {A}" in record["reason"]
    assert record["waves"][0]["result"] == "interrupted" and record["waves"][0]["replacements"]
    assert [w["result"] for w in record["waves"][1:-1]] == ["pending", "pending", "skipped", "skipped"]
    back = record["waves"][-1]
    assert back["name"] == "rollback" and back["result"] == "passed"
    assert {r["instance"] for r in back["replacements"]}.isdisjoint(unrecorded | {canary_instance})
    assert {r["host"] for r in back["replacements"]} == unrecorded | {canary_instance}
    assert record["resumed"]["resync"]["found"] == sorted(unrecorded)
    assert record["resumed"]["resync"]["gone"] == [gone]
    amis = running_amis()
    assert len(amis) == 4 and set(amis.values()) == {ami(store, A)}
    assert group()["LaunchTemplate"]["Version"] == "1" and template()[0]["DefaultVersionNumber"] == 1
    fleet = read_json(os.path.join(store.root, "fleets", "web.json"))
    assert {h["instance_id"] for h in fleet["hosts"]} == set(amis) and len(fleet["hosts"]) == 4
    assert fleet["versions"] == [A] and all(h["version"] == A for h in fleet["hosts"])

    with pytest.raises(GoldenError, match="no unfinished AWS rollout"):
        engine.resume(store, "web", log=quiet)


@pytest.mark.xfail(raises=GoldenError, strict=True,
                   reason="moto 5.2.5 does not implement autoscaling StartInstanceRefresh (nor "
                          "DescribeInstanceRefreshes): its server answers HTTP 500 NotImplementedError")
def test_the_native_instance_refresh_rolls_out_through_checkpoints(store):
    fleet_on_a(store)
    record = engine.rollout(store, "web", B, POLICY, log=quiet, refresh="native")
    assert record["result"] == "completed" and record["aws"]["method"] == "instance-refresh"
    assert set(running_amis().values()) == {ami(store, B)} and group()["LaunchTemplate"]["Version"] == "2"
