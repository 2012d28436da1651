"""``lk.systolic``: a TPU-like systolic array — the analytic model ``lk.estimate`` uses, a cycle-level simulator
you can watch, and its pictures (lab 05).
"""

from labkit.args import namespace
from labkit.systolic.model import array_cycles, folds, padding_utilization, streaming_utilization, utilization
from labkit.systolic.pictures import plot_busy, plot_frames, slider
from labkit.systolic.sim import SimResult, simulate

__all__ = ["SimResult", "array_cycles", "folds", "padding_utilization", "plot_busy", "plot_frames", "simulate",
           "slider", "streaming_utilization", "utilization"]

__getattr__, __dir__ = namespace("lk.systolic", __all__)
