"""labkit — the helper package behind the labs: ``import labkit as lk``.

Data flows one way: targets + model → profile → estimate → decisions → deployment → report.
Grading (check, build, grade) sits beside that flow and never imports the simulator. docs/ARCHITECTURE.md draws
the folders and the import rules (tests/test_architecture.py enforces them).

Every namespace is imported here, plainly: none of them loads torch, onnx or jax at import time (those are
imported inside the functions that need them), so ``import labkit`` stays fast.

>>> import labkit as lk
>>> lk.device("h100-sxm").kind
'cloud-gpu'
"""

from __future__ import annotations

from labkit import carbon, compile, compress, deploy, federated, llm, ops, plot, systolic, zoo
from labkit.allocator import steady
from labkit.args import namespace
from labkit.calibration.calibrate import Calibration, calibrate
from labkit.calibration.validate import validate
from labkit.deploy.placement import Placement, placement
from labkit.dtypes import dtype_bytes
from labkit.estimate import Estimate, estimate
from labkit.grade.check import check
from labkit.grade.digest import matches
from labkit.grade.hints import hint
from labkit.measure import Measurement, measure
from labkit.partition import Plan, partition
from labkit.plot import widgets
from labkit.profile import Layer, Profile, profile
from labkit.targets import Device, Link, device, devices, link, links
from labkit.zoo import data

# `from labkit.estimate import estimate` binds the function over the package of the same name for good: a
# package binds its name on its parent only when it is first imported, which these lines have already done.

__version__ = "0.1.0"

__all__ = ["Calibration", "Device", "Estimate", "Layer", "Link", "Measurement", "Placement", "Plan", "Profile",
           "calibrate", "carbon", "check", "compile", "compress", "data", "deploy", "device", "devices",
           "dtype_bytes", "estimate", "federated", "hint", "link", "links", "llm", "matches", "measure", "ops",
           "partition", "placement", "plot", "profile", "systolic", "validate", "widgets", "zoo"]

__getattr__, __dir__ = namespace("labkit", __all__)
del namespace

steady()   # freed memory stays in the process, as on a tuned CPU server: no page faults per call (allocator.py)
del steady
