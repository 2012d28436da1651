"""Targets: the hardware and network catalog in ``datasets/`` (``lk.device``, ``lk.devices``, ``lk.link``,
``lk.links``; labs 00, 01, 06).
"""

from labkit.targets.catalog import catalog_key, dataset_path, datasets_dir
from labkit.targets.cold import cold_s, cold_shares, switch_s, switches
from labkit.targets.devices import KINDS, LOCAL_NAMES, SIDE, Device, device, devices, kinds_on
from labkit.targets.fitted import (
    OpFit,
    blocked_flops,
    call_s,
    fit_for,
    fit_op,
    fresh_buffers,
    fresh_output_s,
    onednn_block,
    reorder_bytes,
    tier_bytes_per_s,
)
from labkit.targets.links import Link, link, links

__all__ = ["KINDS", "LOCAL_NAMES", "SIDE", "Device", "Link", "OpFit", "blocked_flops", "call_s", "cold_s", "cold_shares", "catalog_key", "datasets_dir",
           "dataset_path", "device", "devices", "fit_for", "fit_op", "fresh_buffers",
           "fresh_output_s", "kinds_on", "link", "links", "onednn_block", "reorder_bytes",
           "switch_s", "switches", "tier_bytes_per_s"]
