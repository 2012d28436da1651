"""The state file (lab 11), after Terraform's: what was last applied, a `serial` bumped on every write, a
`lineage` that names the history it belongs to, written atomically (temp file + ``os.replace``) under a lock
file so two applies cannot race and a crash never leaves half a file.

>>> import tempfile, labkit as lk
>>> st = lk.ops.StateFile(tempfile.mkdtemp() + "/labkit.tfstate")
>>> st.read().serial
0
>>> with st.lock():
...     st.write(st.read().next({"gpu": {"replicas": 2}})).serial
1
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

VERSION = 1


class StateLockedError(RuntimeError):
    """Another apply holds the state's lock file."""


@dataclass(frozen=True)
class State:
    """What was last applied: resources by address (pool name -> attributes), serial and lineage."""

    serial: int = 0
    lineage: str = ""                 # "" until the first write gives the history its id

    resources: dict = field(default_factory=dict)

    def next(self, resources: dict) -> State:
        """The state after an apply: same lineage, serial + 1."""
        return State(self.serial + 1, self.lineage or str(uuid.uuid4()), {k: dict(v) for k, v in resources.items()})

    def to_dict(self) -> dict:
        return {"version": VERSION, "serial": self.serial, "lineage": self.lineage, "resources": self.resources}

    def __repr__(self) -> str:
        return f"State(serial={self.serial}, lineage={self.lineage[:8]}…, resources={sorted(self.resources)})"


class StateFile:
    """A state on disk at `path` (JSON), with its lock file ``path + '.lock'``."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"StateFile({str(self.path)!r})"

    def read(self) -> State:
        """The state on disk; an empty one (serial 0, no lineage yet) when there is no file yet."""
        if not self.path.exists():
            return State()
        try:
            d = json.loads(self.path.read_text())
            return State(int(d["serial"]), str(d["lineage"]), dict(d["resources"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"state file {self.path} is not a labkit state ({e}); it was not written by "
                             "labkit.ops (whose writes are atomic).") from None

    def write(self, state: State) -> State:
        """Write `state` atomically: a temp file in the same folder, fsync, then os.replace over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state.to_dict(), f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return state

    def force_unlock(self) -> bool:
        """Remove a lock left by an apply that died (``terraform force-unlock``); True if there was one."""
        try:
            os.unlink(self.lock_path)
            return True
        except FileNotFoundError:
            return False

    @contextlib.contextmanager
    def lock(self):
        """Hold the lock file while inside (created with O_EXCL: a second holder gets StateLockedError)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = self.lock_path.read_text() if self.lock_path.exists() else "?"
            raise StateLockedError(f"state {self.path} is locked by another apply ({holder}); wait for it, or "
                                   f"call .force_unlock() if that process is gone (terraform force-unlock)."
                                   ) from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"pid": os.getpid(), "id": str(uuid.uuid4())}))
        try:
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
