"""Boot a candidate for testing: ephemeral overlay, per-boot key and test user, digest guard.

    with booted(artifact, run_dir / "boot", cache_dir=cache, log=print) as cand:
        cand.hostspec      # paramiko://golden-candidate?ssh_config=... for testinfra (--sudo)
        cand.vm.run("sudo id")

The artifact's sha256 is taken before the boot and checked after; a difference is an error,
because tests must never change what will be published.
"""

import contextlib
import os
import time
import urllib.parse
import uuid

from pipeline.errors import GoldenError
from pipeline.image import keys, seed
from pipeline.util import sha256_file, write_json_atomic
from pipeline.vm import ntp, qemu

HOST_ALIAS = "golden-candidate"


class Candidate:
    def __init__(self, vm, key_path, ssh_config, digest):
        self.vm = vm
        self.key_path = key_path
        self.ssh_config = ssh_config
        self.digest = digest
        self.user = seed.TEST_USER
        self.hostspec = f"paramiko://{HOST_ALIAS}?ssh_config={urllib.parse.quote(ssh_config)}"
        self.timings = {}

    def reboot(self, log=print, timeout=None):
        """Reboot the guest and wait until it answers SSH and finishes booting again (the overlay
        keeps its state). The guest shuts down by itself (`systemctl reboot`); QEMU, started with
        -no-reboot, exits at the reset, and a new QEMU process boots the same overlay (see
        qemu.VM.power_cycle). TIMEOUT defaults to reboot_timeout() of this candidate's first boot.
        Returns {"seconds_to_ssh", "seconds_to_ready", "system_state"}."""
        timeout = timeout or reboot_timeout(self.timings.get("seconds_to_ready"))
        boot_id = self.vm.run("cat /proc/sys/kernel/random/boot_id")[1].strip()
        with contextlib.suppress(GoldenError):    # the session may drop, or QEMU exit at the reset, before it returns
            self.vm.run("sudo systemctl reboot", check=False, timeout=30)
        t0 = time.monotonic()
        self.vm.power_cycle(timeout=min(180, timeout))
        self.vm.wait_ssh(self.user, self.key_path, timeout=max(5, t0 + timeout - time.monotonic()))
        now_id = self.vm.run("cat /proc/sys/kernel/random/boot_id", timeout=30)[1].strip()
        if now_id == boot_id:
            raise GoldenError("the candidate answered with the boot id it had before the reboot")
        record = {"seconds_to_ssh": round(time.monotonic() - t0, 1)}
        _, state, _ = self.vm.run("sudo systemctl is-system-running --wait", check=False,
                                  timeout=max(10, t0 + timeout - time.monotonic()))
        record.update(system_state=state.strip(), seconds_to_ready=round(time.monotonic() - t0, 1))
        log(f"back after reboot: SSH in {record['seconds_to_ssh']}s, {record['system_state']} in "
            f"{record['seconds_to_ready']}s")
        return record


def write_ssh_config(path, port, user, key_path):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
                 f"  IdentityFile {key_path}\n  IdentitiesOnly yes\n"
                 "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    return path


def reboot_timeout(first_boot_seconds, floor=420, cap=900):
    """How long a reboot may take: three times the first boot's time to ready (a guest that booted slowly, on a
    slow or busy machine, reboots slowly too, and the load can grow between the two: under TCG with three
    guests on two cores a first boot took 274 s to SSH and its reboot more than the 300 s it was given; next to
    a 4-host fleet under traffic a first boot was ready in 138 s and its reboot not within 300 s), at least
    FLOOR, at most CAP seconds. Only a reboot that fails waits this long."""
    if not first_boot_seconds or first_boot_seconds <= 0:
        return floor
    return int(max(floor, min(cap, 3 * first_boot_seconds)))


@contextlib.contextmanager
def booted(image, workdir, *, cache_dir, log=print, groups=None, timeout=600, memory=1024, cpus=2,
           extra_args=(), attempt=None):
    """The candidate booted for the block; boot.json (with `attempt`, the run attempt's id) in workdir.
    The per-boot private key is deleted when the block ends, however it ends."""
    image = os.path.abspath(image)
    if not os.path.isfile(image):
        raise GoldenError("candidate image not found", file=image)
    os.makedirs(workdir, exist_ok=True)
    log(f"sha256 of {os.path.basename(image)} before boot")
    digest = sha256_file(image)
    key_path, public = keys.new_keypair(workdir, seed.TEST_USER)
    try:
        yield from _boot(image, workdir, digest, key_path, public, cache_dir=cache_dir, log=log, groups=groups,
                         timeout=timeout, memory=memory, cpus=cpus, extra_args=extra_args, attempt=attempt)
    finally:
        os.unlink(key_path)       # the VM is gone: nothing may log in with it again, nor find it on disk


def _boot(image, workdir, digest, key_path, public, *, cache_dir, log, groups, timeout, memory, cpus, extra_args,
          attempt):
    groups = seed.login_groups() if groups is None else groups
    seed_dir = os.path.join(workdir, "seed")
    seed.write_seed(seed_dir, instance_id=f"golden-boot-{uuid.uuid4()}", hostname="candidate",
                    user=seed.TEST_USER, public_key=public, groups=groups)
    iso = seed.make_iso(seed_dir, os.path.join(workdir, "seed.iso"))
    accel = qemu.accelerator(cache_dir, image, log)
    vm = qemu.VM(image, workdir, accel=accel, seed_iso=iso, memory=memory, cpus=cpus, extra_args=extra_args,
                 no_reboot=True)
    record = {"attempt": attempt, "image": image, "sha256_before": digest, "accelerator": accel}
    try:
        with ntp.host_ntp_server(workdir, log), vm:
            log(f"QEMU started ({accel}); waiting for SSH on 127.0.0.1:{vm.port}")
            record["seconds_to_ssh"] = round(vm.wait_ssh(seed.TEST_USER, key_path, timeout=timeout), 1)
            log(f"SSH answered after {record['seconds_to_ssh']}s; waiting for boot to finish")
            _, state, _ = vm.run("sudo systemctl is-system-running --wait", check=False, timeout=timeout)
            record["system_state"] = state.strip()
            record["seconds_to_ready"] = round(time.monotonic() - vm.started_at, 1)
            log(f"system {record['system_state']} after {record['seconds_to_ready']}s")
            _, analyze, _ = vm.run("systemd-analyze time; systemd-analyze blame --no-pager | head -n 15",
                                   check=False, timeout=60)
            record["systemd_analyze"] = analyze.strip().splitlines()
            cand = Candidate(vm, key_path, write_ssh_config(os.path.join(workdir, "ssh_config"), vm.port,
                                                            seed.TEST_USER, key_path), digest)
            cand.timings = record
            write_json_atomic(os.path.join(workdir, "boot.json"), record)
            yield cand
    finally:
        record["console_log"] = vm.console
        write_json_atomic(os.path.join(workdir, "boot.json"), record)
    after = sha256_file(image)
    record["sha256_after"] = after
    write_json_atomic(os.path.join(workdir, "boot.json"), record)
    if after != digest:
        raise GoldenError(f"the artifact changed while it was tested: sha256 {digest} before, {after} after",
                          file=image)
