"""The grader's per-cell CPU-time limit (``labkit grade --cell-cpu S``; ``Limits.cell_cpu_s``).

A wall-clock limit per cell fails honest work on a slow or loaded machine, where a cell waits for the CPU; the
CPU seconds a cell uses do not grow with the load. So a busy loop is stopped by CPU time: the runner's watch
(labkit.grade.runner) calls ``CellCPU.poll`` every 0.1 s with the cell events the pytest plugin wrote and the
kernel's processes. When the running cell's kernel (with what it started) has used more than the limit since the
cell started, the kernel gets SIGINT, as nbval sends at its wall-clock limit: the cell fails with
KeyboardInterrupt and the next cells run. A cell that goes on for as many CPU seconds again ignored the
interrupt, and ``poll`` returns why the run must be killed. The wall-clock limits stay, as ceilings for a cell
that hangs without using the CPU (a sleep, a wait).

>>> CellCPU(5.0).poll([], [], []) is None       # no cell running: nothing to do
True
"""

from __future__ import annotations

import signal

import psutil


def cpu_s(procs) -> float:
    """CPU seconds (user + system, and their reaped children's) the processes have used so far."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


class CellCPU:
    """The CPU-time limit of one run: which cell runs, and the kernel's CPU seconds when it started."""

    def __init__(self, limit_s: float):
        self.limit_s = float(limit_s)
        self.cell, self.base, self.interrupted, self.kernels = None, 0.0, False, frozenset()

    def poll(self, events, kernels, procs) -> str | None:
        """`events`: the plugin's cell events so far; `kernels`: the live kernel processes (they get SIGINT);
        `procs`: the kernels and their descendants (their CPU seconds count). None, or why to kill the run."""
        started = [e["cell"] for e in events if e.get("event") == "start"]
        ended = {e["cell"] for e in events if e.get("event") == "end"}
        running = started[-1] if started and started[-1] not in ended else None
        used = cpu_s(procs)
        pids = frozenset(p.pid for p in kernels)
        if running != self.cell or pids != self.kernels:    # a new cell, or a kernel seen for the first time
            self.cell, self.base, self.interrupted, self.kernels = running, used, False, pids
            return None
        if running is None or used - self.base <= self.limit_s:
            return None
        if not self.interrupted:
            self.interrupted = True
            for p in kernels:
                try:
                    p.send_signal(signal.SIGINT)
                except psutil.Error:
                    pass
            return None
        if used - self.base > 2 * self.limit_s:
            return (f"killed: a cell used twice its CPU-time limit of {self.limit_s:g} s "
                    "(it ignored the interrupt)")
        return None
