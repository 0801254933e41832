"""The rollout controller: hosts replaced wave by wave, each new host proven healthy, each wave baked and
analysed; a failed wave puts every replaced host back on its previous version, and the whole fleet
is verified back.

    c = Controller(store, fleets, cache_dir, log=print)
    record = c.rollout("web", "golden-web-2026.12.01+2", policy)     # record["result"]: completed / rolled_back
    c.resume("web"); c.rollback("web"); c.history("web")

Every step is persisted (pipeline.rollout.state) before it is taken. A replacement is: intend (new
host id recorded) → launch → ready and healthy → the fleet record points the slot at the new host →
the old host is destroyed → done. `resume` first reconciles: hosts the record does not list are
destroyed, listed hosts that are not running are booted again on their recorded version; then the
rollout goes on from the wave it was in (hosts already on the new version are kept) or its rollback.
"""

import math
import os
import time

from pipeline.errors import GoldenError
from pipeline.fleet import health
from pipeline.fleet.local import LocalEngine
from pipeline.fleet.record import now_iso
from pipeline.fleet.traffic import Observers
from pipeline.rollout import waves as waves_mod
from pipeline.rollout.analysis import FAILED, Hosts, analyse, settle
from pipeline.kpi import store_dashboard
from pipeline.kpi.dashboard import refresh as refresh_dashboard
from pipeline.rollout.report import write_report
from pipeline.rollout.state import COMPLETED, DONE, FORWARD, ROLLBACK, ROLLED_BACK, State
from pipeline.util import write_json_atomic

READY_TIMEOUT = 420
# How long a wave waits for Prometheus to answer every gate for its new hosts (a few scrapes inside the
# rate() window) before its bake; what is still unanswered then fails the analysis.
SETTLE_TIMEOUT = 120


class RolledBack(Exception):
    """Raised inside a wave: the reason the rollout turns round (a host never healthy, an analysis)."""

    def __init__(self, reason, failure):
        super().__init__(reason)
        self.failure = failure


class Controller:
    def __init__(self, store, fleets, cache_dir, log=print):
        self.store, self.fleets, self.cache_dir, self.log = store, fleets, cache_dir, log

    def _engine(self, fleet):
        if fleet.engine != "local":
            raise GoldenError(f"fleet {fleet.fleet} is an {fleet.engine} fleet: golden can observe it but "
                              "replaces hosts only through an engine that can (local QEMU, AWS)", field="fleet")
        return LocalEngine(self.store, self.fleets.runtime(fleet.fleet), self.cache_dir, self.log)

    # ---- entry points -------------------------------------------------------------------------

    def plan(self, name, version, policy, emergency=None):
        fleet = self.fleets.load(name)
        todo = [h["name"] for h in fleet.hosts if h["version"] != version]
        return waves_mod.plan(policy, [h["name"] for h in fleet.hosts if h["name"] in todo], emergency=bool(emergency))

    def rollout(self, name, version, policy, emergency=None):
        with self.fleets.lock(name, f"rollout of {name} to {version}"):
            state = State(self.fleets.runtime(name))
            self._refuse_unfinished(state, name)
            self.store.resolvable(version)     # published, verified, not revoked: else GoldenError, nothing touched
            fleet = self.fleets.load(name)
            self._engine(fleet)
            if self.store.entry(version).get("image") != fleet.image:
                raise GoldenError(f"{version} is an image of {self.store.entry(version).get('image')!r}; "
                                  f"fleet {name} runs {fleet.image!r}", field="version")
            if emergency:
                _check_fix(self.store, emergency, version)
            p = self.plan(name, version, policy, emergency)
            if not p.waves:
                self.log(f"every host of {name} already runs {version}")
                return None
            for line in p.lines():
                self.log(line)
            rid = state.create(fleet=name, kind="rollout", to=version,
                               originals={h["name"]: h["version"] for h in fleet.hosts}, plan=p.to_dict(),
                               policy=policy.path, emergency=emergency)
            self.log(f"rollout {rid}: {name} to {version}")
            return self._drive(state, rid, policy)

    def rollback(self, name, policy):
        """Put the fleet back on the versions it ran before its last completed rollout."""
        with self.fleets.lock(name, f"rollback of {name}"):
            state = State(self.fleets.runtime(name))
            self._refuse_unfinished(state, name)
            last = next((r for r in reversed(state.history()) if r["kind"] == "rollout" and r["result"] == COMPLETED),
                        None)
            if last is None:
                raise GoldenError(f"fleet {name} has no completed rollout to roll back", field="fleet")
            for version in set(last["originals"].values()):
                self.store.resolvable(version)
            rid = state.create(fleet=name, kind="rollback", to=None, originals=last["originals"], plan=last["plan"],
                               policy=policy.path, emergency=None)
            state.update(rid, reason=f"manual rollback of {last['id']} (to {last['to_version']})")
            self.log(f"rollback {rid}: {name} back to the versions before {last['id']}")
            return self._drive(state, rid, policy)

    def resume(self, name, policy_loader):
        with self.fleets.lock(name, f"resume of a rollout of {name}"):
            state = State(self.fleets.runtime(name))
            r = state.unfinished()
            if r is None:
                raise GoldenError(f"fleet {name} has no unfinished rollout to resume", field="fleet")
            self.log(f"resuming {r['kind']} {r['id']} of {name} ({r['phase']}, wave {r['wave']})")
            return self._drive(state, r["id"], policy_loader(r["policy"]))

    def history(self, name):
        self.fleets.load(name)
        return State(self.fleets.runtime(name)).history()

    # ---- the state machine --------------------------------------------------------------------

    def _refuse_unfinished(self, state, name):
        r = state.unfinished()
        if r:
            raise GoldenError(f"{r['kind']} {r['id']} of {name} did not finish (phase {r['phase']}); "
                              f"run `golden rollout {name} --resume` first", field="fleet")

    def _drive(self, state, rid, policy):
        r = state.get(rid)
        state.update(rid, pid=os.getpid())
        fleet = self.fleets.load(r["fleet"])
        engine = self._engine(fleet)
        self._reconcile(state, rid, fleet, engine)
        if r["phase"] == FORWARD:
            try:
                self._forward(state, rid, policy, engine)
                state.update(rid, phase=DONE, result=COMPLETED, finished_at=now_iso())
                self.log(f"rollout {rid} completed: every host of {r['fleet']} runs {r['to_version']}")
                if r["emergency"]:
                    from pipeline.kpi import emergencies
                    emergencies.note_rolled_out(self.store, r["emergency"], r["fleet"], r["to_version"],
                                                at=state.get(rid)["finished_at"])
            except RolledBack as back:
                state.update(rid, phase=ROLLBACK, reason=str(back), failure=back.failure)
                self.log(f"ROLLING BACK: {back}")
        r = state.get(rid)
        if r["phase"] == ROLLBACK:
            self._back(state, rid, policy, engine)
            state.update(rid, phase=DONE, result=ROLLED_BACK, finished_at=now_iso())
            self.log(f"{r['kind']} {rid} rolled back: every host of {r['fleet']} runs its previous version again")
        return self.export(state, rid)

    def _forward(self, state, rid, policy, engine):
        r = state.get(rid)
        plan = r["plan"]
        for i, wave in enumerate(plan["waves"]):
            if i < r["wave"]:
                continue
            state.update(rid, wave=i)
            state.record(rid, "wave_started", wave=wave["name"], detail=wave)
            self.log(f"wave {wave['name']}: replacing {', '.join(wave['hosts'])} with {r['to_version']}")
            for batch in wave["batches"]:
                self._replace(state, rid, engine, wave["name"], batch, r["to_version"], forward=True)
            fleet = self.fleets.load(r["fleet"])
            new = Hosts([h["name"] for h in fleet.hosts if h["version"] == r["to_version"]], [r["to_version"]])
            old = [h for h in fleet.hosts if h["version"] != r["to_version"]]
            client = self._prometheus(fleet).client
            self._settle(state, rid, client, policy, wave["name"], new)
            self._bake(wave)
            result = analyse(client, policy.gates, new,
                             Hosts([h["name"] for h in old], sorted({h["version"] for h in old})),
                             on_measurement=lambda g, m, w=wave["name"]: self._measured(state, rid, w, g, m))
            state.record(rid, "wave_analysed", wave=wave["name"], detail=result.to_dict())
            if not result.passed:
                raise RolledBack(f"wave {wave['name']}: {result.summary()}", _failure(wave["name"], result))
            self.log(f"wave {wave['name']} passed: {result.summary()}")
            state.update(rid, wave=i + 1)

    def _back(self, state, rid, policy, engine):
        r = state.get(rid)
        fleet = self.fleets.load(r["fleet"])
        todo = [h["name"] for h in fleet.hosts if h["version"] != r["originals"].get(h["name"], h["version"])]
        for j in range(0, len(todo), policy.max_parallel):
            batch = todo[j:j + policy.max_parallel]
            by_version = {}
            for slot in batch:
                by_version.setdefault(r["originals"][slot], []).append(slot)
            for version, slots in by_version.items():
                self._replace(state, rid, engine, "rollback", slots, version, forward=False)
        fleet = self.fleets.load(r["fleet"])
        problems = []
        for h in fleet.hosts:
            hh = health.check(h, expect=r["originals"].get(h["name"], h["version"]))
            if not hh.ok:
                problems.append(f"{h['name']}: {'; '.join(hh.problems)}")
        state.record(rid, "fleet_verified", wave="rollback", detail={"problems": problems})
        if problems:
            raise GoldenError("the fleet is not healthy after the rollback: " + " | ".join(problems), field="fleet")
        self.log(f"fleet {r['fleet']} verified: " + ", ".join(f"{h['name']} {h['version']}" for h in fleet.hosts))

    def _replace(self, state, rid, engine, wave, slots, version, forward):
        """Replace the hosts of `slots` not already on `version` by new hosts of it, in parallel."""
        name = state.get(rid)["fleet"]
        fleet = self.fleets.load(name)
        started = {}
        for slot in slots:
            old = fleet.host(slot)
            if old["version"] == version:
                continue
            new_id = engine.new_id(slot)
            seq = state.intend(rid, "replace", wave=wave, host=slot,
                               detail={"old_id": old.get("id"), "new_id": new_id, "from": old["version"], "to": version})
            started[slot] = (seq, old, engine.launch(name, slot, version, host_id=new_id), time.monotonic())
        for slot, (seq, old, new, t0) in started.items():
            problems = health.ready(engine, new, version, READY_TIMEOUT)
            if problems:
                engine.destroy(new)
                state.done(seq)
                reason = f"{slot}: the new host on {version} never became healthy: {'; '.join(problems)}"
                if forward:
                    raise RolledBack(f"wave {wave}: {reason}",
                                     {"wave": wave, "metric": "health", "value": "; ".join(problems), "threshold": "healthy"})
                raise GoldenError(reason, field="fleet")
            self._adopt(engine, name, new, old)
            seconds = round(time.monotonic() - t0, 1)
            state.record(rid, "replaced", wave=wave, host=slot,
                         detail={"from": old["version"], "to": version, "seconds": seconds, "id": new["id"]})
            state.done(seq)
            self.log(f"{slot}: now {version} (host {new['id']}, healthy after {seconds}s)")

    def _reconcile(self, state, rid, fleet, engine):
        """After a crash: no host the record does not list, every host it lists running."""
        for orphan in engine.orphans({h.get("id") for h in fleet.hosts}):
            self.log(f"{orphan['name']}: host {orphan['id']} is not in the fleet record (left by an interrupted "
                     "step); destroying it")
            engine.destroy(orphan)
        for seq in [s["seq"] for s in state.pending(rid)]:
            state.done(seq)
        for i, h in enumerate(list(fleet.hosts)):
            if engine.alive(h):
                continue
            self.log(f"{h['name']}: host {h.get('id')} is not running; booting a new host on {h['version']}")
            self._replace_dead(state, rid, engine, fleet, h)
        if not self._observers(fleet).running():
            self._observers(fleet).start(self.fleets.load(fleet.fleet))

    def _replace_dead(self, state, rid, engine, fleet, dead):
        seq = state.intend(rid, "reboot_dead", host=dead["name"], detail={"old_id": dead.get("id"), "to": dead["version"]})
        new = engine.launch(fleet.fleet, dead["name"], dead["version"])
        problems = health.ready(engine, new, dead["version"], READY_TIMEOUT)
        if problems:
            engine.destroy(new)
            raise GoldenError(f"{dead['name']}: could not bring a host of {dead['version']} back: {'; '.join(problems)}")
        self._adopt(engine, fleet.fleet, new, dead)
        state.done(seq)

    def _adopt(self, engine, name, new, old):
        """The healthy new host takes its slot in the fleet record (the observers follow), then the old one goes."""
        new["state"] = "active"
        fleet = self.fleets.load(name)
        fleet.hosts[[h["name"] for h in fleet.hosts].index(new["name"])] = new
        self.fleets.save(fleet)
        observers = self._observers(fleet)
        if observers.running():          # else reconcile starts them on the record as it now is
            observers.follow(fleet)
        engine.destroy(old)

    def _settle(self, state, rid, client, policy, wave, new):
        said = {}

        def waiting(missing, waited):
            text = "; ".join(f"{g} for {', '.join(h)}" for g, h in missing.items())
            if said.get("text") != text or waited - said.get("at", 0) >= 20:
                self.log(f"wave {wave}: waiting for Prometheus to answer {text} ({waited:.0f}s)")
                said.update(text=text, at=waited)
        t0 = time.monotonic()
        missing = settle(client, policy.gates, new, SETTLE_TIMEOUT, on_wait=waiting)
        seconds = round(time.monotonic() - t0, 1)
        state.record(rid, "settled", wave=wave, detail={"seconds": seconds, "missing": missing})
        if missing:
            self.log(f"wave {wave}: after {SETTLE_TIMEOUT}s Prometheus still has no answer for "
                     + "; ".join(f"{g} ({', '.join(h)})" for g, h in missing.items()) + "; the analysis judges it")
        elif said:
            self.log(f"wave {wave}: Prometheus answers every gate for {', '.join(new.names)} "
                     f"after {seconds:.0f}s")

    def _bake(self, wave):
        remaining = wave["bake"]
        while remaining > 0:
            self.log(f"wave {wave['name']}: baking, {remaining}s left")
            step = min(remaining, 10)
            time.sleep(step)
            remaining -= step

    def _measured(self, state, rid, wave, gate_result, m):
        state.record(rid, "measurement", wave=wave, detail=m.to_dict())
        values = ", ".join(f"{h} {_fmt(v)}" for h, v in m.values.items()) or "no data"
        limits = ", ".join(f"{k} {_fmt(v)}" for k, v in m.thresholds.items())
        mark = "ok  " if m.verdict != FAILED else "FAIL"
        self.log(f"wave {wave}: {mark} {m.metric}: {values} (limits {limits}){'' if m.verdict != FAILED else ' — ' + m.reason}")

    def _observers(self, fleet):
        return Observers(self.fleets.runtime(fleet.fleet))

    def _prometheus(self, fleet):
        return self._observers(fleet).prometheus()

    # ---- the record -----------------------------------------------------------------------------

    def export(self, state, rid):
        """rollout.json in <store>/rollouts/<fleet>/<id>/ from the persisted state (and the HTML report)."""
        r = state.get(rid)
        steps = state.steps(rid)
        waves = []
        for w in r["plan"]["waves"]:
            mine = [s for s in steps if s["wave"] == w["name"]]
            if not mine:
                continue
            analysed = [s for s in mine if s["kind"] == "wave_analysed"]
            waves.append({
                "name": w["name"], "hosts": w["hosts"], "bake": w["bake"], "started_at": mine[0]["at"],
                "finished_at": mine[-1]["done_at"],
                "result": ("passed" if analysed[-1]["detail"]["passed"] else "failed") if analysed else
                          ("failed" if r["failure"] and r["failure"]["wave"] == w["name"] else "interrupted"),
                "replacements": [{"host": s["host"], **s["detail"]} for s in mine if s["kind"] == "replaced"],
                "settle": next((s["detail"] for s in mine if s["kind"] == "settled"), None),
                "measurements": [_measurement(s) for s in mine if s["kind"] == "measurement"]})
        back = [s for s in steps if s["wave"] == "rollback"]
        record = {"id": rid, "fleet": r["fleet"], "kind": r["kind"],
                  "from": sorted(set(r["originals"].values())), "originals": r["originals"], "to": r["to_version"],
                  "emergency": bool(r["emergency"]), "cve": r["emergency"], "policy": r["policy"],
                  "started_at": r["started_at"], "finished_at": r["finished_at"],
                  "result": r["result"] or ("rolling_back" if r["phase"] == ROLLBACK else "running"),
                  "reason": r["reason"], "failure": r["failure"], "plan": r["plan"], "waves": waves,
                  "rollback": {"replacements": [{"host": s["host"], **s["detail"]} for s in back if s["kind"] == "replaced"]}}
        d = os.path.join(self.store.root, "rollouts", r["fleet"], rid)
        os.makedirs(d, exist_ok=True)
        write_json_atomic(os.path.join(d, "rollout.json"), record)
        record["dir"] = d
        dashboard = store_dashboard(self.store.root)
        write_report(record, os.path.relpath(dashboard, d))
        if record["result"] in (COMPLETED, ROLLED_BACK):
            refresh_dashboard(self.store, self.log)
        return record


def _check_fix(store, cve, version):
    """An emergency rollout carries a fix the emergency ledger knows (from `golden run --emergency CVE`)."""
    from pipeline.kpi import emergencies
    ledger = emergencies.load(store, cve) or {"phases": []}
    fixes = {p.get("version") for p in ledger["phases"] if p["phase"] == "published"}
    if version not in fixes:
        raise GoldenError(f"{version} is not a published fix of {cve} (published fixes: "
                          f"{', '.join(sorted(f for f in fixes if f)) or 'none'}; build one with "
                          f"`golden run --emergency {cve}`)", field="--emergency")


def _failure(wave, result):
    g = result.failed_gate
    m = next(m for m in reversed(g.measurements) if m.verdict == FAILED)
    finite = [v for v in m.values.values() if v is not None and math.isfinite(v)]
    lower = g.gate.metric.better == "lower"
    value = (max(finite) if lower else min(finite)) if finite else None
    limits = ", ".join(f"{k} {_fmt(v)}" for k, v in m.thresholds.items())
    return {"wave": wave, "metric": g.gate.metric.name, "value": value, "threshold": limits, "reason": m.reason}


def _measurement(step):
    d = step["detail"]
    finite = [v for v in d["values"].values() if isinstance(v, (int, float))]
    higher_is_better = any(k in d["thresholds"] for k in ("min", "relative_min"))
    return {"metric": d["metric"], "at": step["at"], "time": d["time"], "values": d["values"],
            "value": ((min if higher_is_better else max)(finite)) if finite else None,   # the worst host
            "thresholds": d["thresholds"], "baseline": d["baseline"],
            "passed": d["verdict"] != FAILED, "reason": d["reason"]}


def _fmt(v):
    return "none" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
