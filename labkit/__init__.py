"""labkit — the helper package behind the labs: ``import labkit as lk``.

Data flows one way: targets + model → profile → estimate → decisions → deployment → report.
Grading (check, build, grade) sits beside that flow and never imports the simulator.

>>> import labkit as lk
>>> lk.device("h100-sxm").kind
'cloud-gpu'
"""

from __future__ import annotations

__version__ = "0.1.0"

# Flat learner-facing API: name -> "module:attribute", imported on first use so that
# `import labkit` stays fast (torch, onnx and jax load only when a function needs them).
_API = {
    "devices": "labkit.targets:devices",
    "device": "labkit.targets:device",
    "links": "labkit.targets:links",
    "link": "labkit.targets:link",
    "Device": "labkit.targets:Device",
    "Link": "labkit.targets:Link",
    "profile": "labkit.profile:profile",
    "Profile": "labkit.profile:Profile",
    "Layer": "labkit.profile:Layer",
    "estimate": "labkit.estimate:estimate",
    "Estimate": "labkit.estimate:Estimate",
    "measure": "labkit.measure:measure",
    "Measurement": "labkit.measure:Measurement",
    "calibrate": "labkit.calibrate:calibrate",
    "Calibration": "labkit.calibrate:Calibration",
    "validate": "labkit.validate:validate",
    "check": "labkit.check:check",
    "partition": "labkit.partition:partition",
    "Plan": "labkit.partition:Plan",
}
_SUBMODULES = {"plot", "zoo", "carbon", "systolic", "widgets", "data", "compile", "compress", "federated"}

__all__ = sorted([*_API, *_SUBMODULES])


# Functions that share their module's name (lk.measure, lk.profile, ...) are bound eagerly: once any code
# imports e.g. `labkit.measure`, Python would otherwise set `labkit.measure` to the module, and
# `lk.measure(fn)` would fail with "module is not callable". These modules import nothing heavy at import time.
from labkit.calibrate import calibrate as calibrate  # noqa: E402
from labkit.check import check as check  # noqa: E402
from labkit.estimate import estimate as estimate  # noqa: E402
from labkit.measure import measure as measure  # noqa: E402
from labkit.partition import partition as partition  # noqa: E402
from labkit.profile import profile as profile  # noqa: E402
from labkit.validate import validate as validate  # noqa: E402


def __getattr__(name: str):
    from labkit.lazy import resolve

    return resolve(globals(), {**_API, **{m: f"labkit.{m}" for m in _SUBMODULES}}, name, "labkit name")


def __dir__():
    return __all__
