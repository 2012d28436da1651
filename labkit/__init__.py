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

__version__ = "0.1.0"

# The namespaces: lk.plot, lk.zoo, ...
from labkit import carbon, compile, compress, plot, systolic, zoo  # noqa: E402

# The flat API. Functions that share their module's name (lk.measure, lk.profile, lk.estimate, ...) come last:
# importing a submodule binds its name on the package, and these lines bind the function over it for good.
from labkit.args import namespace  # noqa: E402
from labkit.calibration.calibrate import (
           Calibration,  # noqa: E402
           calibrate,  # noqa: E402, I001
)
from labkit.calibration.validate import validate  # noqa: E402
from labkit.dtypes import dtype_bytes  # noqa: E402
from labkit.estimate import (
           Estimate,  # noqa: E402
           estimate,  # noqa: E402
)
from labkit.grade.check import check  # noqa: E402
from labkit.grade.digest import matches  # noqa: E402
from labkit.grade.hints import hint  # noqa: E402
from labkit.measure import (
           Measurement,  # noqa: E402
           measure,  # noqa: E402
)
from labkit.partition import (
           Plan,  # noqa: E402
           partition,  # noqa: E402
)
from labkit.plot import widgets  # noqa: E402
from labkit.profile import (  # noqa: E402
           Layer,
           Profile,
           profile,  # noqa: E402
)
from labkit.targets import Device, Link, device, devices, link, links  # noqa: E402
from labkit.zoo import data  # noqa: E402

__all__ = ["Calibration", "Device", "Estimate", "Layer", "Link", "Measurement", "Plan", "Profile", "calibrate",
           "carbon", "check", "compile", "compress", "data", "device", "devices", "dtype_bytes", "estimate",
           "hint", "link", "links", "matches", "measure", "partition", "plot", "profile", "systolic", "validate", "widgets", "zoo"]

__getattr__, __dir__ = namespace("labkit", __all__)
del namespace
