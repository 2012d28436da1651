"""``lk.plot`` (pictures) and ``lk.widgets`` (interactive explorers): the report end of the flow.
"""

from labkit.args import namespace
from labkit.plot.carbon import carbon_heatmap, carbon_pareto, carbon_savings, carbon_week
from labkit.plot.compile import break_even, fusions
from labkit.plot.compress import pareto, sensitivity
from labkit.plot.deploy import batching_knee, fleet_timeline, latency_cdf
from labkit.plot.federated import accuracy_rounds, label_mix, round_timeline
from labkit.plot.layers import layer_work
from labkit.plot.llm import llm_batching_knee, llm_roofline, tpot_context
from labkit.plot.llm_serving import kv_occupancy, ttft_tpot
from labkit.plot.roofline import roof, roofline, timeline
from labkit.plot.validation import validation

__all__ = ["accuracy_rounds", "batching_knee", "break_even", "carbon_heatmap", "carbon_pareto", "carbon_savings", "carbon_week", "fleet_timeline", "fusions", "kv_occupancy", "label_mix", "latency_cdf", "layer_work", "llm_batching_knee", "llm_roofline", "pareto", "roof", "roofline", "round_timeline", "sensitivity", "timeline", "tpot_context", "ttft_tpot", "validation"]

__getattr__, __dir__ = namespace("lk.plot", __all__)
