"""plan and apply (lab 11), in Terraform's vocabulary: refresh what is running, compare it with the spec, and
list the actions: ``+`` create, ``~`` update in place, ``-/+`` replace (naming the attribute that forces it),
``-`` destroy; changes made outside labkit since the last apply are reported as drift. ``apply`` runs a plan
only if the state has not moved since the plan was made; applying a fresh plan twice changes nothing.

>>> import tempfile, labkit as lk
>>> spec = lk.ops.load_spec({"name": "s", "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4"}]})
>>> state, backend = lk.ops.StateFile(tempfile.mkdtemp() + "/s.tfstate"), lk.ops.SimBackend()
>>> p = lk.ops.plan(spec, state, backend)
>>> p.detailed_exitcode, [c.symbol for c in p.changes]
(2, ['+'])
>>> lk.ops.apply(p).serial
1
>>> lk.ops.plan(spec, state, backend).detailed_exitcode
0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from labkit.ops.backend import FORCES_REPLACEMENT, attributes
from labkit.ops.state import State, StateFile

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "destroy": "-", "drift": "~"}
VERBS = {"create": "will be created", "update": "will be updated in-place", "replace": "must be replaced",
         "destroy": "will be destroyed", "drift": "has changed outside labkit"}


class StalePlanError(RuntimeError):
    """The state (or what is running) moved after the plan was made: plan again."""


@dataclass(frozen=True)
class Change:
    """One action on one pool: `action` (create/update/replace/destroy, or drift), attributes before and
    after, and the attributes that force a replacement."""

    action: str
    address: str
    before: dict | None
    after: dict | None
    forces: tuple = ()

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]

    @property
    def changed(self) -> tuple:
        """Attributes whose value differs between before and after."""
        b, a = self.before or {}, self.after or {}
        return tuple(k for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k))

    def render(self) -> str:
        if self.action == "drift" and self.after is None:          # deleted by hand: Terraform's wording
            return "\n".join([f"  # pool.{self.address} has been deleted outside labkit",
                              f"  - pool \"{self.address}\" {{"]
                             + [f"      - {k} = {_show(v)}" for k, v in (self.before or {}).items() if v is not None]
                             + ["    }"])
        head = f"  # pool.{self.address} {VERBS[self.action]}" + (
            f" ({', '.join(self.forces)} forces replacement)" if self.forces else "")
        lines = [head, f"{self.symbol:>3} pool \"{self.address}\" {{"]
        if self.action in ("create", "destroy"):
            attrs = self.after if self.action == "create" else self.before
            sign = "+" if self.action == "create" else "-"
            lines += [f"      {sign} {k} = {_show(v)}" for k, v in attrs.items() if v is not None]
        else:
            for k in self.changed:
                note = "  # forces replacement" if k in self.forces else ""
                lines.append(f"      ~ {k} = {_show((self.before or {}).get(k))} -> "
                             f"{_show((self.after or {}).get(k))}{note}")
        return "\n".join(lines + ["    }"])


def _show(v) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (str, dict)) else ("null" if v is None else str(v))


@dataclass(frozen=True)
class Plan:
    """What apply would do: `changes` (Change, in create/update/replace/destroy order), `drift` found on
    refresh, the state `serial`/`lineage` it was made against, and the refreshed resources."""

    changes: tuple
    drift: tuple
    serial: int
    lineage: str
    desired: dict = field(repr=False)
    refreshed: dict = field(repr=False)
    state: StateFile | None = field(default=None, repr=False, compare=False)
    backend: object = field(default=None, repr=False, compare=False)

    @property
    def detailed_exitcode(self) -> int:
        """``terraform plan -detailed-exitcode``: 0 nothing to do, 2 changes to apply."""
        return 2 if self.changes else 0

    @property
    def counts(self) -> dict:
        """Terraform's summary: a replacement counts as one add and one destroy."""
        n = {a: sum(c.action == a for c in self.changes) for a in ("create", "update", "replace", "destroy")}
        return {"add": n["create"] + n["replace"], "change": n["update"], "destroy": n["destroy"] + n["replace"]}

    def render(self) -> str:
        """The plan as text, the way ``terraform plan`` prints it."""
        out = []
        if self.drift:
            out += ["Note: Objects have changed outside of labkit", "",
                    "labkit detected the following changes made outside of labkit since the last apply:", ""]
            out += [c.render() for c in self.drift] + [""]
        if not self.changes:
            out.append("No changes. Your infrastructure matches the configuration.")
            return "\n".join(out)
        out += ["labkit will perform the following actions:", ""]
        out += [c.render() + "\n" for c in self.changes]
        n = self.counts
        out.append(f"Plan: {n['add']} to add, {n['change']} to change, {n['destroy']} to destroy.")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()

    def to_frame(self):
        """One row per change (drift included): action, symbol, address, changed attributes, forces."""
        import pandas as pd

        rows = [{"action": c.action, "symbol": c.symbol, "address": c.address, "changed": ", ".join(c.changed),
                 "forces": ", ".join(c.forces)} for c in self.drift + self.changes]
        return pd.DataFrame(rows, columns=["action", "symbol", "address", "changed", "forces"])


def _state_file(state) -> StateFile:
    return state if isinstance(state, StateFile) else StateFile(state)


def plan(spec, state, backend) -> Plan:
    """Refresh from `backend`, then what it takes to make it match `spec` (lab 11).

    `state`: a StateFile or a path to one (created by the first apply). Pools running but never applied by
    labkit are not labkit's (unmanaged) and are left alone, as Terraform leaves them.
    """
    sf = _state_file(state)
    current: State = sf.read()
    desired = attributes(spec)
    running = backend.read()
    managed = set(current.resources) | set(desired)
    refreshed = {a: running[a] for a in sorted(managed) if a in running}
    drift = []
    for a in sorted(current.resources):
        if refreshed.get(a) != current.resources[a]:
            drift.append(Change("drift", a, current.resources[a], refreshed.get(a)))
    changes = []
    for a in desired:
        if a not in refreshed:
            changes.append(Change("create", a, None, desired[a]))
        elif refreshed[a] != desired[a]:
            forces = tuple(k for k in FORCES_REPLACEMENT if refreshed[a].get(k) != desired[a].get(k))
            changes.append(Change("replace" if forces else "update", a, refreshed[a], desired[a], forces))
    changes += [Change("destroy", a, refreshed[a], None) for a in refreshed if a not in desired]
    order = {"create": 0, "update": 1, "replace": 2, "destroy": 3}
    changes.sort(key=lambda c: order[c.action])
    return Plan(tuple(changes), tuple(drift), current.serial, current.lineage, desired, refreshed, sf, backend)


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did: the state's new `serial`, and how many pools were added, changed, destroyed."""

    serial: int
    added: int
    changed: int
    destroyed: int

    def __repr__(self) -> str:
        return (f"Apply complete! Resources: {self.added} added, {self.changed} changed, {self.destroyed} "
                f"destroyed. (state serial {self.serial})")


def apply(plan: Plan) -> ApplyResult:
    """Carry out `plan` on its backend and record the result in its state file, under the state's lock.

    Refused (StalePlanError) if the state's serial or lineage, or what is running, moved since the plan was
    made, as ``terraform apply`` refuses a stale saved plan. Nothing to do = nothing written.
    """
    if not isinstance(plan, Plan) or plan.state is None or plan.backend is None:
        raise ValueError("apply takes a Plan made by lk.ops.plan(spec, state, backend).")
    sf, backend = plan.state, plan.backend
    with sf.lock():
        current = sf.read()
        if (current.serial, current.lineage) != (plan.serial, plan.lineage):
            raise StalePlanError(f"the plan was made against state serial {plan.serial} "
                                 f"(lineage {plan.lineage[:8]}…) but the state is now serial {current.serial} "
                                 f"(lineage {current.lineage[:8]}…): plan again.")
        running = backend.read()
        if {a: running[a] for a in plan.refreshed if a in running} != plan.refreshed or any(
                c.action == "create" and c.address in running for c in plan.changes):
            raise StalePlanError("what is running changed since the plan was made: plan again.")
        for c in plan.changes:
            if c.action == "create":
                backend.create(c.address, c.after)
            elif c.action == "update":
                backend.update(c.address, c.after)
            elif c.action == "replace":
                backend.destroy(c.address)
                backend.create(c.address, c.after)
            else:
                backend.destroy(c.address)
        n = plan.counts
        if current.resources == plan.desired:
            return ApplyResult(current.serial, n["add"], n["change"], n["destroy"])
        new = sf.write(current.next(plan.desired))
        return ApplyResult(new.serial, n["add"], n["change"], n["destroy"])
