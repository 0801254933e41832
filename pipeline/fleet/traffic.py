"""A local fleet's observers: its own Prometheus and load generator, daemons that outlive golden and
follow the fleet record (every host's node exporter scraped, every host's service under load).

    observers = Observers(runtime_dir); observers.start(fleet)     # at `golden fleet create`
    observers.follow(fleet)       # after each host replacement: targets rewritten, Prometheus reloaded
    observers.prometheus().client.query(...); observers.stop()      # at `golden fleet destroy`
"""

import os

from pipeline.errors import GoldenError
from pipeline.rollout import loadgen
from pipeline.rollout.prometheus import Prometheus, Target

SCRAPE_INTERVAL = "5s"
REQUESTS_PER_SECOND = 10.0
# Only what the rollout metrics read: a full node exporter scrape costs an emulated guest a third of a core.
NODE_COLLECTORS = (("collect[]", ("cpu", "meminfo", "textfile")),)


class Observers:
    def __init__(self, runtime_dir):
        self.dir = runtime_dir
        self.targets_file = os.path.join(runtime_dir, "loadgen-targets.json")

    def start(self, fleet):
        self._write_load(fleet)
        port = loadgen.start_daemon(self.targets_file, self.dir, rate=REQUESTS_PER_SECOND)
        try:
            Prometheus(self.dir, scrape_interval=SCRAPE_INTERVAL).start(self._targets(fleet, port), daemon=True)
        except BaseException:
            loadgen.stop_daemon(self.dir)
            raise

    def prometheus(self):
        return Prometheus.attach(self.dir)

    def running(self):
        return loadgen.daemon_port(self.dir) is not None

    def follow(self, fleet):
        """Point the load and the scrapes at the fleet's hosts as the record now lists them."""
        self._write_load(fleet)
        prom = self.prometheus()
        prom.set_targets(self._targets(fleet, loadgen.daemon_port(self.dir)))

    def stop(self):
        loadgen.stop_daemon(self.dir)
        try:
            Prometheus.attach(self.dir).stop()
        except GoldenError:      # not running: nothing to stop
            pass

    def _write_load(self, fleet):
        loadgen.write_targets(self.targets_file, [{"host": h["name"], "url": h["http"], "version": h["version"]}
                                                  for h in fleet.hosts if h.get("http")])

    @staticmethod
    def _targets(fleet, loadgen_port):
        out = [Target("node", h["node_exporter"], {"host": h["name"], "version": h["version"], "fleet": fleet.fleet},
                      params=NODE_COLLECTORS)
               for h in fleet.hosts if h.get("node_exporter")]
        if loadgen_port:
            out.append(Target("loadgen", f"127.0.0.1:{loadgen_port}", {"fleet": fleet.fleet}, honor_labels=True))
        return out
