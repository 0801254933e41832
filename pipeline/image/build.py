"""`golden build`: real Packer turns the base image into a candidate qcow2 in the run directory.

The build VM is reached with a per-build key delivered on a NoCloud seed; provisioning runs the
versioned scripts in packer/scripts/ with the hardening plan resolved from the baseline.
"""

import os
import re
import shutil
import signal
import subprocess
import time

from pipeline.errors import GoldenError
from pipeline.image import hardening, keys, seed, stamp
from pipeline.paths import PACKER_DIR, ROOT
from pipeline.util import require_tool, sha256_file, write_json_atomic
from pipeline.vm import qemu

_OWN_LINE = re.compile(r"qemu\.local: (bootstrap|install-agents|hardening-cis|stamp|customize|cleanup)\b")
# A build VM that never answers SSH (the guest hung before sshd under emulation) is retried once:
# nothing ran on it yet, so a second boot changes nothing but the odds. Anything else fails at once.
SSH_TIMEOUT_MARK = "Timeout waiting for SSH"
BUILD_ATTEMPTS = 2
# The baseline's nftables rule lists (input, output); a spec's inbound openings join its input list.
FIREWALL_RULES_ID = "4.3.7"


def packer_version():
    out = subprocess.run([require_tool("packer", "packer"), "version"], capture_output=True, text=True).stdout
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def prepare_provision(spec, baseline, directory, version, skipped=None):
    """Files uploaded to the build VM: the hardening plan, agents, time servers, the image's stamp,
    customize scripts."""
    rows = _with_firewall_openings(hardening.plan_rows(baseline, spec.role, spec.level, skipped), spec)
    hardening.write_plan(directory, rows, {"role": spec.role, "level": spec.level, "image": spec.name,
                                           "baseline_sha256": baseline.sha256})
    with open(os.path.join(directory, "agents.tsv"), "w", encoding="utf-8") as fh:
        for a in spec.agents:
            fh.write(f"{a.name}\t{' '.join(a.packages)}\t{a.service}\n")
    with open(os.path.join(directory, "time-servers.txt"), "w", encoding="utf-8") as fh:
        fh.write("".join(f"{s}\n" for s in spec.time_servers))
    stamp.write(spec, version, directory)
    if spec.customize:
        cdir = os.path.join(directory, "customize")
        os.makedirs(cdir, exist_ok=True)
        for i, script in enumerate(spec.customize):
            shutil.copy(script, os.path.join(cdir, f"{i:02d}-{os.path.basename(script)}"))
    return rows


def _with_firewall_openings(rows, spec):
    """The plan with the spec's inbound openings (spec field `firewall`) after the baseline's input rules
    of 4.3.7, which the hardening writes into the company ruleset as they come."""
    if not spec.firewall_input:
        return rows
    out, added = [], False
    for row in rows:
        if row[:3] == (FIREWALL_RULES_ID, "params", "input"):
            row, added = (*row[:3], f"{row[3]} {' '.join(spec.firewall_input)}"), True
        out.append(row)
    if not added:
        raise GoldenError(f"the spec opens the firewall ({', '.join(spec.firewall_input)}) but the plan has no "
                          f"{FIREWALL_RULES_ID} input rules to add them to (is {FIREWALL_RULES_ID} skipped or not "
                          f"adopted for role {spec.role}?)", file=spec.path, field="firewall.input")
    return out


def build(spec, run, base, baseline, *, cache_dir, log, skipped=None):
    packer = require_tool("packer", "packer")
    require_tool("xorriso", "xorriso")   # Packer makes the cd_files seed ISO with it
    work = run.path("build")
    provision = os.path.join(work, "provision")
    os.makedirs(provision, exist_ok=True)
    key_path, public = keys.new_keypair(work, seed.BUILD_USER)
    seed_files = seed.write_seed(os.path.join(work, "seed"), instance_id=f"golden-build-{run.version}",
                                 hostname="golden-build", user=seed.BUILD_USER, public_key=public,
                                 groups=seed.login_groups(baseline))
    rows = prepare_provision(spec, baseline, provision, run.version, skipped)
    script, hversion = hardening.resolve_script(spec.hardening_version, work)
    hardening.stage_library(script, provision)
    accel = qemu.accelerator(cache_dir, base.path, log)
    variables = {
        "run_dir": run.dir, "provision_dir": provision, "hardening_script": script, "image_name": run.version,
        "base_image": base.path, "base_sha256": base.sha256, "accelerator": accel, "cpu_model": qemu.cpu_model(accel),
        "ssh_private_key_file": key_path, "seed_files": seed_files,
    }
    var_file = os.path.join(work, "golden.pkrvars.json")
    write_json_atomic(var_file, variables)
    output_dir = run.path("packer-output")
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)
    env = dict(os.environ, PACKER_LOG="1", PACKER_LOG_PATH=run.path("packer.log"),
               PACKER_CACHE_DIR=os.path.join(cache_dir, "packer"), CHECKPOINT_DISABLE="1")
    cmd = [packer, "build", "-color=false", "-only=qemu.local", f"-var-file={var_file}", PACKER_DIR]
    log(f"packer build ({accel}, hardening {hversion}, {len(rows)} plan rows)")
    console = run.path("build-console.log")
    for attempt in range(1, BUILD_ATTEMPTS + 1):
        try:
            _run_packer(cmd, env, run.path("packer-output.txt"), log)
            break
        except GoldenError as exc:
            detail = f"{exc}\nlast lines of the build VM's console ({console}):\n{_tail(console, 25)}"
            if SSH_TIMEOUT_MARK not in str(exc) or attempt == BUILD_ATTEMPTS:
                raise GoldenError(detail) from None
            log(f"the build VM never answered SSH; retrying the build once (attempt {attempt + 1} "
                f"of {BUILD_ATTEMPTS}). {detail}")
            for name in ("build-console.log", "packer-output.txt"):
                if os.path.exists(run.path(name)):
                    os.replace(run.path(name), run.path(f"{name}.attempt{attempt}"))
            shutil.rmtree(output_dir, ignore_errors=True)
    produced = os.path.join(output_dir, f"{run.version}.qcow2")
    if not os.path.isfile(produced):
        raise GoldenError("Packer finished but wrote no image", file=produced)
    os.replace(produced, run.artifact)
    shutil.rmtree(output_dir, ignore_errors=True)
    digest = sha256_file(run.artifact)
    hardened = _hardening_outcome(run.path("packer-output.txt"))
    log(f"hardening {hversion}: {hardened}")
    info = {"path": run.artifact, "sha256": digest, "size": os.path.getsize(run.artifact), "attempts": attempt,
            "packer": packer_version(), "hardening_version": hversion, "hardening": hardened, "accelerator": accel,
            "base": {"path": base.path, "sha256": base.sha256, "origin": base.origin}}
    write_json_atomic(run.path("artifact.json"), info)
    os.unlink(key_path)   # the build key dies with the build
    log(f"candidate {os.path.basename(run.artifact)} sha256 {digest[:16]}...")
    return info


ALREADY_HARDENED = re.compile(r"hardening-cis \S+: already applied: ")


def _hardening_outcome(output):
    """"applied", or "already applied" when the base's record showed this code, plan and package set (a
    layer on an image hardened the same way: hardening-cis.sh had nothing to do); "unknown" without output."""
    try:
        with open(output, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return "unknown"
    return "already applied" if ALREADY_HARDENED.search(text) else "applied"


def _tail(path, lines):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]) or "(empty)"
    except OSError:
        return "(none written)"


def _run_packer(cmd, env, transcript, log):
    """Run Packer in its own process group, stream its output, and never leave it (or its QEMU) behind."""
    with open(transcript, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=ROOT, start_new_session=True,
                                preexec_fn=lambda: qemu.set_death_signal(signal.SIGTERM))
        try:
            for line in proc.stdout:
                out.write(line)
                line = line.rstrip()
                if line.startswith("==>") or _OWN_LINE.search(line) or "error" in line.lower():
                    log(line.removeprefix("==> "))
            proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)       # let Packer stop its VM and clean up
                deadline = time.monotonic() + 60
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.5)
            try:
                os.killpg(proc.pid, signal.SIGKILL)      # anything left in its group (its QEMU)
            except ProcessLookupError:
                pass
    if proc.returncode != 0:
        with open(transcript, encoding="utf-8") as fh:
            tail = "".join(fh.readlines()[-20:])
        raise GoldenError(f"packer build failed (exit {proc.returncode}):\n{tail}", file=transcript)
