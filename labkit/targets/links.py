"""Network links between an edge device and the cloud: the catalog in datasets/links.toml (lab 06).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from labkit.args import Number, check
from labkit.targets.catalog import file_version, lookup, named_rows, read_toml


@dataclass(frozen=True)
class Link:
    """A network link between an edge device and the cloud.

    >>> import labkit as lk
    >>> lk.link("lte").uplink_bps < lk.link("wifi").uplink_bps
    True
    """

    name: str
    uplink_bps: float          # bits per second, device -> cloud
    downlink_bps: float        # bits per second, cloud -> device
    rtt_s: float
    energy_j_per_bit: float    # device radio energy per bit sent
    egress_usd_per_gb: float   # cloud egress price
    sources: Mapping[str, str] = field(default_factory=dict, repr=False)
    notes: str = field(default="", repr=False)

    def __post_init__(self):
        who = f"Link {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Link name must be a non-empty string, got {self.name!r}.")
        check(f"{who}: uplink_bps", self.uplink_bps, Number(low=0, low_open=True))
        check(f"{who}: downlink_bps", self.downlink_bps, Number(low=0, low_open=True))
        check(f"{who}: rtt_s", self.rtt_s, Number(low=0))
        check(f"{who}: energy_j_per_bit", self.energy_j_per_bit, Number(low=0))
        check(f"{who}: egress_usd_per_gb", self.egress_usd_per_gb, Number(low=0))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def upload_s(self, nbytes: float) -> float:
        """Seconds to send `nbytes` up, excluding the round trip."""
        return 8.0 * nbytes / self.uplink_bps

    def download_s(self, nbytes: float) -> float:
        """Seconds to receive `nbytes`, excluding the round trip."""
        return 8.0 * nbytes / self.downlink_bps


_LINK_KEYS = {"uplink_bps", "downlink_bps", "rtt_s", "energy_j_per_bit", "power_model", "egress_usd_per_gb",
              "aliases", "notes", "sources"}


def _link_from_toml(name: str, row: dict) -> Link:
    extra = set(row) - _LINK_KEYS
    if extra:
        raise ValueError(f"links.toml [{name}]: unknown keys {sorted(extra)}; allowed: {sorted(_LINK_KEYS)}.")
    if ("power_model" in row) == ("energy_j_per_bit" in row):
        raise ValueError(f"links.toml [{name}]: give exactly one of power_model or energy_j_per_bit.")
    if "power_model" in row:
        # Huang et al. (MobiSys 2012): P_mW = alpha_u * r_Mbps + beta while sending at r Mbit/s, so
        # energy per bit = P / r = (alpha_u + beta / r) mW per Mbit/s = (...) nJ/bit.
        pm, rate_mbps = row["power_model"], row["uplink_bps"] / 1e6
        energy = (pm["alpha_u_mw_per_mbps"] + pm["beta_mw"] / rate_mbps) * 1e-9
    else:
        energy = row["energy_j_per_bit"]
    return Link(name=name, uplink_bps=row["uplink_bps"], downlink_bps=row["downlink_bps"], rtt_s=row["rtt_s"],
                energy_j_per_bit=energy, egress_usd_per_gb=row["egress_usd_per_gb"],
                sources=row.get("sources", {}), notes=row.get("notes", ""))


@lru_cache(maxsize=4)
def _links_cached(version: tuple[str, int]) -> tuple[dict[str, Link], dict[str, str]]:
    return named_rows(read_toml("links.toml").get("links", {}), _link_from_toml)


def _link_catalog() -> tuple[dict[str, Link], dict[str, str]]:
    return _links_cached(file_version("links.toml"))


def link(name) -> Link:
    """The catalog Link called `name` ("3g", "lte", "5g", "wifi", "ethernet", "datacenter"; lab 06).

    A Link passed in is returned as-is.

    >>> import labkit as lk
    >>> round(lk.link("lte").upload_s(1e6), 2)   # 1 MB over a 5.85 Mbit/s uplink
    1.37
    """
    if isinstance(name, Link):
        return name
    return lookup("link", name, *_link_catalog())


def links():
    """All catalog links as a DataFrame in human units: uplink/downlink Mbit/s, RTT ms, nJ/bit, $/GB (lab 06).

    >>> import labkit as lk
    >>> bool(lk.links().loc["ethernet", "uplink_mbps"] > lk.links().loc["3g", "uplink_mbps"])
    True
    """
    import pandas as pd

    rows = [{"name": k.name, "uplink_mbps": k.uplink_bps / 1e6, "downlink_mbps": k.downlink_bps / 1e6,
             "rtt_ms": k.rtt_s * 1e3, "energy_nj_per_bit": k.energy_j_per_bit * 1e9,
             "egress_usd_per_gb": k.egress_usd_per_gb} for k in _link_catalog()[0].values()]
    return pd.DataFrame(rows).set_index("name")
