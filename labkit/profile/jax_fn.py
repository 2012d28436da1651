"""The JAX front end of ``lk.profile``: the function's jaxpr -> a Profile DAG; XLA's own cost analysis.

``lk.profile(fn, (params, x))``: the jaxpr from ``jax.make_jaxpr`` gives one layer per equation
(dot_general and conv_general_dilated carry the MACs; sub-jaxprs of jit / custom_jvp / closed_call are
walked into; a jitted activation such as jax.nn.relu stays one layer named after it).
- params = elements of the array leaves of the *first* argument when there are two or more arguments
  (the usual ``fn(params, x)``); a one-argument function has no params. Values computed only from
  params (a transposed weight) are weight preprocessing, not layers.
- batch = leading dimension of the first array of the data arguments (all arguments after the first).
- FLOPs per layer follow labkit's table (opcount.py), the same rules as the torch and ONNX front ends,
  so the three agree, and Profile.flops is their sum. XLA's own total is ``xla_cost(fn, args)["flops"]``;
  it is not copied into the Profile because it counts differently and no per-layer split of it stays
  consistent: XLA skips a convolution's padded taps (so it can fall below 2 x MACs), counts
  transcendental functions (exp, tanh) apart under 'transcendentals', and counts what survives its
  algebraic simplification. Lab 04 compares the two.
"""

from __future__ import annotations

import math
import warnings

import jax
from jax.extend import core as jcore

from labkit.profile import opcount
from labkit.profile.core import Profile

# jaxpr primitive -> canonical op name of opcount's table
_PRIMS = {
    "add": "add", "add_any": "add", "sub": "sub", "mul": "mul", "div": "div", "max": "max", "min": "min",
    "neg": "neg", "abs": "abs", "exp": "exp", "exp2": "exp", "log": "log", "log1p": "log", "tanh": "tanh",
    "logistic": "sigmoid", "erf": "erf", "sqrt": "sqrt", "rsqrt": "rsqrt", "integer_pow": "pow", "pow": "pow",
    "square": "square", "select_n": "where", "clamp": "clamp",
    "reduce_sum": "sum", "reduce_max": "reduce_max", "reduce_min": "reduce_min",
    "reduce_window_max": "maxpool", "reduce_window_sum": "avgpool",
    "broadcast_in_dim": "broadcast", "reshape": "reshape", "transpose": "transpose", "squeeze": "squeeze",
    "expand_dims": "unsqueeze", "convert_element_type": "cast", "concatenate": "cat", "slice": "slice",
    "dynamic_slice": "slice", "gather": "gather", "pad": "pad", "copy": "copy", "copy_p": "copy",
    "stop_gradient": "identity", "dot_general": "matmul",
}
_CALLS = ("jaxpr", "call_jaxpr", "fun_jaxpr")       # params holding the body of jit / custom_jvp / closed_call


def normalize_cost(cost) -> dict:
    """XLA's cost analysis as one dict: newer jax returns a dict, older a list with one dict per module.

    >>> normalize_cost([{"flops": 10.0}])["flops"]
    10.0
    """
    if cost is None:
        return {}
    if isinstance(cost, (list, tuple)):
        merged: dict = {}
        for part in cost:
            for k, v in (part or {}).items():
                merged[k] = merged.get(k, 0.0) + v if isinstance(v, (int, float)) else v
        return merged
    return dict(cost)


def xla_cost(fn, args) -> dict:
    """XLA's cost analysis of ``jax.jit(fn)`` on `args` (keys 'flops', 'transcendentals', 'bytes accessed', …).

    >>> import jax.numpy as jnp
    >>> xla_cost(lambda a, b: a @ b, (jnp.ones((4, 8)), jnp.ones((8, 2))))["flops"]
    128.0
    """
    return normalize_cost(jax.jit(fn).lower(*args).compile().cost_analysis())


def _shape(v) -> tuple[int, ...]:
    return tuple(int(d) for d in getattr(v.aval, "shape", ()))


def _size(v) -> int:
    return math.prod(_shape(v))


def _sub_jaxpr(eqn):
    for key in _CALLS:
        sub = eqn.params.get(key)
        if isinstance(sub, jcore.ClosedJaxpr):
            return sub.jaxpr
        if isinstance(sub, jcore.Jaxpr):
            return sub
    return None


def _work(prim: str, eqn):
    """(op, macs, gemm, depthwise, kernel_elems) of one equation."""
    ins, out = eqn.invars, eqn.outvars[0]
    if prim == "dot_general":
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        a, b = _shape(ins[0]), _shape(ins[1])
        k = math.prod(a[i] for i in lc)
        groups = math.prod(a[i] for i in lb)
        m = math.prod(d for i, d in enumerate(a) if i not in lc and i not in lb)
        n = math.prod(d for i, d in enumerate(b) if i not in rc and i not in rb)
        return "matmul", _size(out) * k, (groups, m, k, n), False, 1
    if prim == "conv_general_dilated":
        dn = eqn.params["dimension_numbers"]
        lhs, rhs, o = _shape(ins[0]), _shape(ins[1]), _shape(out)
        groups = int(eqn.params["feature_group_count"])
        c_out = rhs[dn.rhs_spec[0]]
        k = math.prod(rhs) // c_out                       # C_in/groups * prod(kernel)
        m = math.prod(o) // c_out                          # N * prod(spatial out)
        dw = groups == lhs[dn.lhs_spec[1]] > 1
        return f"conv{len(rhs) - 2}d", m * k * c_out, (groups, m, k, c_out // groups), dw, 1
    op = _PRIMS.get(prim, prim)
    kern = math.prod(eqn.params.get("window_dimensions", (1,))) if op in ("maxpool", "avgpool") else 1
    return op, 0, None, False, kern


class _Walker:
    """Walks a jaxpr (and the sub-jaxprs of calls), turning equations into layers."""

    def __init__(self, dtype: str):
        self.dtype, self.layers, self.unknown, self.calls = dtype, [], [], {}
        self.counted: set = set()

    def name(self, base: str) -> str:
        k = self.calls[base] = self.calls.get(base, -1) + 1
        return base if k == 0 else f"{base}_{k}"

    def walk(self, jaxpr, env: dict) -> list:
        """env: Var -> ('layer', …) producers for data, or None for weights/constants. Returns outvar states."""
        def state(v):
            return None if isinstance(v, jcore.Literal) else env.get(v)

        for eqn in jaxpr.eqns:
            prim = eqn.primitive.name
            dyn = [v for v in eqn.invars if state(v) is not None]
            if not dyn:                                    # weights / constants only: preprocessing
                for v in eqn.outvars:
                    env[v] = None
                continue
            sub = _sub_jaxpr(eqn)
            act = eqn.params.get("name")
            if sub is not None and not (act in opcount.FLOPS_PER_ELEMENT and len(eqn.outvars) == 1):
                inner = dict(zip(sub.invars, [state(v) for v in eqn.invars]))
                for v, st in zip(eqn.outvars, self.walk(sub, inner)):
                    env[v] = st
                continue
            if sub is not None:                            # a named activation (relu, gelu, softmax…): one layer
                op, macs, gemm, dw, kern = act, 0, None, False, 1
            else:
                op, macs, gemm, dw, kern = _work(prim, eqn)
                if not opcount.is_known(op):
                    self.unknown.append(op)
            name = self.name(op if sub is not None else prim)
            weights = [v for v in eqn.invars if not isinstance(v, jcore.Literal) and state(v) is None]
            params = sum(_size(v) for v in weights if v not in self.counted)
            self.counted.update(weights)
            inputs = dict.fromkeys(p for v in dyn for p in env[v])
            o_elems = sum(_size(v) for v in eqn.outvars)
            self.layers.append(opcount.make_layer(
                name, op, inputs, macs=macs, params=params, weight_elems=sum(_size(v) for v in weights),
                input_elems=sum(_size(v) for v in dyn), output_elems=o_elems, output_shape=_shape(eqn.outvars[0]),
                gemm=gemm, depthwise=dw, kernel_elems=kern, dtype=self.dtype))
            for v in eqn.outvars:
                env[v] = (name,)
        return [state(v) if not isinstance(v, jcore.Literal) else None for v in jaxpr.outvars]


def profile_jax(fn, example, *, dtype: str = "fp32", name: str | None = None) -> Profile:
    """Profile a JAX function on example arguments, e.g. ``profile_jax(fn, (params, x))``. See lk.profile."""
    if example is None:
        raise ValueError("a JAX function needs its example arguments, e.g. lk.profile(fn, (params, x)).")
    args = tuple(example) if isinstance(example, tuple) else (example,)
    try:
        closed = jax.make_jaxpr(fn)(*args)
    except Exception as err:
        raise ValueError(f"could not trace {getattr(fn, '__name__', fn)!r} with jax.make_jaxpr "
                         f"({type(err).__name__}: {err}); lk.profile accepts a torch.nn.Module, an ONNX model "
                         "or a JAX-traceable function with a tuple of example arguments.") from err
    n_params = len(jax.tree_util.tree_leaves(args[0])) if len(args) >= 2 else 0
    data = jax.tree_util.tree_leaves(args[1:] if len(args) >= 2 else args)
    jaxpr = closed.jaxpr
    env = {v: None for v in jaxpr.constvars}
    env.update({v: (None if i < n_params else ("input",)) for i, v in enumerate(jaxpr.invars)})
    walker = _Walker(dtype)
    walker.walk(jaxpr, env)
    layers = walker.layers
    if walker.unknown:
        warnings.warn(f"labkit has no rule for JAX primitive(s) {sorted(set(walker.unknown))}; counted 1 FLOP "
                      "per output element.", stacklevel=3)
    shape0 = tuple(getattr(data[0], "shape", ())) if data else ()
    return Profile(
        name=name or getattr(fn, "__name__", "jax-function"), source="jax",
        batch=int(shape0[0]) if shape0 else 1, dtype=dtype, layers=tuple(layers),
        params=sum(int(getattr(leaf, "size", 1)) for leaf in jax.tree_util.tree_leaves(args[0])) if n_params else 0,
        input_elems=sum(int(getattr(leaf, "size", 1)) for leaf in data),
        output_elems=sum(_size(v) for v in jaxpr.outvars),
    )
