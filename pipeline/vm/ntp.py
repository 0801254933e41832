"""A real NTP server on the host side of a test boot: chronyd serving the host's clock on
127.0.0.1:123, which QEMU's user network shows the guest as 10.0.2.2 (the default spec's time server).

    with host_ntp_server(workdir, log):
        ...   # the candidate's chrony can synchronise; the acceptance suite checks that it does
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

from pipeline.util import stop_process
from pipeline.vm.qemu import set_death_signal

CONF = """\
# Written by golden for a test boot: serve this host's clock, never adjust it.
port 123
bindaddress 127.0.0.1
allow all
local stratum 8
cmdport 0
pidfile {dir}/chronyd.pid
driftfile {dir}/chrony.drift
"""


def _port_free():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", 123))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def host_ntp_server(workdir, log):
    chronyd = shutil.which("chronyd") or ("/usr/sbin/chronyd" if os.path.exists("/usr/sbin/chronyd") else None)
    if not _port_free():
        log("NTP: 127.0.0.1:123 is already served on this host; the guest's time server uses it")
        yield None
        return
    if chronyd is None:
        log("NTP: chronyd is not installed on this host (apt-get install chrony): no time server for the guest")
        yield None
        return
    directory = os.path.join(workdir, "ntp")
    os.makedirs(directory, exist_ok=True)
    conf = os.path.join(directory, "chrony.conf")
    with open(conf, "w", encoding="utf-8") as fh:
        fh.write(CONF.format(dir=directory))
    log_file = open(os.path.join(directory, "chronyd.log"), "wb")
    # -u root: chronyd keeps the driver's credentials. Dropping to _chrony would clear the
    # parent-death signal (prctl(2)), and a killed driver would leave it serving port 123.
    proc = subprocess.Popen([chronyd, "-d", "-x", "-u", "root", "-f", conf], stdout=log_file, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: set_death_signal(signal.SIGTERM))
    log_file.close()
    try:
        deadline = time.monotonic() + 10
        while _port_free() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is not None or _port_free():
            log(f"NTP: chronyd did not start (see {directory}/chronyd.log)")
        else:
            log("NTP: chronyd serves the host clock on 127.0.0.1:123 (10.0.2.2 for the guest)")
        yield proc
    finally:
        stop_process(proc)
