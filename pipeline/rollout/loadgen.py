"""A load generator: real HTTP requests to every host's service at a steady rate, and Prometheus metrics
of what it saw (requests by host, version and code; a latency histogram by host and version).

    write_targets("targets.json", [{"host": "web-1", "url": "http://127.0.0.1:8081/", "version": v}])
    with LoadGenerator("targets.json", rate=10) as lg: ...        # in-process threads; metrics at lg.metrics_url
    port = start_daemon("targets.json", state_dir); stop_daemon(state_dir)    # outlives golden (pid file)

The targets file is re-read when it changes, so hosts replaced during a rollout get traffic at once.
Series (names in pipeline.rollout.metrics): golden_loadgen_requests_total{host,version,code} with
code the HTTP status or "error" (refused, reset, timeout), and
golden_loadgen_request_duration_seconds{host,version} for every request that got an HTTP answer.
Scrape it with honor_labels (Target("loadgen", addr, honor_labels=True)): the series carry their host.
"""

import argparse
import http.client
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from pipeline.errors import GoldenError
from pipeline.paths import ROOT
from pipeline.rollout import daemon as procs
from pipeline.rollout.metrics import ERROR_CODE, REQUEST_DURATION, REQUESTS_TOTAL
from pipeline.rollout.prometheus import free_port
from pipeline.util import read_json, write_json_atomic

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0)
RELOAD_SECONDS = 0.5


def write_targets(path, targets):
    """Write the targets file atomically: a list of {"host", "url", "version"}."""
    for t in targets:
        if set(t) != {"host", "url", "version"}:
            raise GoldenError(f"a target is {{host, url, version}}, not {sorted(t)}", file=path, field="targets")
    write_json_atomic(path, list(targets))


class LoadGenerator:
    def __init__(self, targets_file, port=0, rate=10.0, timeout=2.0, workers=32):
        self.targets_file = targets_file
        self.rate = rate                     # requests per second to each host
        self.timeout = timeout
        self.registry = CollectorRegistry()
        self.requests = Counter(REQUESTS_TOTAL, "Requests sent by the load generator",
                                ("host", "version", "code"), registry=self.registry)
        self.latency = Histogram(REQUEST_DURATION, "Latency of answered requests",
                                 ("host", "version"), buckets=BUCKETS, registry=self.registry)
        self.port = port
        self.targets = {}
        self._mtime = None
        self._codes = {}                     # (host, version) -> codes seen, to drop a replaced host's series
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loadgen")
        self._server = self._thread = None

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.port}/metrics"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._reload()
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._run, name="loadgen-dispatch", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _reload(self):
        try:
            mtime = os.stat(self.targets_file).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        targets = {t["host"]: t for t in read_json(self.targets_file, "load generator targets")}
        with self._lock:
            for key in [k for k in self._codes if targets.get(k[0], {}).get("version") != k[1]]:
                for code in self._codes.pop(key):
                    self.requests.remove(*key, code)
                self.latency.remove(*key)
            self.targets = targets

    def _run(self):
        period = 1.0 / self.rate
        due, next_reload = {}, time.monotonic() + RELOAD_SECONDS
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_reload:
                self._reload()
                next_reload = now + RELOAD_SECONDS
            with self._lock:
                targets = list(self.targets.values())
            for t in targets:
                when = due.setdefault(t["host"], now)
                if when <= now:
                    self._pool.submit(self._request, t)
                    # Steady rate: the schedule advances by the period, without catching up after a stall.
                    due[t["host"]] = max(when + period, now)
            self._stop.wait(min([*due.values(), next_reload]) - time.monotonic())

    def _request(self, target):
        host, version = target["host"], target["version"]
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(target["url"], timeout=self.timeout) as resp:
                resp.read()
                code = str(resp.status)
        except urllib.error.HTTPError as exc:
            code = str(exc.code)
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            code = ERROR_CODE
        elapsed = time.monotonic() - t0
        with self._lock:
            if self.targets.get(host, {}).get("version") != version:
                return  # the host was replaced while this request ran
            self._codes.setdefault((host, version), set()).add(code)
            self.requests.labels(host, version, code).inc()
            if code != ERROR_CODE:
                self.latency.labels(host, version).observe(elapsed)


def _paths(state_dir):
    d = os.path.join(os.path.abspath(state_dir), "loadgen")
    return d, os.path.join(d, "loadgen.pid"), os.path.join(d, "loadgen.json"), os.path.join(d, "loadgen.log")


def start_daemon(targets_file, state_dir, rate=10.0, timeout=2.0):
    """Start the load generator as a daemon (pid file under <state_dir>/loadgen/); returns its metrics port."""
    d, pid_file, info, log = _paths(state_dir)
    os.makedirs(d, exist_ok=True)
    if procs.running(pid_file, "pipeline.rollout.loadgen"):
        raise GoldenError("the load generator already runs for this state dir", file=pid_file)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = procs.spawn([sys.executable, "-m", "pipeline.rollout.loadgen", "--targets", os.path.abspath(targets_file),
                        "--port", str(port), "--rate", str(rate), "--timeout", str(timeout)], log, pid_file, env=env)
    write_json_atomic(info, {"pid": proc.pid, "port": port, "targets": os.path.abspath(targets_file)})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
                return port
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    procs.stop(proc.pid)
    raise GoldenError("the load generator did not start", file=log)


def daemon_port(state_dir):
    """The metrics port of the running daemon, or None."""
    _, pid_file, info, _ = _paths(state_dir)
    return read_json(info, "load generator state")["port"] if procs.running(pid_file, "pipeline.rollout.loadgen") else None


def stop_daemon(state_dir):
    _, pid_file, info, _ = _paths(state_dir)
    procs.stop(procs.running(pid_file, "pipeline.rollout.loadgen"))
    for path in (pid_file, info):
        if os.path.exists(path):
            os.unlink(path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.rollout.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--targets", required=True, help="JSON file of {host, url, version}, re-read when it changes")
    p.add_argument("--port", type=int, required=True, help="port of the metrics endpoint on 127.0.0.1")
    p.add_argument("--rate", type=float, default=10.0, help="requests per second to each host")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds before a request counts as code=error")
    args = p.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with LoadGenerator(args.targets, args.port, args.rate, args.timeout):
        done.wait()


if __name__ == "__main__":
    main()
