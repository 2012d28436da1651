"""``lk.profile``: one Profile type for torch modules, ONNX models and JAX functions (lab 01)."""

from labkit.profile.core import OP_CLASSES, Layer, Profile
from labkit.profile.dispatch import profile

__all__ = ["OP_CLASSES", "Layer", "Profile", "profile"]
