"""A real Prometheus for a fleet (Debian's `prometheus`), on 127.0.0.1, and a PromQL client over HTTP.

    with Prometheus(state_dir, scrape_interval="2s") as prom:        # stopped on every exit path
        prom.set_targets([Target("node", "127.0.0.1:9101", {"host": "web-1", "version": v, "fleet": "web"})])
        result = prom.client.query('up{host="web-1"}')               # QueryResult: samples, no_data, error

    Prometheus(state_dir).start(targets, daemon=True)                # outlives golden: pid file in state_dir
    Prometheus.attach(state_dir).set_targets(targets); Prometheus.attach(state_dir).stop()

Files under `<state_dir>/prometheus/`: prometheus.yml (generated), data/ (the TSDB), prometheus.log,
prometheus.pid and prometheus.json ({"pid", "port", "url"}) for a daemon. Targets change with
`set_targets`: the config is rewritten, checked with promtool, and reloaded (POST /-/reload).
"""

import json
import math
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import yaml

from pipeline.errors import GoldenError
from pipeline.rollout import daemon as procs
from pipeline.util import read_json, require_tool, write_json_atomic

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
READY_SECONDS = 30


@dataclass(frozen=True)
class Target:
    """One scrape target. The load generator's job uses honor_labels: its series carry their own `host`."""
    job: str
    address: str                      # host:port
    labels: dict = field(default_factory=dict)
    metrics_path: str = "/metrics"
    honor_labels: bool = False
    params: tuple = ()                # URL parameters, e.g. (("collect[]", ("cpu", "meminfo")),)

    def to_dict(self):
        return {"job": self.job, "address": self.address, "labels": dict(self.labels),
                "metrics_path": self.metrics_path, "honor_labels": self.honor_labels,
                "params": [[k, list(v)] for k, v in self.params]}


@dataclass(frozen=True)
class Sample:
    labels: dict
    value: float                      # may be NaN or ±Inf: the caller decides what that means


@dataclass(frozen=True)
class QueryResult:
    """The answer to one instant query: an error, no data, or samples (values may be NaN or ±Inf)."""
    query: str
    time: float
    samples: tuple = ()
    error: str | None = None

    @property
    def no_data(self):
        return self.error is None and not self.samples

    def by(self, label="host"):
        return {s.labels.get(label): s.value for s in self.samples}

    def finite(self):
        return self.error is None and bool(self.samples) and all(math.isfinite(s.value) for s in self.samples)


class PromClient:
    """Instant queries against /api/v1/query; never raises for a failed query: the result carries it."""

    def __init__(self, url, timeout=5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql, at=None):
        at = time.time() if at is None else at
        body = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query", data=body, timeout=self.timeout) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as exc:
            return QueryResult(promql, at, error=_api_error(exc))
        except (urllib.error.URLError, OSError) as exc:
            return QueryResult(promql, at, error=f"Prometheus unreachable at {self.url}: "
                                                 f"{getattr(exc, 'reason', exc)}")
        except ValueError as exc:
            return QueryResult(promql, at, error=f"malformed answer from Prometheus: {exc}")
        if payload.get("status") != "success":
            return QueryResult(promql, at, error=f"{payload.get('errorType')}: {payload.get('error')}")
        data = payload.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            samples = tuple(Sample(dict(r["metric"]), float(r["value"][1])) for r in result)
        elif kind == "scalar":
            samples = (Sample({}, float(result[1])),)
        else:
            return QueryResult(promql, at, error=f"the query must return an instant vector, not a {kind}")
        return QueryResult(promql, at, samples)


def _api_error(exc):
    try:
        payload = json.loads(exc.read() or b"{}")
        return f"{payload.get('errorType', exc.code)}: {payload.get('error', exc.reason)}"
    except ValueError:
        return f"HTTP {exc.code}: {exc.reason}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(targets, scrape_interval, rule_files=()):
    """The prometheus.yml for these targets: one scrape job per (job, path, honor_labels)."""
    jobs = {}
    for t in targets:
        key = (t.job, t.metrics_path, t.honor_labels, tuple((k, tuple(v)) for k, v in t.params))
        jobs.setdefault(key, []).append({"targets": [t.address], "labels": dict(t.labels)})
    scrape = [{"job_name": job, "metrics_path": path, "honor_labels": honor, "static_configs": groups,
               **({"params": {k: list(v) for k, v in params}} if params else {})}
              for (job, path, honor, params), groups in jobs.items()]
    if len({j["job_name"] for j in scrape}) != len(scrape):
        raise GoldenError("one job name with two metrics paths or label policies", field="targets")
    return {"global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": scrape_interval},
            "rule_files": [os.path.abspath(r) for r in rule_files],
            "scrape_configs": scrape}


class Prometheus:
    def __init__(self, state_dir, scrape_interval="2s", rule_files=()):
        self.dir = os.path.join(os.path.abspath(state_dir), "prometheus")
        self.scrape_interval = scrape_interval
        self.rule_files = tuple(rule_files)
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        self.pid_file = os.path.join(self.dir, "prometheus.pid")
        self.info_path = os.path.join(self.dir, "prometheus.json")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.targets = ()
        self.port = None
        self.proc = None
        self.pid = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self):
        return PromClient(self.url)

    def __enter__(self):
        if self.pid is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, targets=(), daemon=False):
        """Start Prometheus on a free loopback port; `daemon` keeps it running after golden exits."""
        binary = require_tool(PROMETHEUS, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        if daemon and _running_pid(self.pid_file):
            raise GoldenError(f"Prometheus already runs for this state dir (pid {_running_pid(self.pid_file)})",
                              file=self.pid_file)
        self._write_config(targets)
        self.port = free_port()
        argv = [binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=30d"]
        self.proc = procs.spawn(argv, self.log_path, self.pid_file if daemon else None)
        self.pid = self.proc.pid
        if daemon:
            write_json_atomic(self.info_path, {"pid": self.pid, "port": self.port, "url": self.url,
                                               "scrape_interval": self.scrape_interval,
                                               "rule_files": list(self.rule_files)})
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    @classmethod
    def attach(cls, state_dir):
        """The daemon started earlier for `state_dir`; GoldenError if it is not running."""
        prom = cls(state_dir)
        pid = _running_pid(prom.pid_file)
        if pid is None:
            raise GoldenError("no Prometheus runs for this fleet (start it first)", file=prom.pid_file)
        info = read_json(prom.info_path, "Prometheus state")
        prom.pid, prom.port = pid, info["port"]
        prom.scrape_interval, prom.rule_files = info["scrape_interval"], tuple(info["rule_files"])
        prom.targets = tuple(Target(**{**t, "params": tuple((k, tuple(v)) for k, v in t.get("params", ()))})
                             for t in read_json(os.path.join(prom.dir, "targets.json"), "targets"))
        return prom

    def stop(self):
        procs.stop(self.pid)
        self.proc = self.pid = None
        for path in (self.pid_file, self.info_path):
            if os.path.exists(path):
                os.unlink(path)

    def set_targets(self, targets):
        """Scrape exactly these targets from now on (config rewritten and reloaded)."""
        self._write_config(targets)
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/reload", method="POST"),
                                        timeout=10) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise GoldenError(f"Prometheus refused the new config: {exc.read().decode(errors='replace').strip()}",
                              file=self.config_path) from None
        except (urllib.error.URLError, OSError) as exc:
            raise GoldenError(f"Prometheus unreachable at {self.url}: {getattr(exc, 'reason', exc)}") from None

    def wait_scraped(self, timeout=30.0):
        """Wait until every target has been scraped at least once since the last config (up or not)."""
        deadline = time.monotonic() + timeout
        want = {t.address for t in self.targets}
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/targets?state=active", timeout=5) as resp:
                    active = json.load(resp)["data"]["activeTargets"]
                seen = {t["labels"].get("instance") for t in active if t.get("health") in ("up", "down")}
                if want <= seen:
                    return
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise GoldenError(f"Prometheus did not scrape {sorted(want)} within {timeout:.0f}s", file=self.log_path)
            time.sleep(0.2)

    def _write_config(self, targets):
        os.makedirs(self.dir, exist_ok=True)
        self.targets = tuple(targets)
        text = yaml.safe_dump(config(self.targets, self.scrape_interval, self.rule_files), sort_keys=False)
        tmp = f"{self.config_path}.new"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        check = subprocess.run([require_tool(PROMTOOL, "prometheus"), "check", "config", tmp],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            os.unlink(tmp)
            raise GoldenError(f"generated Prometheus config rejected by promtool: {check.stderr.strip() or check.stdout.strip()}",
                              file=self.config_path)
        os.replace(tmp, self.config_path)
        write_json_atomic(os.path.join(self.dir, "targets.json"), [t.to_dict() for t in self.targets])

    def _wait_ready(self):
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise GoldenError(f"Prometheus exited with {self.proc.returncode}:\n{_tail(self.log_path)}",
                                  file=self.log_path)
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise GoldenError(f"Prometheus not ready within {READY_SECONDS}s:\n{_tail(self.log_path)}", file=self.log_path)


def _running_pid(pid_file):
    return procs.running(pid_file, PROMETHEUS)


def _tail(path, lines=15):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
