"""``lk.widgets``: interactive explorers for the notebooks (lab 06 first).
"""

from __future__ import annotations

import dataclasses

from labkit.args import Number, check, namespace, unknown_name
from labkit.dtypes import normalize_dtype
from labkit.partition.plan import OBJECTIVES, Plan, Problem, check_options
from labkit.targets.devices import kinds_on

COMPRESS = ("none", "fp16", "int8")
UPLINK_MBPS = (0.1, 10_000.0)       # slider range, Mbit/s (log scale)
RTT_MS = (0.0, 300.0)               # slider range, ms

class PartitionExplorer:
    """Sliders and drop-downs → the optimal edge–cloud split and its timeline, live (lab 06).

    Moving a control calls ``update``; so can you, without a browser. The link drop-down loads that
    link's uplink and RTT into the sliders; moving a slider makes a custom link (its downlink, radio energy
    per bit and price stay the link's: energy per bit really changes with the rate, which is not modelled).

    >>> import labkit as lk
    >>> p = lk.profile(lk.zoo.build("cnn"), lk.zoo.example("cnn"))
    >>> ex = lk.widgets.partition_explorer(p, edge="raspberry-pi-5", cloud="l4")
    >>> ex.update(link="3g").link
    '3g'
    >>> fast = ex.update(uplink_mbps=1000, rtt_ms=1)
    >>> fast.latency_s <= ex.update(link="3g").latency_s
    True
    """

    def __init__(self, profile, edge, cloud, link="lte", objective: str = "latency", dtype: str = "fp32",
                 batch: int | None = None, compress: str | None = None):
        from labkit.targets import device as lookup
        from labkit.targets import devices, links

        self.profile, self.dtype, self.batch = profile, dtype, batch
        edge, cloud = lookup(edge), lookup(cloud)
        table = devices()
        self.edge_names = sorted({*table.index[table["kind"].isin(kinds_on("edge"))], edge.name})
        self.cloud_names = sorted({*table.index[table["kind"].isin(kinds_on("cloud"))], cloud.name})
        self._devices = {edge.name: edge, cloud.name: cloud}   # custom Devices keep working
        self.link_names = list(links().index)
        base, _ = check_options(link, objective, None, dtype, "auto")
        if base.name not in self.link_names:
            self.link_names.append(base.name)
        self._links = {base.name: base}
        compress = "none" if compress is None else normalize_dtype(compress)
        if compress not in COMPRESS:
            raise unknown_name("compress", compress, COMPRESS)
        self._problems: dict[tuple[str, str], Problem] = {}
        self.values = {"edge": edge.name, "cloud": cloud.name, "link": base.name, "objective": objective,
                       "compress": compress,
                       "uplink_mbps": base.uplink_bps / 1e6, "rtt_ms": base.rtt_s * 1e3}
        self.plan: Plan = self._solve(self.values)
        self.error: str | None = None
        self._controls = None

    # ------------------------------------------------------------------------------------------ logic
    def link(self):
        """The Link the current values describe (the chosen link, with the sliders' uplink and RTT)."""
        return self._make_link(self.values)

    def _make_link(self, values):
        from labkit.targets import link as lookup

        base = self._links.get(values["link"]) or lookup(values["link"])
        up, rtt = values["uplink_mbps"] * 1e6, values["rtt_ms"] / 1e3
        if (up, rtt) == (base.uplink_bps, base.rtt_s):
            return base
        return dataclasses.replace(base, name=f"{base.name}*", uplink_bps=up, rtt_s=rtt)

    def _solve(self, values) -> Plan:
        key = (values["edge"], values["cloud"])
        if key not in self._problems:
            self._problems[key] = Problem(self.profile, self._devices.get(key[0], key[0]),
                                           self._devices.get(key[1], key[1]), self.dtype, self.batch)
        compress = None if values["compress"] == "none" else values["compress"]
        link, compress = check_options(self._make_link(values), values["objective"], compress, self.dtype, "auto")
        return self._problems[key].solve(link, values["objective"], compress)

    def update(self, **values) -> Plan:
        """Change any of edge, cloud, link, objective, compress, uplink_mbps, rtt_ms; re-solve; return the Plan.

        Choosing a link (without uplink_mbps / rtt_ms) loads its uplink and RTT. Bad values raise ValueError
        and leave the explorer as it was.
        """
        new = dict(self.values)
        for key, value in values.items():
            if key not in new:
                raise unknown_name("explorer control", key, new)
            new[key] = value
        if "link" in values:
            from labkit.targets import link as lookup

            base = lookup(values["link"])
            self._links.setdefault(base.name, base)
            new["link"] = base.name
            if "uplink_mbps" not in values:
                new["uplink_mbps"] = base.uplink_bps / 1e6
            if "rtt_ms" not in values:
                new["rtt_ms"] = base.rtt_s * 1e3
        for key, (lo, hi), unit in (("uplink_mbps", UPLINK_MBPS, "Mbit/s"), ("rtt_ms", RTT_MS, "ms")):
            new[key] = check(f"{key} ({unit})", new[key], Number(low=lo, high=hi))
        for key, allowed in (("edge", self.edge_names), ("cloud", self.cloud_names), ("objective", OBJECTIVES),
                             ("compress", COMPRESS)):
            if new[key] not in allowed:
                raise unknown_name(key, new[key], allowed)
        self.plan = self._solve(new)          # raises before anything changes
        self.values = new
        self._sync()
        return self.plan

    def figure(self):
        """The current plan's timeline with its baselines, as a matplotlib Figure."""
        from labkit.plot import timeline

        return timeline(self.plan, baselines=True).figure

    def summary(self) -> str:
        p = self.plan
        edge_best = p.all_edge.latency_s / p.latency_s if p.latency_s else float("nan")
        cloud_best = p.all_cloud.latency_s / p.latency_s if p.latency_s else float("nan")
        split = p.split_after if p.split_after is not None else "a DAG cut"
        return (f"<b>{p.objective}-optimal:</b> split after <code>{split}</code> — {len(p.edge_layers)} edge / "
                f"{len(p.cloud_layers)} cloud layers; latency {p.latency_s * 1e3:.3g} ms "
                f"({edge_best:.2f}× faster than all-edge, {cloud_best:.2f}× than all-cloud); edge energy "
                f"{p.edge_energy_j * 1e3:.3g} mJ; upload {p.upload_bytes:,} B; cost ${p.cost_usd:.3g}")

    # ---------------------------------------------------------------------------------------- widgets
    @property
    def widget(self):
        """The ipywidgets box (built on first use)."""
        if self._controls is None:
            self._build()
        return self._box

    def _build(self):
        import ipywidgets as w

        v = self.values
        c = {
            "edge": w.Dropdown(options=self.edge_names, value=v["edge"], description="edge"),
            "cloud": w.Dropdown(options=self.cloud_names, value=v["cloud"], description="cloud"),
            "link": w.Dropdown(options=self.link_names, value=v["link"], description="link"),
            "objective": w.Dropdown(options=list(OBJECTIVES), value=v["objective"], description="objective"),
            "compress": w.Dropdown(options=list(COMPRESS), value=v["compress"], description="compress"),
            "uplink_mbps": w.FloatLogSlider(value=v["uplink_mbps"], base=10, min=-1, max=4, step=0.05,
                                            description="uplink Mbit/s", readout_format=".3g"),
            "rtt_ms": w.FloatSlider(value=v["rtt_ms"], min=RTT_MS[0], max=RTT_MS[1], step=1,
                                    description="RTT ms"),
        }
        self._controls, self._quiet = c, False
        self._html, self._out = w.HTML(), w.Output()
        for key, control in c.items():
            control.observe(lambda change, key=key: self._on_change(key, change["new"]), names="value")
        self._box = w.VBox([w.HBox([c["edge"], c["cloud"], c["link"]]),
                            w.HBox([c["objective"], c["compress"]]),
                            w.HBox([c["uplink_mbps"], c["rtt_ms"]]), self._html, self._out])
        self._sync()

    def _on_change(self, key, value):
        if self._quiet:
            return
        try:
            self.update(**{key: value})
            self.error = None
        except ValueError as err:        # shown in the notebook, never a traceback from a slider
            self.error = str(err)
            self._html.value = f"<span style='color:#b00'>✘ {self.error}</span>"

    def _sync(self):
        """Put the values into the controls (without re-solving) and redraw."""
        if self._controls is None:
            return
        self._quiet = True
        try:
            for key, control in self._controls.items():
                control.value = self.values[key]
        finally:
            self._quiet = False
        self._html.value = self.summary()
        import matplotlib.pyplot as plt

        if not _in_kernel():             # no notebook to draw in (tests, scripts): the logic is done
            return
        from IPython.display import display

        self._out.clear_output(wait=True)
        fig = self.figure()
        with self._out:
            display(fig)
        plt.close(fig)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def partition_explorer(profile, edge, cloud, link="lte", objective: str = "latency", dtype: str = "fp32",
                       batch: int | None = None, compress: str | None = None) -> PartitionExplorer:
    """An interactive explorer of ``lk.partition`` (lab 06): device, link, uplink, RTT, objective, compression.

    Display it in a notebook cell; drive it from code with ``.update(uplink_mbps=..., rtt_ms=...)``;
    ``.plan`` is the current Plan. See PartitionExplorer.

    >>> import labkit as lk
    >>> p = lk.profile(lk.zoo.build("mlp"), lk.zoo.example("mlp"))
    >>> ex = lk.widgets.partition_explorer(p, edge="raspberry-pi-5", cloud="l4", link="wifi")
    >>> plan = ex.update(uplink_mbps=1.0)   # a slow uplink keeps more of the model on the edge
    >>> plan.latency_s > 0
    True
    """
    return PartitionExplorer(profile, edge, cloud, link=link, objective=objective, dtype=dtype, batch=batch,
                             compress=compress)


__all__ = ["PartitionExplorer", "partition_explorer"]

__getattr__, __dir__ = namespace("lk.widgets", __all__)
