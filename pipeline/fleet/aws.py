"""The AWS engine: a fleet is an Auto Scaling group pinned to a numbered launch template version, one
numbered version per image version; a rollout replaces the group's instances wave by wave and judges each
wave by CloudWatch alarms.

    fleet = create_fleet(store, "web", "golden-web-2026.12.01+1", 4, "eu-west-1", alarms=["web-5xx"])
    record = rollout(store, "web", "golden-web-2026.12.01+2", "policies/web.yaml")   # record["result"]

The group is never pointed at `$Latest` or `$Default`: a rollback returns it to the numbered version it
had before the rollout began (recorded first), so it cannot land on the bad version again
(terraform-provider-aws #34189). Each wave terminates its instances in the group without decrementing
the desired capacity, so the group launches the replacements from its pinned version; an instance's
version is read from the AMI it runs. Where the endpoint implements it, StartInstanceRefresh does the
same natively (checkpoints from the waves, the alarms, auto rollback); an endpoint that does not (moto)
is detected by its answer and the engine falls back to the primitives, saying so. An alarm in ALARM at
any time, or not OK when the bake ends (INSUFFICIENT_DATA included), fails the wave.

A controller that dies mid-rollout leaves its record "running"; rollout and rollback refuse until `resume`,
which rolls the rollout back (the wave's bake and readings died with the controller) after reading the
group's actual instances into the fleet record:

    record = resume(store, "web")          # record["result"] == "rolled_back"
"""

import datetime as dt
import os
import secrets
import time

from pipeline.errors import GoldenError
from pipeline.fleet.record import Fleet, Fleets, check_name, now_iso
from pipeline.release.aws import Aws
from pipeline.rollout.policy import Policy
from pipeline.rollout.waves import plan as plan_waves
from pipeline.store.version import Version
from pipeline.util import read_json, write_json_atomic

ENGINE = "aws"
OK, ALARM = "OK", "ALARM"
POLL = 5                    # seconds between looks at the group while instances launch
# Error codes of an endpoint that does not know an action (AWS, LocalStack); moto answers with an HTTP 500 page.
UNKNOWN_ACTION_CODES = {"InvalidAction", "UnknownOperation", "UnknownOperationException", "NotImplemented",
                        "NotImplementedException"}
REFRESH_DONE = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}
REFRESH_MODES = ("auto", "native", "waves")


def group_name(fleet):
    return f"golden-{fleet}"


def _ami(store, version, region, aws):
    """The AMI the store recorded for `version` in `region`, confirmed by EC2 (tagged with the version)."""
    amis = ((store.entry(version).get("targets") or {}).get("aws") or {}).get("amis") or {}
    if region not in amis:
        where = ", ".join(sorted(amis)) or "no region"
        raise GoldenError(f"{version} has no AMI in {region} (released to {where}): `golden release aws` it there "
                          "first", field="version")
    images = aws.call("ec2", region, "describe_images", ImageIds=[amis[region]])["Images"]
    tags = {t["Key"]: t["Value"] for t in (images[0].get("Tags", []) if images else [])}
    if tags.get("golden:version") != version:
        raise GoldenError(f"the store names {amis[region]} in {region} for {version}, but EC2 "
                          f"{'has no such AMI' if not images else 'tags it ' + repr(tags.get('golden:version'))}",
                          field="version")
    return amis[region]


def _usable(store, version, region, aws):
    """Published, not revoked, verifying, with an AMI in the region: the AMI id; GoldenError otherwise."""
    store.resolvable(version)
    return _ami(store, version, region, aws)


def _check_alarms(aws, region, names):
    if not names:
        raise GoldenError("no CloudWatch alarm to judge the waves by: a wave that cannot be analysed never passes "
                          "(give alarms)", field="alarms")
    found = {a["AlarmName"] for a in aws.call("cloudwatch", region, "describe_alarms",
                                              AlarmNames=list(names))["MetricAlarms"]}
    missing = [n for n in names if n not in found]
    if missing:
        raise GoldenError(f"no CloudWatch alarm named {', '.join(missing)} in {region}", field="alarms")
    return list(names)


def _load_policy(policy):
    return policy if isinstance(policy, Policy) else Policy.load(policy)


# ------------------------------------------------------------------ the group as EC2 sees it

def _group(aws, ctx):
    groups = aws.call("autoscaling", ctx["region"], "describe_auto_scaling_groups",
                      AutoScalingGroupNames=[ctx["group"]])["AutoScalingGroups"]
    if not groups:
        raise GoldenError(f"Auto Scaling group {ctx['group']} is gone from {ctx['region']}", field="fleet")
    return groups[0]


def _instances(aws, ctx):
    """{instance id: (AMI, launch time)} of the group's InService, healthy, running instances, and whether
    every instance of the group is so (none launching or terminating)."""
    group = _group(aws, ctx)
    members = group["Instances"]
    ready = [i["InstanceId"] for i in members if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]
    out = {}
    if ready:
        for r in aws.call("ec2", ctx["region"], "describe_instances", InstanceIds=ready)["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] == "running":
                    out[i["InstanceId"]] = (i["ImageId"], i["LaunchTime"])
    settled = len(out) == len(members) == group["DesiredCapacity"]
    return out, settled


def _settle(aws, ctx, done, timeout, what):
    """Wait until the group is settled and `done(instances)` holds; returns the instances."""
    deadline = time.monotonic() + timeout
    while True:
        instances, settled = _instances(aws, ctx)
        if settled and done(instances):
            return instances
        if time.monotonic() > deadline:
            raise GoldenError(f"{ctx['group']} in {ctx['region']}: {what} not reached within {timeout} s "
                              f"({len(instances)} instance(s) ready)", field="fleet")
        time.sleep(POLL)


def _host(instance_id, version, launched):
    return {"name": instance_id, "instance_id": instance_id, "version": version,
            "since": launched.astimezone(dt.timezone.utc).isoformat(timespec="seconds"), "state": "active"}


def _pin(aws, ctx, number):
    """Point the group, and the template's default, at a numbered version (never $Latest or $Default)."""
    aws.call("autoscaling", ctx["region"], "update_auto_scaling_group", AutoScalingGroupName=ctx["group"],
             LaunchTemplate={"LaunchTemplateId": ctx["launch_template"], "Version": str(number)})
    aws.call("ec2", ctx["region"], "modify_launch_template", LaunchTemplateId=ctx["launch_template"],
             DefaultVersion=str(number))


def _template_version(aws, ctx, version, ami, instance_type):
    """The numbered launch template version of `version`: the one made before, or a new one."""
    for v in aws.call("ec2", ctx["region"], "describe_launch_template_versions",
                      LaunchTemplateId=ctx["launch_template"])["LaunchTemplateVersions"]:
        if v.get("VersionDescription") == version and v["LaunchTemplateData"].get("ImageId") == ami:
            return v["VersionNumber"]
    made = aws.call("ec2", ctx["region"], "create_launch_template_version", LaunchTemplateId=ctx["launch_template"],
                    VersionDescription=version, LaunchTemplateData=_template_data(ctx["fleet"], version, ami,
                                                                                  instance_type))
    return made["LaunchTemplateVersion"]["VersionNumber"]


def _template_data(fleet, version, ami, instance_type):
    tags = [{"Key": "golden:version", "Value": version}, {"Key": "golden:fleet", "Value": fleet}]
    return {"ImageId": ami, "InstanceType": instance_type,
            "TagSpecifications": [{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")]}


# ------------------------------------------------------------------ fleets

def create_fleet(store, name, version, size, region, alarms=(), role=None, instance_type="t3.micro",
                 availability_zones=None, subnets=None, timeout=900, aws=None, log=print):
    """An Auto Scaling group of `size` instances of `version` in `region`, recorded as <store>/fleets/<name>.json.

        create_fleet(Store("store"), "web", "golden-web-2026.12.01+1", 4, "eu-west-1", alarms=["web-5xx"])
    """
    aws = aws or Aws()
    check_name(name)
    fleets = Fleets(store.root)
    if fleets.exists(name):
        raise GoldenError(f"fleet {name} exists already ({fleets.path(name)})", field="fleet")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise GoldenError(f"a fleet has at least one host, not {size!r}", field="size")
    ami = _usable(store, version, region, aws)
    alarms = _check_alarms(aws, region, alarms)
    ctx = {"fleet": name, "region": region, "group": group_name(name)}
    made = []
    with fleets.lock(name, f"create on AWS {region}"):
        try:
            lt = aws.call("ec2", region, "create_launch_template", LaunchTemplateName=group_name(name),
                          VersionDescription=version, LaunchTemplateData=_template_data(name, version, ami,
                                                                                        instance_type))
            ctx["launch_template"] = lt["LaunchTemplate"]["LaunchTemplateId"]
            made.append(lambda: aws.call("ec2", region, "delete_launch_template",
                                         LaunchTemplateId=ctx["launch_template"]))
            placement = ({"VPCZoneIdentifier": ",".join(subnets)} if subnets else
                         {"AvailabilityZones": list(availability_zones or [f"{region}a"])})
            aws.call("autoscaling", region, "create_auto_scaling_group", AutoScalingGroupName=ctx["group"],
                     LaunchTemplate={"LaunchTemplateId": ctx["launch_template"], "Version": "1"},
                     MinSize=size, MaxSize=size, DesiredCapacity=size,
                     Tags=[{"Key": "golden:fleet", "Value": name, "PropagateAtLaunch": True}], **placement)
            made.append(lambda: aws.call("autoscaling", region, "delete_auto_scaling_group",
                                         AutoScalingGroupName=ctx["group"], ForceDelete=True))
            log(f"{ctx['group']}: {size} instance(s) of {version} ({ami}) from {ctx['launch_template']} version 1")
            instances = _settle(aws, ctx, lambda got: len(got) == size and all(a == ami for a, _ in got.values()),
                                timeout, f"{size} instance(s) of {version} in service")
        except BaseException:
            for undo in reversed(made):
                undo()
            raise
        run = os.path.join(store.root, "images", version, "run.json")
        hosts = [_host(i, version, t) for i, (_, t) in sorted(instances.items(), key=lambda kv: kv[1][1])]
        fleet = Fleet(name, ENGINE, Version.parse(version).name,
                      role or (read_json(run, "run record").get("role", "") if os.path.exists(run) else ""),
                      now_iso(), hosts,
                      {"aws": {"region": region, "group": ctx["group"], "launch_template": ctx["launch_template"],
                               "template_versions": {version: 1}, "alarms": alarms, "instance_type": instance_type}})
        fleets.save(fleet)
    log(f"fleet {name}: {', '.join(h['name'] for h in fleet.hosts)}")
    return fleet


def _fleet(store, name):
    fleets = Fleets(store.root)
    fleet = fleets.load(name)
    if fleet.engine != ENGINE:
        raise GoldenError(f"fleet {name} is a {fleet.engine} fleet, not an AWS one", field="fleet")
    return fleets, fleet


def _context(fleet):
    a = fleet.extra["aws"]
    return {"fleet": fleet.fleet, "region": a["region"], "group": a["group"], "launch_template": a["launch_template"]}


def _pinned(aws, ctx, fleet):
    """The numbered version the group runs now and its image version; refuses $Latest/$Default or an unknown number."""
    spec = _group(aws, ctx).get("LaunchTemplate") or {}
    number = spec.get("Version")
    if not (number or "").isdigit():
        raise GoldenError(f"{ctx['group']} uses launch template version {number!r}, not a numbered one: a rollback "
                          "could not return it to a known version", field="fleet")
    by_number = {n: v for v, n in fleet.extra["aws"]["template_versions"].items()}
    if int(number) not in by_number:
        raise GoldenError(f"{ctx['group']} runs launch template version {number}, which the fleet record does not map "
                          "to an image version", field="fleet")
    return int(number), by_number[int(number)]


# ------------------------------------------------------------------ analysis

def _measure(aws, ctx, alarms):
    """One reading of every alarm: a measurement per alarm, passed only when its state is OK."""
    found = {a["AlarmName"]: a for a in aws.call("cloudwatch", ctx["region"], "describe_alarms",
                                                 AlarmNames=alarms)["MetricAlarms"]}
    at = now_iso()
    out = []
    for name in alarms:
        a = found.get(name)
        state = a["StateValue"] if a else None
        out.append({"metric": name, "at": at, "value": state, "threshold": "state OK", "passed": state == OK,
                    "reason": a.get("StateReason", "") if a else "no such alarm"})
    return out


def _bake_and_analyse(aws, ctx, alarms, bake, interval, wave):
    """Bake `bake` seconds reading the alarms every `interval`: ALARM fails at once; at the end every alarm must
    be OK (INSUFFICIENT_DATA is no data, and no data never passes). Returns the failed measurement or None."""
    deadline = time.monotonic() + bake
    while True:
        readings = _measure(aws, ctx, alarms)
        wave["measurements"].extend(readings)
        final = time.monotonic() >= deadline
        failed = next((m for m in readings if m["value"] == ALARM or (final and not m["passed"])), None)
        if failed or final:
            return failed
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


# ------------------------------------------------------------------ rollouts

class _Rollout:
    """The record of one rollout, written to <store>/rollouts/<fleet>/<id>/rollout.json before each step."""

    def __init__(self, store, fleet, to, policy_path, emergency, cve, extra):
        now = dt.datetime.now(dt.timezone.utc)
        self.id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
        self.path = os.path.join(store.root, "rollouts", fleet.fleet, self.id, "rollout.json")
        self.data = {"id": self.id, "fleet": fleet.fleet, "engine": ENGINE, "from": fleet.versions, "to": to,
                     "emergency": emergency, "cve": cve, "policy": policy_path, "started_at": now_iso(),
                     "finished_at": None, "result": "running", "reason": None, "failure": None, "waves": [],
                     "aws": extra}
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.save()

    @classmethod
    def load(cls, path):
        """The record at `path` as written last (by a controller that may have died since)."""
        self = cls.__new__(cls)
        self.path, self.data = path, read_json(path, "rollout record")
        self.id = self.data["id"]
        return self

    def save(self):
        write_json_atomic(self.path, self.data)

    def finish(self, result, reason=None, failure=None):
        self.data.update(result=result, reason=reason, failure=failure, finished_at=now_iso())
        self.save()
        return self.data


def _replace(aws, ctx, fleets, fleet, instance_ids, version, ami, timeout, log):
    """Terminate `instance_ids` in the group (desired capacity kept), wait for as many replacements of `ami`;
    the fleet record follows. Returns [{"host", "instance", "from", "to", "seconds"}]."""
    started = time.monotonic()
    before, _ = _instances(aws, ctx)
    on_ami = sum(a == ami for a, _ in before.values())
    for instance_id in instance_ids:
        aws.call("autoscaling", ctx["region"], "terminate_instance_in_auto_scaling_group", InstanceId=instance_id,
                 ShouldDecrementDesiredCapacity=False)
    after = _settle(aws, ctx, lambda got: not set(instance_ids) & set(got) and
                    sum(a == ami for a, _ in got.values()) >= on_ami + len(instance_ids),
                    timeout, f"{len(instance_ids)} replacement(s) running {version}")
    new = sorted((i for i in after if i not in before), key=lambda i: after[i][1])
    seconds = round(time.monotonic() - started, 1)
    out = []
    for old, instance_id in zip(instance_ids, new):
        slot = fleet.hosts.index(fleet.host(old))
        out.append({"host": old, "instance": instance_id, "from": fleet.hosts[slot]["version"], "to": version,
                    "seconds": seconds})
        fleet.hosts[slot] = _host(instance_id, version, after[instance_id][1])
        log(f"  {old} → {instance_id} ({version}) in {seconds} s")
    fleets.save(fleet)
    return out


def _return_to(aws, ctx, fleets, fleet, number, version, max_parallel, timeout, log):
    """Pin the group to numbered `number` (image `version`), replace every instance not on it, verify the whole
    group runs it. Returns the replacements."""
    ami = _ami_of_number(aws, ctx, number)
    _pin(aws, ctx, number)
    log(f"{ctx['group']}: pinned to launch template version {number} ({version}); replacing every other instance")
    replaced = []
    while True:
        instances, _ = _instances(aws, ctx)
        others = [h["name"] for h in fleet.hosts if h["name"] in instances and instances[h["name"]][0] != ami]
        if not others:
            break
        replaced += _replace(aws, ctx, fleets, fleet, others[:max_parallel], version, ami, timeout, log)
    instances = _settle(aws, ctx, lambda got: len(got) == len(fleet.hosts), timeout, "the whole group in service")
    wrong = sorted(i for i, (a, _) in instances.items() if a != ami)
    if wrong or set(instances) != {h["name"] for h in fleet.hosts}:
        raise GoldenError(f"{ctx['group']} does not run {version} everywhere after returning to it: "
                          f"{', '.join(wrong) or 'its instances differ from the fleet record'}", field="fleet")
    return replaced


def _ami_of_number(aws, ctx, number):
    versions = aws.call("ec2", ctx["region"], "describe_launch_template_versions",
                        LaunchTemplateId=ctx["launch_template"], Versions=[str(number)])["LaunchTemplateVersions"]
    return versions[0]["LaunchTemplateData"]["ImageId"]


def _unknown_action(exc):
    """Why an exception means the endpoint does not implement the action, or None."""
    import botocore.exceptions
    import botocore.parsers
    if isinstance(exc, botocore.parsers.ResponseParserError) and "500 Internal Server Error" in str(exc):
        return "it answers HTTP 500 with a page that is not an AWS error (moto does so for an action it lacks)"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if err.get("Code") in UNKNOWN_ACTION_CODES or status == 501:
            return f"it answers {status} {err.get('Code')}: {err.get('Message')}"
    return None


def _start_refresh(aws, ctx, number, plan, policy, alarms):
    """StartInstanceRefresh to numbered `number` with checkpoints at the waves' targets; the refresh id, or
    (None, why) when the endpoint does not implement it."""
    import botocore.exceptions
    import botocore.parsers
    checkpoints = [round(100 * w.target / plan.size) for w in plan.waves]
    bake = max(w.bake for w in plan.waves)
    try:
        answer = aws.client("autoscaling", ctx["region"]).start_instance_refresh(
            AutoScalingGroupName=ctx["group"], Strategy="Rolling",
            DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": ctx["launch_template"],
                                                     "Version": str(number)}},
            Preferences={"CheckpointPercentages": checkpoints, "CheckpointDelay": bake, "BakeTime": bake,
                         "AutoRollback": True, "SkipMatching": True, "AlarmSpecification": {"Alarms": alarms},
                         "MinHealthyPercentage": max(0, 100 - -(-100 * policy.max_parallel // plan.size))})
    except (botocore.exceptions.ClientError, botocore.parsers.ResponseParserError) as exc:
        why = _unknown_action(exc)
        if why is None:
            raise GoldenError(f"AWS autoscaling StartInstanceRefresh for {ctx['group']} failed: {exc}",
                              field="aws") from None
        return None, why
    return answer["InstanceRefreshId"], None


def _follow_refresh(aws, ctx, refresh_id, plan, record, alarms, interval, timeout, log):
    """Poll a native instance refresh to its end, marking each wave passed as its checkpoint is reached."""
    deadline = time.monotonic() + timeout
    waves = iter([w for w in record.data["waves"] if w["result"] == "pending"])
    wave = next(waves, None)
    while True:
        (r,) = aws.call("autoscaling", ctx["region"], "describe_instance_refreshes", AutoScalingGroupName=ctx["group"],
                        InstanceRefreshIds=[refresh_id])["InstanceRefreshes"]
        done = r.get("PercentageComplete") or 0
        while wave is not None and done >= round(100 * wave["target"] / plan.size):
            wave["measurements"].extend(_measure(aws, ctx, alarms))
            wave.update(result="passed", finished_at=now_iso())
            log(f"wave {wave['name']}: checkpoint {done} % reached")
            wave = next(waves, None)
        record.save()
        if r["Status"] in REFRESH_DONE:
            return r
        if time.monotonic() > deadline:
            raise GoldenError(f"instance refresh {refresh_id} of {ctx['group']} did not end within {timeout} s",
                              field="fleet")
        time.sleep(interval)


def rollout(store, fleet, version, policy, log=print, alarms=None, emergency=False, cve=None, refresh="auto",
            timeout=900, on_wave=None, aws=None):
    """Roll `version` out to the AWS fleet in the policy's waves; the rollout record (completed or rolled_back).

        record = rollout(Store("store"), "web", "golden-web-2026.12.01+2", "policies/web.yaml")
    `alarms` overrides the fleet's; `refresh` is "auto" (native instance refresh where the endpoint has it),
    "native" (refuse without it) or "waves" (the primitives); `on_wave(name, instance_ids)` is called when a
    wave's new instances are in service, before its bake.
    """
    aws = aws or Aws()
    if refresh not in REFRESH_MODES:
        raise GoldenError(f"refresh is one of {', '.join(REFRESH_MODES)}, not {refresh!r}", field="refresh")
    policy = _load_policy(policy)
    fleets, fl = _fleet(store, fleet)
    ctx = _context(fl)
    ami = _usable(store, version, ctx["region"], aws)
    alarms = _check_alarms(aws, ctx["region"], list(alarms if alarms is not None else fl.extra["aws"]["alarms"]))
    with fleets.lock(fleet, f"rollout to {version}"):
        _refuse_unfinished(store, fleet)
        if fl.versions == [version]:
            raise GoldenError(f"fleet {fleet} runs {version} already", field="version")
        previous, previous_version = _pinned(aws, ctx, fl)
        planned = plan_waves(policy, [h["name"] for h in fl.hosts], emergency=emergency)
        interval = min(g.interval for g in policy.gates)
        for line in planned.lines():
            log(line)
        log(f"the policy's Prometheus gates ({', '.join(g.metric.name for g in policy.gates)}) are not measured on "
            f"AWS: each wave is judged by the CloudWatch alarms {', '.join(alarms)}")
        number = _template_version(aws, ctx, version, ami, fl.extra["aws"].get("instance_type", "t3.micro"))
        fl.extra["aws"]["template_versions"][version] = number
        fleets.save(fl)
        record = _Rollout(store, fl, version, policy.path, emergency, cve, {
            "region": ctx["region"], "group": ctx["group"], "launch_template": ctx["launch_template"],
            "from_template_version": previous, "to_template_version": number, "alarms": alarms, "method": None})
        record.data["waves"] = [{"name": w.name, "hosts": list(w.hosts), "target": w.target, "started_at": None,
                                 "finished_at": None, "result": "pending", "replacements": [], "measurements": []}
                                for w in planned.waves]
        record.data["waves"] += [{"name": s.name, "hosts": [], "target": s.target, "started_at": None,
                                  "finished_at": None, "result": "skipped", "reason": s.reason, "replacements": [],
                                  "measurements": []} for s in planned.skipped]
        record.save()
        log(f"rollout {record.id}: {ctx['group']} from launch template version {previous} ({previous_version}) "
            f"to {number} ({version})")
        try:
            refresh_id, why = (None, "refresh=waves") if refresh == "waves" else _start_refresh(
                aws, ctx, number, planned, policy, alarms)
            if refresh_id is None and refresh == "native":
                raise GoldenError(f"the AWS endpoint does not implement autoscaling StartInstanceRefresh: {why}",
                                  field="refresh")
            if refresh_id is not None:
                return _native(aws, ctx, fleets, fl, record, refresh_id, planned, alarms, interval, previous,
                               previous_version, version, ami, timeout, log)
            if refresh == "auto":
                log(f"StartInstanceRefresh is not available ({why}): replacing instances wave by wave from "
                    "launch template versions and terminate-in-group")
            record.data["aws"]["method"] = "terminate-in-group"
            _pin(aws, ctx, number)
            return _waves(aws, ctx, fleets, fl, record, planned, policy, alarms, interval, previous, previous_version,
                          version, ami, timeout, on_wave, log)
        except Exception as exc:
            if record.data["result"] == "running":
                record.finish("failed", _undo(aws, ctx, fleets, fl, record, previous, previous_version,
                                              policy.max_parallel, timeout, exc, log))
            raise


def _undo(aws, ctx, fleets, fl, record, previous, previous_version, max_parallel, timeout, exc, log):
    """After an error mid-rollout, return a group that was pinned to the new version; the record's reason."""
    reason = f"{type(exc).__name__}: {exc}"
    if record.data["aws"]["method"] != "terminate-in-group":
        return reason
    log(f"{reason}; returning {ctx['group']} to {previous_version}")
    try:
        _return_to(aws, ctx, fleets, fl, previous, previous_version, max_parallel, timeout, log)
    except GoldenError as failed:
        return f"{reason}; returning to {previous_version} failed too: {failed}"
    return f"{reason}; every instance runs {previous_version} again"


def _waves(aws, ctx, fleets, fl, record, planned, policy, alarms, interval, previous, previous_version, version, ami,
           timeout, on_wave, log):
    for planned_wave, wave in zip(planned.waves, record.data["waves"]):
        wave.update(started_at=now_iso(), result="running")
        record.save()
        log(f"wave {wave['name']}: replacing {', '.join(wave['hosts'])}")
        new = []
        for batch in planned_wave.batches:
            done = _replace(aws, ctx, fleets, fl, list(batch), version, ami, timeout, log)
            wave["replacements"] += done
            new += [r["instance"] for r in done]
            record.save()
        if on_wave:
            on_wave(wave["name"], new)
        log(f"wave {wave['name']}: baking {planned_wave.bake} s, alarms {', '.join(alarms)}")
        failed = _bake_and_analyse(aws, ctx, alarms, planned_wave.bake, interval, wave)
        wave.update(finished_at=now_iso(), result="failed" if failed else "passed")
        record.save()
        if failed:
            why = (f"wave {wave['name']}: alarm {failed['metric']} is {failed['value'] or 'missing'} "
                   f"({failed['reason']}), not OK")
            log(why + f"; rolling back to {previous_version}")
            return _roll_back(aws, ctx, fleets, fl, record, previous, previous_version, policy.max_parallel, timeout,
                              why, {"wave": wave["name"], "metric": failed["metric"], "value": failed["value"],
                                    "threshold": failed["threshold"], "reason": failed["reason"]}, log)
    instances, _ = _instances(aws, ctx)
    wrong = sorted(i for i, (a, _) in instances.items() if a != ami)
    if wrong:
        return record.finish("failed", f"after the last wave {', '.join(wrong)} do not run {version}")
    log(f"fleet {fl.fleet}: every instance runs {version}")
    return record.finish("completed")


def _roll_back(aws, ctx, fleets, fl, record, previous, previous_version, max_parallel, timeout, why, failure, log):
    wave = {"name": "rollback", "hosts": [h["name"] for h in fl.hosts if h["version"] != previous_version],
            "started_at": now_iso(), "finished_at": None, "result": "running", "replacements": [], "measurements": []}
    record.data["waves"].append(wave)
    record.save()
    try:
        wave["replacements"] = _return_to(aws, ctx, fleets, fl, previous, previous_version, max_parallel, timeout, log)
    except GoldenError as exc:
        wave.update(result="failed", finished_at=now_iso())
        return record.finish("failed", f"{why}; the rollback did not finish: {exc}", failure)
    wave.update(result="passed", finished_at=now_iso())
    log(f"fleet {fl.fleet}: every instance runs {previous_version} again")
    return record.finish("rolled_back", why, failure)


def _native(aws, ctx, fleets, fl, record, refresh_id, planned, alarms, interval, previous, previous_version, version,
            ami, timeout, log):
    record.data["aws"].update(method="instance-refresh", instance_refresh=refresh_id)
    record.save()                   # a resume cancels this refresh: its id is on disk before anything else
    log(f"instance refresh {refresh_id}: checkpoints at "
        + ", ".join(f"{round(100 * w.target / planned.size)} %" for w in planned.waves))
    r = _follow_refresh(aws, ctx, refresh_id, planned, record, alarms, interval, timeout * len(planned.waves), log)
    instances, _ = _instances(aws, ctx)
    fl.hosts = [_host(i, version if a == ami else previous_version, t)
                for i, (a, t) in sorted(instances.items(), key=lambda kv: kv[1][1])]
    fleets.save(fl)
    if r["Status"] == "Successful" and all(a == ami for a, _ in instances.values()):
        _pin(aws, ctx, record.data["aws"]["to_template_version"])
        return record.finish("completed")
    readings = _measure(aws, ctx, alarms)
    failed = next((m for m in readings if not m["passed"]), None)
    wave = next((w for w in record.data["waves"] if w["result"] == "pending"), None)
    failure = {"wave": wave["name"] if wave else None, "metric": failed["metric"] if failed else None,
               "value": failed["value"] if failed else None, "threshold": "state OK",
               "reason": r.get("StatusReason", "")}
    if wave:
        wave.update(result="failed", finished_at=now_iso(), measurements=wave["measurements"] + readings)
    why = f"instance refresh {refresh_id} ended {r['Status']}: {r.get('StatusReason', '')}"
    if r["Status"] == "RollbackSuccessful" and all(a != ami for a, _ in instances.values()):
        _pin(aws, ctx, previous)
        return record.finish("rolled_back", why, failure)
    return _roll_back(aws, ctx, fleets, fl, record, previous, previous_version, 1, timeout, why, failure, log)


def rollback(store, fleet, log=print, max_parallel=1, timeout=900, aws=None):
    """Return the AWS fleet to the version before its current one (manual), recorded as a rollout.

        record = rollback(Store("store"), "web")     # record["to"] is the previous version
    """
    aws = aws or Aws()
    fleets, fl = _fleet(store, fleet)
    ctx = _context(fl)
    with fleets.lock(fleet, "rollback"):
        _refuse_unfinished(store, fleet)
        current, current_version = _pinned(aws, ctx, fl)
        earlier = sorted((n, v) for v, n in fl.extra["aws"]["template_versions"].items() if n < current)
        if not earlier:
            raise GoldenError(f"fleet {fleet} has no version before {current_version} to roll back to", field="fleet")
        number, version = earlier[-1]
        _usable(store, version, ctx["region"], aws)
        record = _Rollout(store, fl, version, None, False, None, {
            "region": ctx["region"], "group": ctx["group"], "launch_template": ctx["launch_template"],
            "from_template_version": current, "to_template_version": number, "alarms": [], "method": "manual rollback"})
        return _roll_back(aws, ctx, fleets, fl, record, number, version, max_parallel, timeout,
                          f"manual rollback from {current_version}", None, log)


# ------------------------------------------------------------------ interrupted rollouts

def _unfinished(store, fleet):
    """[(path, record)] of the fleet's AWS rollout records still "running", oldest first. Under the fleet's lock
    (which a live controller holds until its rollout ends) such a record is one whose controller died."""
    d = os.path.join(store.root, "rollouts", fleet)
    out = []
    for rid in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        path = os.path.join(d, rid, "rollout.json")
        if os.path.isfile(path):
            data = read_json(path, "rollout record")
            if isinstance(data, dict) and data.get("engine") == ENGINE and data.get("result") == "running":
                out.append((path, data))
    return out


def _refuse_unfinished(store, fleet):
    unfinished = _unfinished(store, fleet)
    if unfinished:
        path, data = unfinished[-1]
        raise GoldenError(f"rollout {data['id']} of {fleet} (to {data.get('to')}) did not finish ({path} says "
                          f"running): run `golden rollout {fleet} --resume` first", field="fleet")


def _cancel_refresh(aws, ctx, refresh_id, timeout, log):
    """Cancel the group's instance refresh (the dead controller's) and wait until it has ended; an endpoint
    without CancelInstanceRefresh, or with no refresh active, has nothing to cancel."""
    import botocore.exceptions
    import botocore.parsers
    try:
        aws.client("autoscaling", ctx["region"]).cancel_instance_refresh(AutoScalingGroupName=ctx["group"])
    except (botocore.exceptions.ClientError, botocore.parsers.ResponseParserError) as exc:
        why = _unknown_action(exc)
        if why is not None:
            log(f"CancelInstanceRefresh is not available ({why}): no instance refresh to cancel")
            return
        if isinstance(exc, botocore.exceptions.ClientError) and \
                exc.response.get("Error", {}).get("Code") == "ActiveInstanceRefreshNotFound":
            log(f"{ctx['group']}: no instance refresh is active")
            return
        raise GoldenError(f"AWS autoscaling CancelInstanceRefresh for {ctx['group']} failed: {exc}",
                          field="aws") from None
    log(f"instance refresh {refresh_id or '(not recorded)'} of {ctx['group']}: cancelling")
    ids = {"InstanceRefreshIds": [refresh_id]} if refresh_id else {}
    deadline = time.monotonic() + timeout
    while True:
        refreshes = aws.call("autoscaling", ctx["region"], "describe_instance_refreshes",
                             AutoScalingGroupName=ctx["group"], **ids)["InstanceRefreshes"]
        active = [r for r in refreshes if r["Status"] not in REFRESH_DONE]
        if not active:
            return
        if time.monotonic() > deadline:
            raise GoldenError(f"instance refresh {active[0]['InstanceRefreshId']} of {ctx['group']} is still "
                              f"{active[0]['Status']} {timeout} s after CancelInstanceRefresh", field="fleet")
        time.sleep(POLL)


def _resync(aws, ctx, fleets, fleet, timeout, log):
    """Make the fleet record list exactly the group's instances, each with the image version of the AMI it runs
    (mapped through the fleet's numbered template versions): a controller that died between terminating an
    instance and recording its replacement leaves the record stale. Returns {"found": [...], "gone": [...]}."""
    instances = _settle(aws, ctx, lambda got: True, timeout, "a settled group (no instance launching or terminating)")
    numbers = {n: v for v, n in fleet.extra["aws"]["template_versions"].items()}
    by_ami = {v["LaunchTemplateData"].get("ImageId"): numbers[v["VersionNumber"]]
              for v in aws.call("ec2", ctx["region"], "describe_launch_template_versions",
                                LaunchTemplateId=ctx["launch_template"],
                                Versions=[str(n) for n in sorted(numbers)])["LaunchTemplateVersions"]
              if v["VersionNumber"] in numbers}

    def version_of(instance_id):
        image = instances[instance_id][0]
        if image not in by_ami:
            log(f"  {instance_id} runs {image}, which no launch template version of the fleet names")
        return by_ami.get(image)

    known = {h["name"] for h in fleet.hosts}
    found = sorted((i for i in instances if i not in known), key=lambda i: instances[i][1])
    gone = [h["name"] for h in fleet.hosts if h["name"] not in instances]
    fresh = iter(found)
    hosts = []
    for h in fleet.hosts:                   # slot by slot: a recorded instance, or one the record missed
        if h["name"] in instances:
            hosts.append(dict(h, version=version_of(h["name"])))
        elif (i := next(fresh, None)) is not None:
            hosts.append(_host(i, version_of(i), instances[i][1]))
    hosts += [_host(i, version_of(i), instances[i][1]) for i in fresh]
    for i in gone:
        log(f"  {i} is no longer in {ctx['group']}: dropped from the fleet record")
    for i in found:
        log(f"  {i} ({version_of(i) or 'unknown version'}) is in {ctx['group']} but was not in the fleet record: "
            "added")
    changed = [h["name"] for h in hosts if h["name"] in known and h["version"] != fleet.host(h["name"])["version"]]
    for i in changed:
        log(f"  {i} runs {next(h['version'] for h in hosts if h['name'] == i)}, not what the fleet record said")
    fleet.hosts = hosts
    fleets.save(fleet)
    return {"found": found, "gone": gone, "corrected": changed}


def resume(store, fleet, log=print, max_parallel=None, timeout=900, aws=None):
    """Finish the AWS fleet's interrupted rollout (its controller died: kill -9, a lost machine) by rolling it
    back; the rollout record, rolled_back (failed if the group could not be returned).

        record = resume(Store("store"), "web")     # record["failure"]["reason"] == "controller interrupted"

    The bake and the alarm readings of the wave the controller was in died with it, and finishing the rollout
    without them would skip its gates: the group returns to the numbered version recorded before the rollout
    began (an instance refresh of the dead controller is cancelled first), after the fleet record is made to
    list the group's actual instances. An interrupted manual rollback is finished instead (to its target).
    `max_parallel` defaults to the recorded policy's (1 without one).
    """
    aws = aws or Aws()
    fleets = Fleets(store.root)
    with fleets.lock(fleet, "resume of an interrupted rollout"):
        _, fl = _fleet(store, fleet)
        unfinished = _unfinished(store, fleet)
        if not unfinished:
            raise GoldenError(f"fleet {fleet} has no unfinished AWS rollout to resume", field="fleet")
        if len(unfinished) > 1:
            raise GoldenError(f"fleet {fleet} has {len(unfinished)} unfinished rollouts "
                              f"({', '.join(p for p, _ in unfinished)}): golden never starts one while another is "
                              "unfinished, so these records were not written by it; resolve them by hand",
                              field="fleet")
        record = _Rollout.load(unfinished[0][0])
        a = record.data["aws"]
        ctx = _context(fl)
        manual = a.get("method") == "manual rollback"
        # a rollout goes back to the number it began from; an interrupted manual rollback goes on to its target
        previous = a["to_template_version"] if manual else a["from_template_version"]
        by_number = {n: v for v, n in fl.extra["aws"]["template_versions"].items()}
        if previous not in by_number:
            raise GoldenError(f"rollout {record.id} returns to launch template version {previous}, which the fleet "
                              "record does not map to an image version", field="fleet")
        previous_version = by_number[previous]
        if max_parallel is None:
            max_parallel = 1
            if record.data.get("policy"):
                try:
                    max_parallel = _load_policy(record.data["policy"]).max_parallel
                except GoldenError as exc:
                    log(f"the recorded policy does not load ({exc}): returning one instance at a time")
        waves = record.data["waves"]
        running = [w for w in waves if w["result"] == "running"]
        ahead = next((w for w in waves if w["result"] == "pending"), None)
        failed = next((w for w in waves if w["result"] == "failed"), None)
        if manual:
            failure, why = None, f"the manual rollback to {previous_version} was interrupted (the controller died)"
        elif failed is not None and running and all(w["name"] == "rollback" for w in running):
            # it died returning the group after a failed wave: that wave's failing reading is the failure
            m = next((m for m in reversed(failed["measurements"]) if not m["passed"]), None) or {}
            failure = {"wave": failed["name"], "metric": m.get("metric"), "value": m.get("value"),
                       "threshold": m.get("threshold"), "reason": "controller interrupted during the rollback"}
            why = f"wave {failed['name']} failed and its rollback was interrupted (the controller died)"
        else:
            if running:
                name, why = running[0]["name"], f"wave {running[0]['name']} was interrupted (the controller died)"
            elif ahead:
                name, why = ahead["name"], f"the controller died before wave {ahead['name']} began"
            else:
                name = next((w["name"] for w in reversed(waves) if w["result"] != "skipped"), None)
                why = "the controller died after the last wave, before the fleet was verified"
            failure = {"wave": name, "metric": None, "value": None, "threshold": None,
                       "reason": "controller interrupted"}
        log(f"resuming rollout {record.id} of {fleet} to {record.data['to']} "
            f"({a.get('method') or 'no method chosen yet'}): {why}; "
            + (f"going on to {previous_version}" if manual else "its bake and alarm readings died with it, so the "
               f"rollout is rolled back to {previous_version}") + f" (launch template version {previous})")
        record.data["resumed"] = {"at": now_iso(), "pid": os.getpid()}
        record.save()
        if a.get("method") in (None, "instance-refresh"):      # None: a refresh may have started, unrecorded
            _cancel_refresh(aws, ctx, a.get("instance_refresh"), timeout, log)
        log(f"{ctx['group']}: reading its instances into the fleet record")
        record.data["resumed"]["resync"] = _resync(aws, ctx, fleets, fl, timeout, log)
        for w in running:
            w.update(result="interrupted", finished_at=now_iso())
        record.save()
        done = _roll_back(aws, ctx, fleets, fl, record, previous, previous_version, max_parallel, timeout, why,
                          failure, log)
        if done["result"] != "rolled_back":
            return done
        try:
            _verify_on(aws, ctx, fl, previous, previous_version)
        except GoldenError as exc:
            return record.finish("failed", f"{why}; after the resume's rollback: {exc}", failure)
        record.data["reason"] = (f"{why}; the resume returned {ctx['group']} to {previous_version} "
                                 f"(launch template version {previous})")
        record.save()
        return record.data


def _verify_on(aws, ctx, fleet, number, version):
    """The whole group pinned to numbered `number` (image `version`) and running its AMI, exactly the fleet
    record's instances, all recorded on `version`."""
    spec = _group(aws, ctx).get("LaunchTemplate") or {}
    image = _ami_of_number(aws, ctx, number)
    instances, settled = _instances(aws, ctx)
    wrong = sorted(i for i, (a, _) in instances.items() if a != image)
    if spec.get("Version") != str(number) or not settled or wrong or \
            set(instances) != {h["name"] for h in fleet.hosts} or fleet.versions != [version]:
        raise GoldenError(f"{ctx['group']} is not wholly back on {version} (launch template version "
                          f"{spec.get('Version')}, {', '.join(wrong) or 'no instance'} on another AMI, "
                          f"{'settled' if settled else 'not settled'})", field="fleet")
