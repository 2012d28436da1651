"""Prefill/decode disaggregation (Splitwise, Patel et al., ISCA 2024 — the paper of the Azure trace), simulated
(lab 09): a prefill pool runs prompts and emits each request's first token; the KV cache then moves over a link
to a decode pool that generates the rest, so long prompts no longer stall other requests' decode steps.

Both pools are continuous-batching engines of labkit.deploy.llm_engine on the same device type. The KV transfer
of a request takes ``rtt / 2 + link.upload_s(lk.llm.kv_bytes(model, prompt))`` (``"datacenter"``: 100 Gb/s,
0.1 ms RTT); the decode pool admits it when it arrives, as a sequence already cached.
"""

from __future__ import annotations

import numpy as np


def serve_llm_disagg(workload, model: str, device: str, *, prefill_replicas: int = 1, decode_replicas: int = 1,
                     link: str = "datacenter", chunk_tokens: int | None = None, max_batch: int = 256,
                     kv_tokens: int | None = None, block_tokens: int = 16, dtype: str = "fp16",
                     weight_bits: float | None = None, region: str | None = None, cost=None):
    """Serve `workload` on separate prefill and decode pools joined by `link` (lab 09) -> an ``LLMResult``
    covering both pools (replicas = prefill + decode; cost, energy and carbon of both).

    >>> import labkit as lk
    >>> w = lk.deploy.Workload([0.0, 0.01], {"prompt_tokens": [900, 50], "output_tokens": [4, 6]})
    >>> r = lk.deploy.serve_llm_disagg(w, "llama-3.1-8b", "h100-sxm")
    >>> r.replicas, r.tokens_emitted, r.scheduler
    (2, 10, 'disaggregated 1 prefill + 1 decode over datacenter')
    """
    from dataclasses import replace

    from labkit.args import check_int
    from labkit.deploy.llm_engine import serve_llm_sim
    from labkit.deploy.workload import Workload
    from labkit.llm.kv import kv_bytes
    from labkit.targets import link as find_link

    check_int("prefill_replicas", prefill_replicas, 1)
    check_int("decode_replicas", decode_replicas, 1)
    net = find_link(link)
    common = dict(max_batch=max_batch, kv_tokens=kv_tokens, block_tokens=block_tokens, dtype=dtype,
                  weight_bits=weight_bits, region=region)
    if cost is None:
        from labkit.deploy.llm_cost import StepCost

        cost = StepCost(model, device, dtype, weight_bits)
    prompt = np.asarray(workload.column("prompt_tokens", 0), dtype=np.int64)
    out = np.asarray(workload.column("output_tokens", 0), dtype=np.int64)
    if (out < 1).any() or "prompt_tokens" not in workload.columns:
        serve_llm_sim(workload, model, device, cost=cost, **common)      # raises the explanation
    # the prefill pool: every request stops after its first token
    first_only = workload.with_column("output_tokens", np.ones_like(out))
    pre = serve_llm_sim(first_only, model, device, "continuous", replicas=prefill_replicas,
                        chunk_tokens=chunk_tokens, cost=cost, **common)
    per_token = kv_bytes(model, 1, dtype)                 # the KV cache is linear in tokens
    ready = pre.first_token_s + net.rtt_s / 2 + np.array([net.upload_s(per_token * int(p)) for p in prompt])
    rest = out > 1
    order = np.argsort(ready[rest], kind="stable")
    idx = np.flatnonzero(rest)[order]
    finish = pre.first_token_s.copy()
    dec = None
    if idx.size:
        handed = Workload(ready[idx], {"prompt_tokens": prompt[idx], "output_tokens": out[idx]},
                          name=workload.name, duration_s=max(workload.duration_s, float(ready[idx].max())))
        dec = serve_llm_sim(handed, model, device, "continuous", replicas=decode_replicas, cost=cost,
                            _handed=True, **common)
        finish[idx] = dec.finish_s
    steps = pre.steps + (dec.steps if dec else 0)
    duration = float(max(workload.duration_s, np.nanmax(finish) if finish.size else 0.0))
    kv = pre.kv_timeline if dec is None else np.vstack(
        [pre.kv_timeline, dec.kv_timeline + np.array([0.0, prefill_replicas, 0.0])])
    return replace(
        pre, first_token_s=pre.first_token_s, finish_s=finish, output_tokens=out,
        preempted=pre.preempted + (np.bincount(idx, weights=dec.preempted, minlength=len(out)).astype(np.int64)
                                   if dec else 0),
        replica=pre.replica, kv_timeline=kv[np.argsort(kv[:, 0], kind="stable")],
        scheduler=f"disaggregated {prefill_replicas} prefill + {decode_replicas} decode over {net.name}",
        replicas=prefill_replicas + decode_replicas, busy_s=pre.busy_s + (dec.busy_s if dec else 0.0),
        step_energy_j=pre.step_energy_j + (dec.step_energy_j if dec else 0.0), steps=steps,
        tokens_processed=pre.tokens_processed + (dec.tokens_processed if dec else 0),
        tokens_emitted=pre.tokens_emitted + (dec.tokens_emitted if dec else 0), duration_s=duration)
