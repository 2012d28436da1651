"""``lk.partition``: split a model between an edge device and the cloud (lab 06).
"""

from labkit.partition.plan import OBJECTIVES, Plan, Problem, partition

__all__ = ["OBJECTIVES", "Plan", "Problem", "partition"]
