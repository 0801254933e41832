"""The gates against a real Prometheus scraping the real load generator, which sends real requests to
small HTTP servers started here: healthy, failing 30 % of requests, and 300 ms slow."""

import http.server
import math
import os
import shutil
import threading
import time
import urllib.request

import pytest

from pipeline.errors import GoldenError
from pipeline.rollout import loadgen
from pipeline.rollout.analysis import FAILED, PASSED, Hosts, analyse, measure, settle
from pipeline.rollout.metrics import CATALOGUE, Metric
from pipeline.rollout.policy import Gate, Relative
from pipeline.rollout.prometheus import PromClient, Prometheus, Target, config, free_port

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="needs Debian's prometheus package")

V = "golden-web-2026.12.01+1"
WINDOW = "4s"


class Web(http.server.BaseHTTPRequestHandler):
    fail_every = None        # (failures, out of): the 30 % server answers 500 to 3 of every 10 requests
    delay = 0.0

    def do_GET(self):
        n = self.server.count = getattr(self.server, "count", 0) + 1
        time.sleep(self.delay)
        bad = self.fail_every and (n % self.fail_every[1]) < self.fail_every[0]
        body = b"oops\n" if bad else b"hello\n"
        self.send_response(500 if bad else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Frozen(http.server.BaseHTTPRequestHandler):
    """Exposes a load-generator counter that no longer moves: its rate is 0/0, NaN."""

    def do_GET(self):
        body = (f'golden_loadgen_requests_total{{host="frozen",version="{V}",code="200"}} 100\n').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(handler, **attrs):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (handler,), attrs))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("lab")
    servers = {"healthy": serve(Web), "failing": serve(Web, fail_every=(3, 10)), "slow": serve(Web, delay=0.3),
               "frozen": serve(Frozen)}
    targets = os.path.join(d, "targets.json")
    loadgen.write_targets(targets, [{"host": h, "url": f"http://127.0.0.1:{servers[h].server_port}/", "version": V}
                                    for h in ("healthy", "failing", "slow")])
    with loadgen.LoadGenerator(targets, rate=20) as lg, Prometheus(d, scrape_interval="1s") as prom:
        prom.set_targets([Target("loadgen", f"127.0.0.1:{lg.port}", honor_labels=True),
                          Target("frozen", f"127.0.0.1:{servers['frozen'].server_port}", honor_labels=True)])
        prom.wait_scraped()
        time.sleep(6)  # a few scrapes inside the 4 s rate window
        yield prom
    for s in servers.values():
        s.shutdown()


def gate(name, query=None, **kw):
    metric = CATALOGUE[name] if query is None else Metric(name, query, "lower", "", "")
    return Gate(metric, **{"interval": 1, "count": 2, "window": WINDOW, **kw})


def on(*hosts):
    return Hosts(hosts, [V])


def test_error_rate_gate_fails_on_the_failing_server_and_passes_on_the_healthy(lab):
    g = gate("error_rate", max=0.05)
    bad = measure(lab.client, g, on("failing"))
    good = measure(lab.client, g, on("healthy"))
    assert bad.verdict == FAILED and 0.2 < bad.values["failing"] < 0.4, bad
    assert "failing: error_rate" in bad.reason and "> max 0.05" in bad.reason
    assert good.verdict == PASSED and good.values["healthy"] == 0, good


def test_latency_gate_fails_on_the_slow_server(lab):
    g = gate("latency_p90", max=0.2)
    slow, fast = measure(lab.client, g, on("slow")), measure(lab.client, g, on("healthy"))
    assert slow.verdict == FAILED and slow.values["slow"] >= 0.3, slow
    assert fast.verdict == PASSED and fast.values["healthy"] < 0.2, fast


def test_a_query_without_data_fails(lab):
    g = gate("absent", query='sum by (host) (rate(no_such_metric_total{host=~"{hosts}"}[{window}]))', max=1)
    m = measure(lab.client, g, on("healthy"))
    assert m.verdict == FAILED and m.reason == "no data for the new hosts healthy"


def test_a_host_missing_from_the_answer_fails(lab):
    m = measure(lab.client, gate("error_rate", max=0.05), on("healthy", "web-99"))
    assert m.verdict == FAILED and m.reason == "no data for host web-99"


def test_nan_fails(lab):
    m = measure(lab.client, gate("error_rate", max=0.05), on("frozen"))
    assert math.isnan(m.values["frozen"]) and m.verdict == FAILED and "not a number" in m.reason


def test_prometheus_down_is_an_error_not_a_pass(lab):
    client = PromClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    result = client.query("up")
    assert result.error and "unreachable" in result.error and not result.no_data
    g = gate("error_rate", max=0.05, count=2)
    analysis = analyse(client, [g], on("healthy"))
    assert not analysis.passed and analysis.gates[0].failures == 1
    assert "query error: Prometheus unreachable" in analysis.summary()


def test_a_malformed_query_is_an_error(lab):
    result = lab.client.query("sum by (host (")
    assert result.error and result.error.startswith("bad_data")


def test_relative_check_flags_a_new_host_worse_than_the_old(lab):
    g = gate("error_rate", relative=Relative(margin=0.05))
    worse = measure(lab.client, g, on("failing"), old=on("healthy"))
    assert worse.verdict == FAILED and "old hosts' limit 0.05" in worse.reason, worse
    assert worse.baseline == 0 and worse.thresholds == {"relative_max": 0.05}
    assert measure(lab.client, g, on("healthy"), old=on("failing")).verdict == PASSED
    slower = measure(lab.client, gate("latency_p90", relative=Relative(factor=1.5)), on("slow"), old=on("healthy"))
    assert slower.verdict == FAILED and "old hosts" in slower.reason


def test_relative_check_fails_when_the_old_hosts_have_no_data(lab):
    m = measure(lab.client, gate("error_rate", relative=Relative(margin=0.05)), on("healthy"), old=on("gone"))
    assert m.verdict == FAILED and "baseline (old hosts gone) has no data" in m.reason


def test_analysis_passes_a_healthy_wave_and_stops_a_failing_one(lab):
    gates = [gate("error_rate", max=0.05, count=3), gate("latency_p90", max=0.2, count=3)]
    seen = []
    good = analyse(lab.client, gates, on("healthy"), on("slow"), on_measurement=lambda g, m: seen.append(m))
    assert good.passed and len(seen) == 6 and all(m.verdict == PASSED for m in seen)
    assert good.finished - good.started >= 2  # three measurements one interval apart
    bad = analyse(lab.client, gates, on("failing"), on("healthy"))
    assert not bad.passed and bad.failed_gate.gate.metric.name == "error_rate"
    record = bad.to_dict()
    assert record["summary"].startswith("error_rate failed 1 of 1 measurements (failure limit 0): failing:")
    m = record["gates"][0]["measurements"][0]
    assert set(m) >= {"time", "values", "thresholds", "verdict", "reason"} and m["thresholds"] == {"max": 0.05}


def test_failure_limit_tolerates_that_many_failures(lab):
    tolerant = analyse(lab.client, [gate("error_rate", max=0.05, count=2, failure_limit=1)], on("failing"))
    assert not tolerant.passed and tolerant.gates[0].failures == 2  # 2 > 1: still fails, after both
    strict = analyse(lab.client, [gate("error_rate", max=0.05, count=3, failure_limit=0)], on("failing"))
    assert len(strict.gates[0].measurements) == 1  # stops at the first failure


def test_settle_waits_for_a_host_that_just_joined_and_decides_nothing(tmp_path):
    """A host added to the load seconds ago has no rate yet: measured at once it fails on no data (the
    observer's delay, not the version's fault); `settle` waits until every gate answers for it. A gate
    that never answers is handed back when the wait is over, and the analysis still fails on it."""
    healthy = serve(Web)
    url = f"http://127.0.0.1:{healthy.server_port}/"
    targets = tmp_path / "targets.json"
    loadgen.write_targets(targets, [{"host": "old", "url": url, "version": V}])
    gates = [gate("error_rate", max=0.05), gate("latency_p90", max=0.2)]
    with loadgen.LoadGenerator(str(targets), rate=20) as lg, Prometheus(tmp_path, scrape_interval="1s") as prom:
        prom.set_targets([Target("loadgen", f"127.0.0.1:{lg.port}", honor_labels=True)])
        prom.wait_scraped()
        time.sleep(3)
        loadgen.write_targets(targets, [{"host": "old", "url": url, "version": V},
                                        {"host": "new", "url": url, "version": V}])
        early = measure(prom.client, gates[0], on("new"))
        waits = []
        t0 = time.monotonic()
        assert settle(prom.client, gates, on("new"), timeout=30, poll=0.5,
                      on_wait=lambda missing, waited: waits.append(missing)) == {}
        took = time.monotonic() - t0
        assert analyse(prom.client, gates, on("new")).passed
        absent = gate("absent", query='sum by (host) (rate(no_such_metric_total{host=~"{hosts}"}[{window}]))', max=1)
        t1 = time.monotonic()
        assert settle(prom.client, gates + [absent], on("new"), timeout=2, poll=0.5) == {"absent": ["new"]}
        assert 2 <= time.monotonic() - t1 < 10
        assert not analyse(prom.client, gates + [absent], on("new")).passed
    healthy.shutdown()
    assert early.verdict == FAILED and "no data" in early.reason, early
    assert waits and all("new" in hosts for m in waits for hosts in m.values()) and took >= 0.5, (waits, took)


def test_loadgen_follows_replaced_targets(tmp_path):
    healthy = serve(Web)
    targets = tmp_path / "targets.json"
    url = f"http://127.0.0.1:{healthy.server_port}/"
    loadgen.write_targets(targets, [{"host": "web-1", "url": url, "version": "v1"}])
    with loadgen.LoadGenerator(str(targets), rate=20) as lg:
        time.sleep(1)
        loadgen.write_targets(targets, [{"host": "web-1", "url": url, "version": "v2"},
                                        {"host": "web-2", "url": f"http://127.0.0.1:{free_port()}/", "version": "v2"}])
        time.sleep(1.5)
        text = urllib.request.urlopen(lg.metrics_url).read().decode()
    healthy.shutdown()
    assert 'host="web-1",version="v2"' in text and 'version="v1"' not in text
    assert 'golden_loadgen_requests_total{code="error",host="web-2",version="v2"}' in text


def test_daemons_outlive_the_handle_and_stop_by_pid_file(tmp_path):
    targets = tmp_path / "targets.json"
    loadgen.write_targets(targets, [])
    port = loadgen.start_daemon(str(targets), tmp_path)
    prom = Prometheus(tmp_path, scrape_interval="1s").start([], daemon=True)
    try:
        with pytest.raises(GoldenError, match="already runs"):
            Prometheus(tmp_path).start([], daemon=True)
        again = Prometheus.attach(tmp_path)
        assert again.port == prom.port and loadgen.daemon_port(tmp_path) == port
        again.set_targets([Target("loadgen", f"127.0.0.1:{port}", honor_labels=True)])
        again.wait_scraped(timeout=10)
        assert again.client.query('up{job="loadgen"}').by("job") == {"loadgen": 1.0}
    finally:
        Prometheus.attach(tmp_path).stop()
        loadgen.stop_daemon(tmp_path)
    assert not os.path.exists(prom.pid_file) and loadgen.daemon_port(tmp_path) is None
    with pytest.raises(GoldenError, match="no Prometheus runs"):
        Prometheus.attach(tmp_path)
    assert prom.client.query("up").error


def test_url_parameters_reach_the_scrape_config_and_promtool_accepts_it(tmp_path):
    """A node exporter scraped for the collectors the rollout reads only (`collect[]`), one job per parameter set."""
    node = Target("node", "127.0.0.1:9100", {"host": "web-1"}, params=(("collect[]", ("cpu", "meminfo")),))
    plain = Target("loadgen", "127.0.0.1:9200", honor_labels=True)
    jobs = {j["job_name"]: j for j in config([node, plain], "5s")["scrape_configs"]}
    assert jobs["node"]["params"] == {"collect[]": ["cpu", "meminfo"]} and "params" not in jobs["loadgen"]
    prom = Prometheus(tmp_path)
    prom._write_config([node, plain])      # checked by promtool, or GoldenError
    assert "collect[]" in open(prom.config_path).read()
