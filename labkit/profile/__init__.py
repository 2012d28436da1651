"""``lk.profile``: one Profile type for torch modules, ONNX models and JAX functions (lab 01)."""

import sys
import types

from labkit.profile.core import OP_CLASSES, Layer, Profile
from labkit.profile.dispatch import profile

__all__ = ["OP_CLASSES", "Layer", "Profile", "profile"]


class _CallablePackage(types.ModuleType):
    """Importing any ``labkit.profile.*`` module makes Python bind ``labkit.profile`` to this package,
    shadowing the function of the same name; calling the package forwards to it, so
    ``lk.profile(model, example)`` works however the imports happened."""

    def __call__(self, *args, **kwargs):
        return profile(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
