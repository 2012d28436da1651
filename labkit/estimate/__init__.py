"""``lk.estimate``: one performance model for every target (DESIGN.md §3; labs 01, 05, 06).
"""

from labkit.estimate.model import Estimate, LayerEstimate, carbon_factor, estimate, layer_time, peak_flops

__all__ = ["Estimate", "LayerEstimate", "carbon_factor", "estimate", "layer_time", "peak_flops"]
