"""``lk.carbon`` yearly tables: grid carbon intensity per region, data-centre PUE, grams of CO2e for an energy.

    carbon_g = energy_j / 3.6e6 J/kWh  x  grid intensity (gCO2e/kWh)  x  PUE

The 2020 time series (labkit.carbon.timeseries) and the scheduler build on this module, never the reverse.
Data: datasets/carbon.toml (yearly averages with source and year). Introduced in lab 10; lab 01 meets it
through ``lk.estimate(...).carbon_g``.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

from labkit.args import unknown_name
from labkit.targets.catalog import catalog_key, file_version, read_toml

J_PER_KWH = 3.6e6

@lru_cache(maxsize=4)
def _tables(version: tuple[str, int]) -> tuple[dict, dict, dict, dict]:
    """grids, regions, pue classes and pue_by_kind from carbon.toml, checked for dangling references."""
    data = read_toml("carbon.toml")
    grids, regions = data.get("grids", {}), data.get("regions", {})
    pue_classes, by_kind = data.get("pue", {}), data.get("pue_by_kind", {})
    for name, row in regions.items():
        if row.get("grid") not in grids:
            raise ValueError(f"carbon.toml: region {name!r} maps to unknown grid {row.get('grid')!r}.")
    for kind, cls in by_kind.items():
        if cls not in pue_classes:
            raise ValueError(f"carbon.toml: pue_by_kind.{kind} = {cls!r} is not a [pue.*] class.")
    return grids, regions, pue_classes, by_kind


def tables():
    """grids, cloud regions, PUE classes and PUE by kind, from carbon.toml (re-read when the file changes)."""
    return _tables(file_version("carbon.toml"))


def grid_of(region) -> tuple[str, dict]:
    """(grid code, its carbon.toml row) for a grid or a cloud region: e.g. "aws-eu-west-3" -> ("fr", {...})."""
    grids, regions, _, _ = tables()
    key = catalog_key(region)
    if key in grids:
        return key, grids[key]
    if key in regions:
        grid = regions[key]["grid"]
        return grid, grids[grid]
    raise unknown_name("region", region, [*grids, *regions])


def regions():
    """Every grid and cloud region as a DataFrame: g_per_kwh, year, grid, kind ('grid' or 'cloud'), source.

    >>> import labkit as lk
    >>> t = lk.carbon.regions()
    >>> bool(t.loc["se", "g_per_kwh"] < t.loc["pl", "g_per_kwh"])
    True
    """
    import pandas as pd

    grids, cloud, _, _ = tables()
    rows = [{"region": code, "kind": "grid", "name": g["name"], "grid": code, "g_per_kwh": float(g["g_per_kwh"]),
             "year": g["year"], "approximate": bool(g.get("approximate", False)), "source": g["source"]}
            for code, g in grids.items()]
    for name, r in cloud.items():
        g = grids[r["grid"]]
        rows.append({"region": name, "kind": "cloud", "name": r.get("location", name), "grid": r["grid"],
                     "g_per_kwh": float(g["g_per_kwh"]), "year": g["year"],
                     "approximate": bool(g.get("approximate", False)), "source": g["source"]})
    return pd.DataFrame(rows).set_index("region")


def intensity(region) -> float:
    """Yearly average grid carbon intensity of `region` in gCO2e per kWh (lab 10).

    `region` is a country code ("fr", "de", "pl"), a US state ("us-va"), a cloud region mapped to its grid
    ("aws-us-east-1", "gcp-europe-north1", "azure-westeurope"), or "world".

    >>> import labkit as lk
    >>> lk.carbon.intensity("aws-us-east-1") == lk.carbon.intensity("us-va")
    True
    """
    return float(grid_of(region)[1]["g_per_kwh"])


def pue(device_or_kind="cloud-gpu") -> float:
    """Power usage effectiveness to apply for a device, device kind, device name or PUE class (lab 10).

    The rule (datasets/carbon.toml, [pue_by_kind]): rented cloud kinds (cloud-gpu, cloud-cpu, cloud-npu, tpu)
    run in hyperscale facilities -> hyperscale PUE (~1.1); edge-gpu, edge-cpu, npu, mcu and local hardware
    -> 1.0 (no facility overhead counted). A class name ("hyperscale", "colocation", "on-premise") gives
    that class's value, e.g. to model a colocation rack.

    >>> import labkit as lk
    >>> lk.carbon.pue("tpu") > 1.0, lk.carbon.pue("jetson-orin-nano")
    (True, 1.0)
    """
    from labkit.targets import KINDS, Device, device

    _, _, classes, by_kind = tables()
    if isinstance(device_or_kind, Device):
        kind = device_or_kind.kind
    elif isinstance(device_or_kind, str) and catalog_key(device_or_kind) in classes:
        return float(classes[catalog_key(device_or_kind)]["value"])
    elif isinstance(device_or_kind, str) and catalog_key(device_or_kind) in KINDS:
        kind = catalog_key(device_or_kind)
    elif isinstance(device_or_kind, str):
        try:
            kind = device(device_or_kind).kind
        except ValueError as err:
            raise ValueError(f"pue() takes a Device, a device name, a kind ({', '.join(KINDS)}) or a PUE "
                             f"class ({', '.join(classes)}); {device_or_kind!r} is none of these.") from err
    else:
        raise ValueError(f"pue() takes a Device, a device name, a kind or a PUE class, got {device_or_kind!r}.")
    if kind not in by_kind:
        raise ValueError(f"carbon.toml has no PUE class for device kind {kind!r}; add it under [pue_by_kind].")
    return float(classes[by_kind[kind]]["value"])


def carbon_g(energy_j, region, pue: float = 1.0) -> float:
    """Grams CO2e for `energy_j` joules drawn in `region`, times the facility's `pue` (lab 10).

    ``energy_j / 3.6e6`` kWh x ``intensity(region)`` g/kWh x ``pue``.

    >>> import labkit as lk
    >>> lk.carbon.carbon_g(3.6e6, "fr")            # 1 kWh in France
    56.0
    >>> round(lk.carbon.carbon_g(3.6e6, "fr", pue=lk.carbon.pue("cloud-gpu")), 1)
    61.6
    """
    ok = isinstance(energy_j, numbers.Real) and not isinstance(energy_j, bool) and math.isfinite(energy_j)
    if not ok or energy_j < 0:
        raise ValueError(f"energy_j must be a finite number of joules >= 0, got {energy_j!r}.")
    if not isinstance(pue, numbers.Real) or isinstance(pue, bool) or not math.isfinite(pue) or pue < 1.0:
        raise ValueError(f"pue must be >= 1.0 (facility energy / IT energy; 1.0 = no overhead), got {pue!r}.")
    return float(energy_j) / J_PER_KWH * intensity(region) * float(pue)

