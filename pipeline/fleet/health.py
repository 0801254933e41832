"""Is a host healthy, and what does it run? Asked of the host itself over SSH, and of its service over HTTP.

    h = check(host, expect="golden-web-2026.12.01+2")
    h.ok, h.version, h.problems        # problems: ["stamp says golden-web-...+1", "failed unit nginx.service"]

Healthy means: SSH login works, /etc/golden/image.json (stamped by the build) names the expected
version, no systemd unit failed, and the service answers 200 on its HTTP port (hosts with one).
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import paramiko

from pipeline.errors import GoldenError
from pipeline.fleet.local import connect, run

STAMP = "/etc/golden/image.json"


@dataclass
class Health:
    host: str
    version: str | None = None        # what the host's stamp says
    stamp: dict | None = None
    failed_units: list = field(default_factory=list)
    service: str | None = None        # "200", an HTTP code, or the reason there was no answer
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def to_dict(self):
        return {"host": self.host, "ok": self.ok, "version": self.version, "failed_units": self.failed_units,
                "service": self.service, "problems": self.problems, "stamp": self.stamp}


def check(host, expect=None, timeout=15):
    h = Health(host["name"])
    try:
        with connect(host["ssh"], timeout=timeout) as client:
            rc, out, err = run(client, f"cat {STAMP}", timeout=timeout)
            if rc != 0:
                h.problems.append(f"no image stamp: {err.strip() or f'cat {STAMP} exited {rc}'}")
            else:
                try:
                    h.stamp = json.loads(out)
                    h.version = h.stamp.get("version")
                except (ValueError, AttributeError):
                    h.problems.append(f"{STAMP} is not a JSON object")
            _, out, _ = run(client, "systemctl list-units --failed --no-legend --plain --full", timeout=timeout)
            h.failed_units = [line.split()[0] for line in out.splitlines() if line.strip()]
    except (OSError, EOFError, paramiko.SSHException) as exc:
        h.problems.append(f"no SSH login: {type(exc).__name__}: {exc}")
        return h
    if expect and h.version and h.version != expect:
        h.problems.append(f"stamp says {h.version}, expected {expect}")
    h.problems += [f"failed unit {u}" for u in h.failed_units]
    if host.get("http"):
        h.service = probe(host["http"], timeout)
        if h.service != "200":
            h.problems.append(f"service at {host['http']} answered {h.service}")
    return h


def ready(engine, host, version, timeout=420):
    """Wait until a just-launched host has booted, then check it: the problems that keep it out of the
    fleet ([] when it may take traffic)."""
    try:
        system = engine.wait_ready(host, timeout)
    except GoldenError as exc:
        return [str(exc).splitlines()[0]]
    problems = list(check(host, expect=version).problems)
    if system not in ("running", "degraded"):     # degraded: a failed unit, which check() names
        problems.append(f"systemd state {system}")
    return problems


def probe(url, timeout=10):
    """The HTTP status of a GET of `url` as text, or why there was none."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer ({getattr(exc, 'reason', exc)})"
