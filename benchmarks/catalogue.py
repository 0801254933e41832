#!/usr/bin/env python3
"""Benchmark: the CIS catalogue against one booted candidate, facts gathered once per host, beside
the same checks done the naive way (one remote command per attribute), in the same run.

    .venv/bin/python benchmarks/catalogue.py --image runs/<v>/<v>.qcow2 --role bastion   # boots it
    .venv/bin/python benchmarks/catalogue.py --hosts 'paramiko://...' --role bastion     # a VM you have

Reports, for the selected role and level (bastion: Level 1 + Level 2):
  gathered  one fact collection for every control, then every check judged locally
  naive     each attribute of each control fetched by its own remote command, then judged
  pytest    `pytest cis_checks` as the pipeline runs it (2 xdist workers), wall time
and checks that both ways reach the same verdict for every control.
"""

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import testinfra  # noqa: E402

from pipeline.checks import scenarios  # noqa: E402
from pipeline.checks.authoring import ControlFailed, add_needs, findings_for  # noqa: E402
from pipeline.checks.baseline import Baseline  # noqa: E402
from pipeline.checks.catalogue import id_key  # noqa: E402
from pipeline.checks.facts import ENVIRONMENT, Facts, Request  # noqa: E402
from pipeline.checks.kinds import KINDS, NotApplicable  # noqa: E402
from pipeline.image.seed import TEST_USER  # noqa: E402
from pipeline.paths import ROOT  # noqa: E402
from pipeline.vm.boot import booted  # noqa: E402


class Counting:
    """A testinfra host whose remote commands are counted."""

    def __init__(self, host):
        self.host, self.commands = host, 0

    def run(self, command, *args, **kw):
        self.commands += 1
        return self.host.run(command, *args, **kw)

    def __getattr__(self, name):
        return getattr(self.host, name)


def controls(baseline, role, level):
    """(id, python function or None, needs) for every control with a check at this role and level."""
    out = []
    for cis_id, s in scenarios.collect().items():
        if not baseline.applies(cis_id, role, level):
            continue
        fn, needs = None, ()
        if "::" in s.where:
            path, name = s.where.split("::")
            module = scenarios.load_module(path)
            fn = getattr(module, name)
            mark = next(m for m in fn.pytestmark if m.name == "cis")
            needs = mark.kwargs.get("needs") or ()
        out.append((cis_id, fn, needs))
    return sorted(out, key=lambda c: id_key(c[0]))


def request_for(baseline, cis_id, needs):
    req = Request()
    for kind, value in baseline.values(cis_id).items():
        KINDS[kind].needs(value, req)
    add_needs(req, needs, baseline.values(cis_id))
    return req


def attributes(req):
    """The request split into one request per attribute: each section, each parameter on its own."""
    for name in sorted(req.sections):
        one = Request()
        one.add(name)
        yield one
    for name, values in sorted(req.params.items()):
        for value in sorted(values):
            one = Request()
            one.add(name, value)
            yield one


def judge(baseline, cis_id, fn, facts, host):
    values = baseline.values(cis_id)
    try:
        if fn is None:
            return "fail" if findings_for(values, facts) else "pass"
        given = {"facts": facts, "control_values": values, "baseline": baseline, "test_user": TEST_USER,
                 "host": host}
        fn(**{p: given[p] for p in inspect.signature(fn).parameters})
        return "pass"
    except (ControlFailed, AssertionError):
        return "fail"
    except NotApplicable:
        return "not applicable"
    except Exception as exc:  # noqa: BLE001 - the benchmark reports, it does not judge crashes
        return f"error: {type(exc).__name__}"


def gathered(host, baseline, selected):
    t0 = time.monotonic()
    req = Request()
    for cis_id, fn, needs in selected:
        req.merge(request_for(baseline, cis_id, needs))
    facts = Facts.parse(host.run(req.script()).stdout)
    verdicts = {cis_id: judge(baseline, cis_id, fn, facts, host) for cis_id, fn, needs in selected}
    return time.monotonic() - t0, verdicts


def naive(host, baseline, selected):
    t0 = time.monotonic()
    verdicts = {}
    for cis_id, fn, needs in selected:
        sections = {}
        for one in attributes(request_for(baseline, cis_id, needs)):
            # One attribute per command: a section asked for several times (a stat per path)
            # comes back in pieces, joined here.
            # The attribute's own command, without the collector's concurrency wrapper.
            command = "\n".join([ENVIRONMENT, *one.parts()])
            for name, text in Facts.parse(host.run(command).stdout).sections.items():
                sections.setdefault(name, []).append(text)
        facts = Facts({name: "\n".join(pieces) for name, pieces in sections.items()})
        verdicts[cis_id] = judge(baseline, cis_id, fn, facts, host)
    return time.monotonic() - t0, verdicts


def pytest_wall(hostspec, role, level):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "cis_checks", f"--hosts={hostspec}", "--sudo",
                           f"--role={role}", f"--level={level}", "-n", "2", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True)
    return time.monotonic() - t0, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]


def measure(hostspec, role, level):
    baseline = Baseline.load()
    selected = controls(baseline, role, level)
    fast_host = Counting(testinfra.get_host(hostspec, sudo=True))
    fast_s, fast_v = gathered(fast_host, baseline, selected)
    slow_host = Counting(testinfra.get_host(hostspec, sudo=True))
    slow_s, slow_v = naive(slow_host, baseline, selected)
    py_s, py_line = pytest_wall(hostspec, role, level)
    differ = {i: (fast_v[i], slow_v[i]) for i in fast_v if fast_v[i] != slow_v[i]}
    return {"role": role, "level": level, "controls": len(selected),
            "gathered": {"seconds": round(fast_s, 2), "remote_commands": fast_host.commands},
            "naive": {"seconds": round(slow_s, 2), "remote_commands": slow_host.commands},
            "speedup": round(slow_s / fast_s, 1) if fast_s else None,
            "command_ratio": round(slow_host.commands / max(1, fast_host.commands), 1),
            "pytest_catalogue": {"seconds": round(py_s, 1), "summary": py_line},
            "verdicts_differ": differ, "failing": sorted(i for i, v in fast_v.items() if v != "pass")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--image", help="boot this qcow2 (ephemeral overlay) for the benchmark")
    target.add_argument("--hosts", help="a testinfra host spec (with --sudo rights)")
    ap.add_argument("--role", default="bastion", help="role (default bastion: Level 1 + Level 2)")
    ap.add_argument("--level", type=int, choices=(1, 2), default=None)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    level = args.level or Baseline.load().level_for(args.role)
    if args.image:
        with booted(args.image, tempfile.mkdtemp(prefix="golden-bench-"),
                    cache_dir=os.environ.get("GOLDEN_CACHE", os.path.expanduser("~/.cache/golden")),
                    log=lambda m: print(f"[boot] {m}", file=sys.stderr)) as cand:
            result = measure(cand.hostspec, args.role, level)
    else:
        result = measure(args.hosts, args.role, level)
    print(f"{result['controls']} controls, role {result['role']}, level {result['level']}")
    print(f"  gathered once : {result['gathered']['seconds']:7.2f} s  {result['gathered']['remote_commands']:5d} remote commands")
    print(f"  naive         : {result['naive']['seconds']:7.2f} s  {result['naive']['remote_commands']:5d} remote commands")
    print(f"  ratio         : {result['speedup']}x faster, {result['command_ratio']}x fewer commands")
    print(f"  pytest (the pipeline's way, whole catalogue): {result['pytest_catalogue']['seconds']} s  "
          f"({result['pytest_catalogue']['summary']})")
    if result["verdicts_differ"]:
        print(f"  verdicts differ: {result['verdicts_differ']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
