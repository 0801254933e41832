"""Wave arithmetic: which hosts each wave of a policy replaces, on a fleet of a given size.

    p = plan(policy, ["web-1", "web-2", "web-3", "web-4"])
    [(w.name, w.hosts) for w in p.waves], [(s.name, s.reason) for s in p.skipped]

A wave's target is cumulative: the canary's host count (at most the fleet), then ceil(percent × size).
A wave must add at least one host to the previous target; one that would add none (5 % of 4 hosts is
1, already reached by the canary) is skipped, and the plan says why. Hosts are taken in fleet order.
"""

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class PlannedWave:
    index: int             # position in the policy's waves (skipped waves keep their index)
    name: str
    target: int            # hosts on the new version once this wave is done
    hosts: tuple           # the hosts this wave replaces, in fleet order
    batches: tuple         # `hosts` split into groups of at most max_parallel, replaced together
    bake: int              # seconds

    def to_dict(self):
        return {"index": self.index, "name": self.name, "target": self.target, "hosts": list(self.hosts),
                "batches": [list(b) for b in self.batches], "bake": self.bake}


@dataclass(frozen=True)
class SkippedWave:
    index: int
    name: str
    target: int
    reason: str

    def to_dict(self):
        return {"index": self.index, "name": self.name, "target": self.target, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    size: int
    emergency: bool
    waves: tuple           # PlannedWave, in order
    skipped: tuple         # SkippedWave, in order

    def to_dict(self):
        return {"size": self.size, "emergency": self.emergency, "waves": [w.to_dict() for w in self.waves],
                "skipped": [s.to_dict() for s in self.skipped]}

    def lines(self):
        """The plan as a person reads it, one line per wave (skipped waves included, in policy order)."""
        rows = sorted([*self.waves, *self.skipped], key=lambda w: w.index)
        out = []
        for w in rows:
            if isinstance(w, SkippedWave):
                out.append(f"wave {w.name}: skipped ({w.reason})")
            else:
                out.append(f"wave {w.name}: {len(w.hosts)} host(s) → {w.target}/{self.size}, bake {w.bake}s: "
                           + ", ".join(w.hosts))
        return out


def target(wave, size):
    """Hosts on the new version after `wave`, before the at-least-one rule."""
    if wave.hosts is not None:
        return min(wave.hosts, size)
    return math.ceil(Fraction(str(wave.percent)) * size / 100)  # exact: 5 % of 20 is 1, not 1.0000001


def plan(policy, hosts, emergency=False):
    """The waves of `policy` for `hosts` (names in fleet order); `emergency` uses the policy's short bake."""
    hosts = list(hosts)
    if len(set(hosts)) != len(hosts):
        raise ValueError("host names must be unique")
    size, done, waves, skipped = len(hosts), 0, [], []
    for i, wave in enumerate(policy.waves):
        goal = target(wave, size)
        what = f"{wave.hosts} host(s)" if wave.hosts is not None else f"ceil({wave.percent:g} % × {size}) = {goal}"
        if goal <= done:
            skipped.append(SkippedWave(i, wave.name, goal, f"{what} adds no host: {done} already replaced"))
            continue
        new = tuple(hosts[done:goal])
        step = policy.max_parallel
        batches = tuple(new[j:j + step] for j in range(0, len(new), step))
        waves.append(PlannedWave(i, wave.name, goal, new, batches, policy.emergency_bake if emergency else wave.bake))
        done = goal
    return Plan(size, emergency, tuple(waves), tuple(skipped))
