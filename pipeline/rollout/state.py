"""A fleet's rollout state in SQLite: every step is written (and synced) before it is taken, so a
controller killed at any point can be resumed and finish or roll back.

    state = State(runtime_dir)                       # <fleet runtime>/rollouts.sqlite
    rid = state.create(fleet="web", to="v2", originals={"web-1": "v1"}, plan=..., policy=..., emergency=None)
    step = state.intend(rid, "replace", wave="canary", host="web-1", detail={...}); state.done(step)
    state.unfinished()                               # the rollout a `--resume` continues, or None

A rollout is in one phase at a time: `forward` (waves in order from `wave`), `rollback` (every host
back to its original version), then `done` with a result: completed or rolled_back.
"""

import json
import os
import sqlite3
import uuid

from pipeline.fleet.record import now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, fleet TEXT NOT NULL, kind TEXT NOT NULL, to_version TEXT, originals TEXT NOT NULL,
    plan TEXT NOT NULL, policy TEXT, emergency TEXT, phase TEXT NOT NULL, wave INTEGER NOT NULL DEFAULT 0,
    result TEXT, reason TEXT, failure TEXT, started_at TEXT NOT NULL, finished_at TEXT, pid INTEGER);
CREATE TABLE IF NOT EXISTS steps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout TEXT NOT NULL REFERENCES rollouts(id), at TEXT NOT NULL,
    kind TEXT NOT NULL, wave TEXT, host TEXT, detail TEXT NOT NULL, done_at TEXT);
"""

FORWARD, ROLLBACK, DONE = "forward", "rollback", "done"
COMPLETED, ROLLED_BACK = "completed", "rolled_back"


class State:
    def __init__(self, runtime_dir):
        self.path = os.path.join(runtime_dir, "rollouts.sqlite")
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")     # a step on disk before it is taken, also across power loss
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    def create(self, *, fleet, kind, to, originals, plan, policy, emergency):
        rid = f"{now_iso().replace('-', '').replace(':', '').split('+')[0]}Z-{uuid.uuid4().hex[:4]}"
        phase = FORWARD if kind == "rollout" else ROLLBACK
        self.db.execute("INSERT INTO rollouts (id, fleet, kind, to_version, originals, plan, policy, emergency, phase, "
                        "started_at, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (rid, fleet, kind, to, json.dumps(originals), json.dumps(plan), policy, emergency, phase,
                         now_iso(), os.getpid()))
        return rid

    def get(self, rid):
        row = self.db.execute("SELECT * FROM rollouts WHERE id = ?", (rid,)).fetchone()
        out = dict(row)
        for k in ("originals", "plan", "failure"):
            out[k] = json.loads(out[k]) if out[k] else None
        return out

    def unfinished(self):
        row = self.db.execute("SELECT id FROM rollouts WHERE phase != ? ORDER BY started_at DESC", (DONE,)).fetchone()
        return self.get(row["id"]) if row else None

    def history(self):
        return [self.get(r["id"]) for r in self.db.execute("SELECT id FROM rollouts ORDER BY started_at, id")]

    def update(self, rid, **fields):
        for k in ("failure",):
            if k in fields and fields[k] is not None:
                fields[k] = json.dumps(fields[k])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE rollouts SET {sets} WHERE id = ?", (*fields.values(), rid))

    def intend(self, rid, kind, *, wave=None, host=None, detail=None):
        """Record a step about to be taken; returns its sequence number for `done`."""
        cur = self.db.execute("INSERT INTO steps (rollout, at, kind, wave, host, detail) VALUES (?, ?, ?, ?, ?, ?)",
                              (rid, now_iso(), kind, wave, host, json.dumps(detail or {})))
        return cur.lastrowid

    def record(self, rid, kind, *, wave=None, host=None, detail=None):
        """A step that is already complete when written (a measurement, a wave's verdict)."""
        seq = self.intend(rid, kind, wave=wave, host=host, detail=detail)
        self.done(seq)
        return seq

    def done(self, seq):
        self.db.execute("UPDATE steps SET done_at = ? WHERE seq = ?", (now_iso(), seq))

    def steps(self, rid, kind=None):
        q, args = "SELECT * FROM steps WHERE rollout = ?", [rid]
        if kind:
            q += " AND kind = ?"
            args.append(kind)
        rows = self.db.execute(q + " ORDER BY seq", args).fetchall()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def pending(self, rid):
        """Steps intended but never marked done: what a dead controller may have half-taken."""
        return [s for s in self.steps(rid) if s["done_at"] is None]
