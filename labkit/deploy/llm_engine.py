"""Token-level LLM serving, simulated step by step: static and continuous batching, chunked prefill, a KV-cache
budget with preemption by recompute (lab 09).

A replica is an engine loop. Each iteration picks the sequences that run, costs the step (labkit.deploy.llm_cost,
fitted once per pool from ``lk.estimate`` of ``lk.llm.step`` profiles), advances the clock by it, and hands out
tokens: a sequence whose prompt completes this step emits its first token; every decoding sequence emits one.
Runs of pure-decode steps in which nothing arrives, completes or overflows are costed at once, vectorised
(``FAST_FORWARD``; the same steps one by one give the same times, a test checks it).

Schedulers:

* ``"static"`` (request-level, HF ``generate`` style): an idle replica takes up to `max_batch` waiting requests
  whose whole prompt + output fits the KV cache, prefills them in one step, then decodes until the longest is
  done. Finished sequences keep their slot as padding (still computed), no request joins a running batch.
* ``"continuous"`` (iteration-level, Orca / vLLM style): before each step, waiting requests are admitted in
  arrival order while there are free KV blocks for their prompt (and a slot under `max_batch`); a decoding
  sequence that needs a new block when none is free preempts the most recently admitted sequence, whose blocks
  are freed and which later re-prefills its prompt and the tokens it already emitted (recompute).
* ``chunk_tokens`` (continuous only; Sarathi / vLLM chunked prefill): each step processes at most
  `chunk_tokens` tokens; decodes go first and prompt chunks fill the rest of the budget.

The KV budget: ``(device memory x (1 - reserve) - weights) / KV bytes per token`` (``lk.llm.max_sequences``),
in blocks of `block_tokens` (vLLM's 16), or ``kv_tokens`` given. Requests go to replicas round-robin, so the
replicas run independently.
"""

from __future__ import annotations

from collections import deque

import numpy as np

SCHEDULERS = ("static", "continuous")
FAST_FORWARD = True       # vectorise runs of pure-decode steps (same result; tests compare both ways)


def _blocks(tokens: int, block: int) -> int:
    return -(-tokens // block)


class _Seq:
    __slots__ = ("i", "prompt", "out", "done", "emitted", "target", "cached", "blocks")

    def __init__(self, i, prompt, out):
        self.i, self.prompt, self.out = i, prompt, out
        self.emitted = 0          # output tokens handed to the user
        self.target = prompt      # tokens to prefill before the next token comes out (prompt, or more on recompute)
        self.cached = 0           # tokens in the KV cache
        self.blocks = 0


class _Replica:
    """One engine: runs its requests (indices into the workload arrays) and writes per-request times."""

    def __init__(self, cost, arrival, prompt, out, first, finish, preempt, kv_log, r, *, max_batch, kv_blocks,
                 block, chunk, scheduler, handed=False):
        self.handed = handed      # disaggregated decode pool: requests arrive prefilled, first token emitted
        self.cost, self.arrival, self.prompt, self.out = cost, arrival, prompt, out
        self.first, self.finish, self.preempt, self.kv_log, self.r = first, finish, preempt, kv_log, r
        self.max_batch, self.kv_blocks, self.block, self.chunk = max_batch, kv_blocks, block, chunk
        self.scheduler = scheduler
        self.busy_s = self.energy_j = 0.0
        self.steps = self.tokens_processed = self.tokens_emitted = 0

    def _emit(self, s: _Seq, t: float) -> bool:
        self.tokens_emitted += 1
        if s.emitted == 0:
            self.first[s.i] = t
        s.emitted += 1
        if s.emitted == s.out:
            self.finish[s.i] = t
            return True
        return False

    def _run_step(self, t: float, decode, chunks) -> float:
        dt, ej = self.cost.step([s.cached for s in decode], [(s.cached, n) for s, n in chunks])
        self.busy_s += dt
        self.energy_j += ej
        self.steps += 1
        self.tokens_processed += len(decode) + sum(n for _, n in chunks)
        return t + dt

    def _fast_forward(self, t, decode, h, free, next_arrival):
        """Run up to `h` pure-decode steps at once (vectorised costs): stop before the next arrival, before any
        completion, and within the free KV blocks. The same steps, one by one, give the same times."""
        block = self.block
        while h > 1 and sum(_blocks(s.cached + h, block) - s.blocks for s in decode) > free:
            h //= 2
        S = len(decode)
        dt, ej = self.cost.decode_run(S, sum(s.cached for s in decode) + S, h)
        starts = t + np.concatenate(([0.0], np.cumsum(dt[:-1])))
        h = max(1, int(np.searchsorted(starts, next_arrival, side="left")))
        self._ff_t = float(starts[h - 1] + dt[h - 1])
        self.busy_s += float(dt[:h].sum())
        self.energy_j += float(ej[:h].sum())
        self.steps += h
        self.tokens_processed += S * h
        self.tokens_emitted += S * h
        for s in decode:
            grown = _blocks(s.cached + h, block)
            free -= grown - s.blocks
            s.blocks = grown
            s.cached += h
            s.emitted += h
        return h, free

    def run(self, order: np.ndarray) -> None:
        if self.scheduler == "static":
            self._static(order)
        else:
            self._continuous(order)

    def _static(self, order):
        arrival, block = self.arrival, self.block
        k, t, n = 0, 0.0, len(order)
        waiting: deque = deque()
        while k < n or waiting:
            if not waiting:
                t = max(t, arrival[order[k]])
            while k < n and arrival[order[k]] <= t:
                i = int(order[k])
                waiting.append(_Seq(i, int(self.prompt[i]), int(self.out[i])))
                k += 1
            batch, used = [], 0
            while waiting and len(batch) < self.max_batch:
                s = waiting[0]
                need = _blocks(s.prompt + s.out, block)
                if used + need > self.kv_blocks:
                    break
                used += need
                batch.append(waiting.popleft())
            self.kv_log.append((t, self.r, used * block))
            t = self._run_step(t, [], [(s, s.prompt) for s in batch])
            live = []
            for s in batch:
                s.cached = s.prompt
                if not self._emit(s, t):
                    live.append(s)
            while live:
                h = min(s.out - s.emitted for s in live)       # steps until the next sequence completes
                if FAST_FORWARD and h >= 2 and self.cost.linear:
                    S = len(batch)                               # finished sequences still compute, as padding
                    dt, ej = self.cost.decode_run(S, sum(s.cached for s in batch) + S, h - 1)
                    t += float(dt.sum())
                    self.busy_s += float(dt.sum())
                    self.energy_j += float(ej.sum())
                    self.steps += h - 1
                    self.tokens_processed += S * (h - 1)
                    self.tokens_emitted += len(live) * (h - 1)
                    for s in batch:
                        s.cached += h - 1
                    for s in live:
                        s.emitted += h - 1
                t = self._run_step(t, batch, [])
                for s in batch:
                    s.cached += 1
                live = [s for s in live if not self._emit(s, t)]
            self.kv_log.append((t, self.r, 0))

    def _continuous(self, order):
        arrival, block, chunk = self.arrival, self.block, self.chunk
        k, t, n = 0, 0.0, len(order)
        waiting: deque = deque()
        running: list[_Seq] = []          # in admission order
        free = self.kv_blocks
        while k < n or waiting or running:
            if not waiting and not running:
                t = max(t, arrival[order[k]])
            while k < n and arrival[order[k]] <= t:
                i = int(order[k])
                s = _Seq(i, int(self.prompt[i]), int(self.out[i]))
                if self.handed:
                    s.cached, s.emitted = s.prompt, 1
                waiting.append(s)
                k += 1
            # decoding sequences each need room for one more token; preempt the newest while they do not fit
            decode = [s for s in running if s.cached >= s.target]
            need = sum(_blocks(s.cached + 1, block) - s.blocks for s in decode)
            while need > free:
                victim = running.pop()
                free += victim.blocks
                if victim.cached >= victim.target:
                    need -= _blocks(victim.cached + 1, block) - victim.blocks
                    decode.remove(victim)
                victim.blocks = victim.cached = 0
                victim.target = victim.prompt + victim.emitted
                self.preempt[victim.i] += 1
                waiting.appendleft(victim)
            for s in decode:
                grown = _blocks(s.cached + 1, block)
                free -= grown - s.blocks
                s.blocks = grown
            budget = chunk - len(decode) if chunk else None
            chunks = []
            for s in running:                               # prompts already admitted, not yet prefilled
                if s.cached < s.target and (budget is None or budget > 0):
                    take = s.target - s.cached if budget is None else min(budget, s.target - s.cached)
                    chunks.append((s, take))
                    if budget is not None:
                        budget -= take
            while waiting and len(running) < self.max_batch and (budget is None or budget > 0):
                s = waiting[0]
                need_b = _blocks(s.target + 1, block)
                if need_b > free:
                    break
                waiting.popleft()
                s.blocks, free = need_b, free - need_b
                running.append(s)
                if s.cached >= s.target:                    # arrived with its KV cache: decodes next step
                    continue
                take = s.target if budget is None else min(budget, s.target)
                chunks.append((s, take))
                if budget is not None:
                    budget -= take
            if not decode and not chunks:
                if not any(s.cached >= s.target for s in running):
                    # nothing fits: wait for the next arrival (not reached when each request fits the budget)
                    t = max(t, arrival[order[k]]) if k < n else t
                continue
            self.kv_log.append((t, self.r, (self.kv_blocks - free) * block))
            if FAST_FORWARD and not chunks and self.cost.linear and len(decode) == len(running):
                h = min(s.out - s.emitted for s in decode) - 1      # steps in which nothing completes
                if h >= 2:
                    h, free = self._fast_forward(t, decode, h, free, arrival[order[k]] if k < n else np.inf)
                    t = self._ff_t
                    continue
            t = self._run_step(t, decode, chunks)
            done = set()
            for s in decode:
                s.cached += 1
                if self._emit(s, t):
                    done.add(id(s))
            for s, take in chunks:
                s.cached += take
                if s.cached >= s.target and self._emit(s, t):
                    done.add(id(s))
            if done:
                for s in running:
                    if id(s) in done:
                        free += s.blocks
                running = [s for s in running if id(s) not in done]
        self.kv_log.append((t, self.r, 0))


def serve_llm_sim(workload, model: str, device: str, scheduler: str = "continuous", *, replicas: int = 1,
                  max_batch: int = 256, chunk_tokens: int | None = None, kv_tokens: int | None = None,
                  block_tokens: int = 16, dtype: str = "fp16", weight_bits: float | None = None,
                  reserve: float = 0.1, region: str | None = None, cost=None, _handed: bool = False):
    """Serve an LLM workload token by token on `replicas` engines of `device` (lab 09) -> an ``LLMResult``.

    `workload` needs the columns ``prompt_tokens`` and ``output_tokens`` (``lk.deploy.trace("azure-conv")`` has
    them). `scheduler` is ``"static"`` or ``"continuous"``; `chunk_tokens` turns on chunked prefill (tokens per
    step); `kv_tokens` overrides the KV budget per replica. Step costs: fitted once per pool (see
    labkit.deploy.llm_cost; pass ``cost=`` a StepCost to reuse one across a sweep). Prefill and decode on separate
    pools: ``serve_llm_disagg``.

    >>> import labkit as lk
    >>> w = lk.deploy.Workload([0.0, 0.0], {"prompt_tokens": [100, 100], "output_tokens": [5, 5]})
    >>> r = lk.deploy.serve_llm_sim(w, "llama-3.1-8b", "h100-sxm")
    >>> int(r.output_tokens.sum()), r.preemptions
    (10, 0)
    >>> lk.deploy.serve_llm_sim(w, "llama-3.1-8b", "h100-sxm", scheduler="contiuous")
    Traceback (most recent call last):
    ValueError: unknown scheduler 'contiuous'. Did you mean 'continuous'? Allowed: continuous, static.
    """
    from labkit.args import check_int, unknown_name
    from labkit.deploy.llm_cost import StepCost
    from labkit.deploy.llm_result import LLMResult
    from labkit.estimate import carbon_factor
    from labkit.llm.kv import max_sequences
    from labkit.targets import device as find

    if scheduler not in SCHEDULERS:
        raise unknown_name("scheduler", scheduler, SCHEDULERS)
    for col in ("prompt_tokens", "output_tokens"):
        if col not in workload.columns:
            raise ValueError(f"the workload needs a {col!r} column (tokens per request); it has "
                             f"{sorted(workload.columns) or 'none'}. lk.deploy.trace('azure-conv') carries both.")
    prompt = np.asarray(workload.columns["prompt_tokens"], dtype=np.int64)
    out = np.asarray(workload.columns["output_tokens"], dtype=np.int64)
    if (prompt < 1).any():
        raise ValueError(f"every request needs prompt_tokens >= 1; request {int(np.argmax(prompt < 1))} has "
                         f"{int(prompt[prompt < 1][0])}.")
    if (out < 1).any():
        bad = int(np.argmax(out < 1))
        raise ValueError(f"every request needs output_tokens >= 1 (the prefill emits the first token); request "
                         f"{bad} has {int(out[bad])}. Drop such requests or set them to 1.")
    check_int("replicas", replicas, 1)
    check_int("max_batch", max_batch, 1)
    check_int("block_tokens", block_tokens, 1)
    if chunk_tokens is not None:
        check_int("chunk_tokens", chunk_tokens, 1)
        if scheduler != "continuous":
            raise ValueError("chunk_tokens (chunked prefill) works with scheduler='continuous' only.")
        if chunk_tokens <= max_batch:
            raise ValueError(f"chunk_tokens ({chunk_tokens}) must exceed max_batch ({max_batch}): every step "
                             "decodes up to max_batch sequences and needs room left for a prompt chunk.")
    dev = find(device) if isinstance(device, str) else device
    budget = max_sequences(model, dev, tokens=1, dtype=dtype, weight_bits=weight_bits, reserve=reserve)
    if kv_tokens is None:
        if budget.max_sequences == 0:
            raise ValueError(f"the KV cache holds no token: {model}'s weights ({budget.weight_bytes / 1e9:.3g} GB) "
                             f"leave nothing of {dev.name}'s {budget.usable_bytes / 1e9:.3g} GB usable; it is "
                             "smaller than one sequence. Use a device with more memory or fewer weight bits "
                             "(weight_bits=4.5).")
        kv_tokens = budget.max_sequences
        source = f"{dev.name} memory x {1 - reserve:g} - {budget.weight_bytes / 1e9:.3g} GB of weights"
    else:
        check_int("kv_tokens", kv_tokens, 1)
        source = "given"
    kv_blocks = int(kv_tokens) // block_tokens
    longest = int(np.max(prompt + out)) if len(prompt) else 0
    if _blocks(longest, block_tokens) > kv_blocks:
        raise ValueError(f"the KV cache holds {kv_blocks * block_tokens:,} tokens per replica ({source}), smaller "
                         f"than one sequence: the longest request needs {longest:,} tokens (prompt + output). "
                         "Use a device with more memory, fewer weight bits, or shorter requests.")
    if cost is None:
        cost = StepCost(model, dev, dtype, weight_bits)
    n = len(workload)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    preempt = np.zeros(n, dtype=np.int64)
    kv_log: list = []
    engines = []
    for r in range(replicas):
        eng = _Replica(cost, workload.arrival_s, prompt, out, first, finish, preempt, kv_log, r,
                       max_batch=max_batch, kv_blocks=kv_blocks, block=block_tokens, chunk=chunk_tokens,
                       scheduler=scheduler, handed=_handed)
        eng.run(np.arange(r, n, replicas))
        engines.append(eng)
    region_used, g_per_j = carbon_factor(dev, region)
    kv = np.array(sorted(kv_log), dtype=np.float64).reshape(-1, 3)
    return LLMResult(
        arrival_s=workload.arrival_s, first_token_s=first, finish_s=finish, prompt_tokens=prompt,
        output_tokens=out, preempted=preempt, replica=np.arange(n) % replicas, kv_timeline=kv,
        model=cost.cfg.name, device=dev.name, scheduler=scheduler + (f" + chunked {chunk_tokens}"
                                                                    if chunk_tokens else ""),
        replicas=replicas, kv_capacity_tokens=kv_blocks * block_tokens,
        busy_s=float(sum(e.busy_s for e in engines)), step_energy_j=float(sum(e.energy_j for e in engines)),
        steps=int(sum(e.steps for e in engines)),
        tokens_processed=int(sum(e.tokens_processed for e in engines)),
        tokens_emitted=int(sum(e.tokens_emitted for e in engines)),
        duration_s=float(max(workload.duration_s, np.nanmax(finish) if n else 0.0)),
        idle_w=float(dev.idle_w), usd_per_s=(dev.price_usd_per_hour or 0.0) / 3600.0, region=region_used,
        g_per_j=g_per_j, workload=workload.name)
