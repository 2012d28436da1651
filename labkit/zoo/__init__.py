"""``lk.zoo`` (the models the labs use, with trained weights) and ``lk.data`` (the data they were trained on).
"""

from labkit.args import namespace
from labkit.zoo import data
from labkit.zoo.models import NUM_CLASSES, Loaded, ModelInfo, build, example, info, load, names, weights_path

__all__ = ["Loaded", "ModelInfo", "NUM_CLASSES", "build", "data", "example", "info", "load", "names",
           "weights_path"]

__getattr__, __dir__ = namespace("lk.zoo", __all__)
