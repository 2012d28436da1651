"""Data drift (lab 11): has the input distribution moved away from the reference the model was trained on?

``lk.ops.drift(reference, current, method=)`` compares each feature (column) of `current` with the same
feature of `reference` and flags it, then calls the whole dataset drifted when the share of drifted features
reaches `drift_share` (Evidently's dataset rule, ``share_drifted >= 0.5``). Methods, all from scipy:

============  ===================================================  =========  ===============================
method        statistic                                            threshold  drifted when
============  ===================================================  =========  ===============================
ks            two-sample Kolmogorov-Smirnov p-value (numerical)    0.05       p < threshold
chisquare     chi-square test of homogeneity p-value (categories)  0.05       p < threshold
z             two-proportion z-test p-value (two categories)       0.05       p < threshold
wasserstein   Wasserstein-1 distance / std of the reference        0.1        distance >= threshold
jensenshannon Jensen-Shannon distance of the binned shares (ln)    0.1        distance >= threshold
psi           population stability index of the binned shares     0.1        psi >= threshold
============  ===================================================  =========  ===============================

``method="auto"`` mirrors Evidently's default selection (``_get_default_stattest`` in
``evidently/legacy/calculations/stattests/registry.py``, Evidently 0.7; the rule dates from its 0.1.50 release
notes, "Automatic Stattest Selection"), with u = unique values of reference and current together:

- reference <= 1000 rows: numerical with u > 5 -> ``ks``; u in 3..5 or categorical -> ``chisquare``; u <= 2 -> ``z``.
- reference > 1000 rows: numerical with u > 5 -> ``wasserstein``; otherwise ``jensenshannon``.

The thresholds are Evidently's defaults too. Binning for ``jensenshannon`` and ``psi`` follows Evidently's
``get_binned_data``: a numerical feature with more than 20 unique reference values gets Sturges' bins over
reference and current together, otherwise one bin per value; PSI replaces empty bins by 0.0001 (or, when a
share is that small already, the smallest share / 10^6). PSI's conventional reading (credit scoring; N. Siddiqi,
*Credit Risk Scorecards*, Wiley 2006; B. Yurdakul & J. Naranjo, *J. Risk Model Validation* 2019, who show
its null distribution depends on the sample sizes and bins) is < 0.1 no significant shift, 0.1-0.2 (0.25 in
some sources) a moderate one, above that a major one; labkit flags at 0.1, as Evidently does.

One deliberate difference: Evidently's ``chisquare`` is a goodness-of-fit test of the current counts against
the reference shares taken as exact; it ignores the reference's own sampling noise, so with equal sample sizes
it alarms far above 5% under no drift (Evidently 0.7.23, 6 equally likely values, 100 or 1,000 rows each:
342 to 376 alarms in 1,000 repeats). labkit's is the two-sample test of homogeneity
(``scipy.stats.chi2_contingency``), whose false-alarm rate is the threshold. Checked against Evidently 0.7.23
in a throw-away environment (15 datasets: the shifted digits, normal and few-valued columns, 676 features):
the same test chosen for every feature, statistics within 1e-7, and 2,023 of 2,028 decisions the same; the
5 others are chi-square features (Evidently's goodness-of-fit flags them; two have a value absent from the
reference, which gives it an infinite statistic).

>>> import numpy as np, labkit as lk
>>> rng = np.random.default_rng(0)
>>> ref, cur = rng.normal(size=(500, 3)), rng.normal(size=(500, 3)) + [0, 0, 1.0]   # feature 2 shifted
>>> r = lk.ops.drift(ref, cur)                  # 500 reference rows, numerical: auto picks KS
>>> [(f.feature, f.method, f.drifted) for f in r.features]
[('x0', 'ks', False), ('x1', 'ks', False), ('x2', 'ks', True)]
>>> r.share, r.drifted                          # 1 of 3 < 0.5: the dataset is not drifted
(0.3333333333333333, False)
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
P_VALUE = frozenset({"ks", "chisquare", "z"})
THRESHOLD = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}
NUMERICAL_ONLY = frozenset({"ks", "wasserstein"})
SMALL_N = 1000          # Evidently: <= 1000 reference rows -> p-value tests, more -> distances
FEW_VALUES = 5          # Evidently: a numerical feature with <= 5 unique values is treated as categorical
STURGES_ABOVE = 20      # Evidently's binning: > 20 unique reference values -> Sturges' bins


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: `statistic` (a p-value or a distance, by `method`) against `threshold`."""

    feature: str
    method: str
    statistic: float
    threshold: float
    drifted: bool

    @property
    def is_p_value(self) -> bool:
        """True when `statistic` is a p-value (drifted below the threshold), False for a distance (at or above)."""
        return self.method in P_VALUE


@dataclass(frozen=True)
class DriftReport:
    """Per-feature results and the dataset verdict: drifted when `share` of drifted features >= `drift_share`."""

    features: tuple[FeatureDrift, ...]
    drift_share: float

    @property
    def n_drifted(self) -> int:
        return sum(f.drifted for f in self.features)

    @property
    def share(self) -> float:
        """Share of features that drifted."""
        return self.n_drifted / len(self.features)

    @property
    def drifted(self) -> bool:
        return self.share >= self.drift_share

    def __getitem__(self, feature) -> FeatureDrift:
        for f in self.features:
            if f.feature == str(feature):
                return f
        from labkit.args import unknown_name

        raise unknown_name("feature", feature, [f.feature for f in self.features])

    def frame(self):
        """The per-feature results as a pandas DataFrame indexed by feature."""
        import pandas as pd

        return pd.DataFrame([vars(f) for f in self.features]).set_index("feature")

    def __repr__(self) -> str:
        methods = sorted({f.method for f in self.features})
        return (f"DriftReport({self.n_drifted} of {len(self.features)} features drifted ({self.share:.0%}; "
                f"dataset drifted at >= {self.drift_share:.0%}: {self.drifted}); method {', '.join(methods)})")


# ----------------------------------------------------------------------------------------- statistics
def _is_numerical(x) -> bool:
    import numpy as np

    return np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.bool_)


def auto_method(reference, current, categorical: bool = False) -> str:
    """Evidently's default test for one feature (see the module docstring): by reference size and unique values."""
    import numpy as np

    u = len(np.unique(np.concatenate([reference, current])))
    if len(reference) <= SMALL_N:
        if not categorical and u > FEW_VALUES:
            return "ks"
        return "chisquare" if u > 2 else "z"
    return "wasserstein" if not categorical and u > FEW_VALUES else "jensenshannon"


def shares(reference, current, categorical: bool = False):
    """The binned shares (reference, current) that ``jensenshannon`` and ``psi`` compare (Evidently's binning)."""
    import numpy as np

    if not categorical and _is_numerical(reference) and len(np.unique(reference)) > STURGES_ABOVE:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return (np.histogram(reference, edges)[0] / len(reference),
                np.histogram(current, edges)[0] / len(current))
    keys, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    counts_ref = np.bincount(inverse[:len(reference)], minlength=len(keys))
    counts_cur = np.bincount(inverse[len(reference):], minlength=len(keys))
    return counts_ref / len(reference), counts_cur / len(current)


def _fill_zeros(p):

    p = p.astype(float).copy()
    smallest = p[p > 0].min()
    p[p == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return p


def psi(reference_shares, current_shares) -> float:
    """Population stability index: sum over bins of (r - c) x ln(r / c), empty bins filled as Evidently does."""
    import numpy as np

    r, c = _fill_zeros(np.asarray(reference_shares)), _fill_zeros(np.asarray(current_shares))
    return float(np.sum((r - c) * np.log(r / c)))


def statistic(reference, current, method: str, categorical: bool = False) -> float:
    """One feature's drift statistic by `method` (a p-value for ks/chisquare/z, else a distance)."""
    import numpy as np
    from scipy import stats

    if method == "ks":
        return float(stats.ks_2samp(reference, current).pvalue)
    if method == "wasserstein":
        return float(stats.wasserstein_distance(reference, current) / max(np.std(reference), 1e-3))
    if method in ("jensenshannon", "psi"):
        r, c = shares(reference, current, categorical)
        if method == "psi":
            return psi(r, c)
        from scipy.spatial.distance import jensenshannon

        return float(jensenshannon(r, c))
    keys, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    table = np.stack([np.bincount(inverse[:len(reference)], minlength=len(keys)),
                      np.bincount(inverse[len(reference):], minlength=len(keys))])
    if len(keys) < 2:
        return 1.0                                   # one value in both samples: nothing can differ
    if method == "chisquare":
        return float(stats.chi2_contingency(table, correction=False).pvalue)
    if len(keys) > 2:
        raise ValueError(f"method 'z' compares two categories; this feature has {len(keys)}: use 'chisquare'.")
    n1, n2 = len(reference), len(current)                                 # two-proportion z-test, pooled
    p1, p2, pooled = table[0, 1] / n1, table[1, 1] / n2, table[:, 1].sum() / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(p1 - p2) / se))


# ------------------------------------------------------------------------------------------------ drift
def _columns(data, what: str):
    """(names, list of 1-D arrays) from a 1-D/2-D array, a pandas Series or DataFrame."""
    import numpy as np

    if hasattr(data, "columns"):                                           # DataFrame
        return [str(c) for c in data.columns], [data[c].to_numpy() for c in data.columns]
    if hasattr(data, "to_numpy"):                                          # Series
        return [str(data.name if data.name is not None else "x")], [data.to_numpy()]
    a = np.asarray(data)
    if a.ndim == 1:
        return ["x"], [a]
    if a.ndim != 2:
        raise ValueError(f"{what} must be 1-D (one feature) or 2-D (rows x features); got shape {a.shape}.")
    return [f"x{i}" for i in range(a.shape[1])], list(a.T)


def _clean(x, what: str):
    import numpy as np
    import pandas as pd

    x = np.asarray(x)
    keep = ~pd.isna(x)
    x = x[keep]
    if len(x) == 0:
        raise ValueError(f"{what} has no values (empty, or all missing).")
    return x.astype(float) if _is_numerical(x) else x.astype(str)


def drift(reference, current, method: str = "auto", threshold: float | None = None, drift_share: float = 0.5,
          categorical=()) -> DriftReport:
    """Compare `current` with `reference` feature by feature, and the dataset as a whole (lab 11).

    `reference`, `current`: 1-D (one feature) or 2-D (rows x features) arrays, or pandas objects (their column
    names are kept); missing values are dropped. `method`: one of ``METHODS`` or ``"auto"`` (Evidently's default
    per feature: see the module docstring). `threshold`: overrides the method's default (0.05 for p-values, 0.1
    for distances). `categorical`: names (or indices) of the features to treat as categories.

    >>> import numpy as np, labkit as lk
    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.normal(size=100_000), rng.normal(0.02, 1, size=100_000)   # a shift of 2% of a std
    >>> lk.ops.drift(a, b, method="ks").features[0].drifted                # KS at large n: "drifted"
    True
    >>> lk.ops.drift(a, b, method="wasserstein").features[0].drifted       # 0.02 < 0.1: not drifted
    False
    """
    import numpy as np

    if method != "auto" and method not in METHODS:
        from labkit.args import unknown_name

        raise unknown_name("drift method", method, (*METHODS, "auto"))
    if not 0 < drift_share <= 1:
        raise ValueError(f"drift_share must be in (0, 1]; got {drift_share!r}.")
    if threshold is not None and not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number; got {threshold!r}.")
    names_r, cols_r = _columns(reference, "reference")
    names_c, cols_c = _columns(current, "current")
    if len(cols_r) != len(cols_c):
        raise ValueError(f"reference has {len(cols_r)} features but current has {len(cols_c)}.")
    if hasattr(reference, "columns") and hasattr(current, "columns") and names_r != names_c:
        raise ValueError(f"reference and current have different columns: {names_r} vs {names_c}.")
    cat = {str(c) for c in categorical} | {names_r[c] for c in categorical if isinstance(c, (int, np.integer))}
    out = []
    for name, r, c in zip(names_r, cols_r, cols_c):
        r, c = _clean(r, f"reference feature {name!r}"), _clean(c, f"current feature {name!r}")
        if _is_numerical(r) != _is_numerical(c):
            raise ValueError(f"feature {name!r} is numerical in one sample and not in the other.")
        is_cat = name in cat or not _is_numerical(r)
        m = auto_method(r, c, is_cat) if method == "auto" else method
        if is_cat and m in NUMERICAL_ONLY:
            raise ValueError(f"method {m!r} needs a numerical feature; {name!r} is categorical: use 'chisquare', "
                             "'jensenshannon' or 'psi'.")
        t = THRESHOLD[m] if threshold is None else float(threshold)
        s = statistic(r, c, m, is_cat)
        out.append(FeatureDrift(name, m, s, t, bool(s < t) if m in P_VALUE else bool(s >= t)))
    return DriftReport(tuple(out), drift_share)
