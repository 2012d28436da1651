"""``lk.deploy.serve_llm``: lab 08's small GPT served for real on Ray Serve, tokens streamed (lab 09).

One replica (a Serve deployment, ``num_cpus=1``, one torch thread; torch is imported once, when the replica
starts) runs an ENGINE LOOP (labkit.deploy.gpt_engine): at each iteration it admits waiting requests in arrival
order while a KV slot is free (`max_batch` slots) and the KV budget (`kv_tokens`) holds their prompt + output,
prefills each new prompt, decodes one token for every running sequence in one batched pass, then hands all the
step's tokens out at once (as the simulator's step does). No preemption: a sequence reserves its whole length at
admission. Each request is a streaming call (``handle.options(stream=True)``): the replica's async generator
yields every token as it is made. The client (this process) replays the workload open-loop at its arrival times
and stamps every token as it arrives. No HTTP proxy. Ray and Serve always shut down: a Ray started here is shut
down whole (its processes, Serve's controller and replica among them, end with it: ``serve.shutdown()``'s graceful
drain would add seconds); on a cluster that was already running, ``serve.shutdown()`` takes the app down.

``served.simulate(workload)`` is the simulator's side: ``serve_llm_sim`` with the same slots, KV budget and the
step costs measured inside the replica before the replay (``step_cost``), stretched by the replica's in-service
``dilation`` (``in_service_cost``); ``lk.deploy.compare(simulated, served)`` puts TTFT and TPOT side by side.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from labkit.deploy.llm_result import TokenTimes


def _replica_class(serve):
    import asyncio
    from collections import deque

    class GPTReplica:
        def __init__(self, max_batch: int, kv_tokens: int, threads: int):
            t0 = time.perf_counter()
            import torch

            torch.set_num_threads(threads)
            from labkit.deploy.gpt_engine import Engine
            from labkit.llm.model import load

            self.engine = Engine(load().model, max_batch)
            self.free = list(range(max_batch))
            self.kv_tokens, self.used = kv_tokens, 0
            self.waiting, self.running = deque(), []
            self.wake = self.task = None
            self.stats = {"steps": 0, "forward_s": 0.0, "loop_s": 0.0, "priced_s": 0.0,
                          "init_s": time.perf_counter() - t0}
            self.cost = None

        def calibrate(self, repeats: int):
            from labkit.deploy.gpt_engine import fit_step_cost

            self.cost = fit_step_cost(self.engine, len(self.free), repeats, "measured in the Serve replica")
            return self.cost

        def engine_stats(self) -> dict:
            return dict(self.stats)

        async def generate(self, ids, max_new: int):
            if self.task is None:
                self.wake = asyncio.Event()
                self.task = asyncio.get_running_loop().create_task(self._loop())
            q: asyncio.Queue = asyncio.Queue()
            self.waiting.append({"ids": list(ids), "max_new": int(max_new), "q": q, "out": 0})
            self.wake.set()
            while True:
                item = await q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item

        def _iterate(self) -> list:
            """One engine iteration; returns [(request, token)] made by it."""
            admitted = []
            while self.waiting and self.free:
                r = self.waiting[0]
                need = len(r["ids"]) + r["max_new"]
                if self.used + need > self.kv_tokens:
                    break
                self.waiting.popleft()
                r["slot"], r["need"] = self.free.pop(0), need
                self.used += need
                admitted.append(r)
            made = []
            t0 = time.perf_counter()
            for r in admitted:
                made.append((r, self.engine.prefill(r["slot"], r["ids"])))
                r["len"] = len(r["ids"])
            run = self.running
            if run:
                toks = self.engine.decode([r["slot"] for r in run], [r["last"] for r in run], [r["len"] for r in run])
                made += list(zip(run, toks))
                for r in run:
                    r["len"] += 1
            self.stats["forward_s"] += time.perf_counter() - t0
            if self.cost is not None:                        # what the fitted cost says these passes take
                self.stats["priced_s"] += self.cost.step([r["len"] - 1 for r in run],
                                                         [len(r["ids"]) for r in admitted])[0]
            self.running = run + admitted
            return made

        async def _loop(self):
            while True:
                if not self.waiting and not self.running:
                    self.wake.clear()
                    await self.wake.wait()
                t0 = time.perf_counter()
                try:
                    made = self._iterate()
                except Exception as e:                    # fail every request rather than hang them
                    for r in [*self.waiting, *self.running]:
                        r["q"].put_nowait(e)
                    self.waiting.clear()
                    self.running, self.free, self.used = [], list(range(self.engine.slots)), 0
                    continue
                stamp = time.perf_counter()
                for r, tok in made:
                    r["last"], r["out"] = tok, r["out"] + 1
                    r["q"].put_nowait((tok, stamp))
                    if r["out"] == r["max_new"]:
                        r["q"].put_nowait(None)
                        self.free.append(r["slot"])
                        self.used -= r["need"]
                self.running = [r for r in self.running if r["out"] < r["max_new"]]
                self.stats["steps"] += 1
                self.stats["loop_s"] += time.perf_counter() - t0
                await asyncio.sleep(0)                       # let the generators stream this step's tokens

    return GPTReplica


@dataclass(frozen=True, eq=False)
class ServedLLM(TokenTimes):
    """Per-request token times of the small GPT served on Ray Serve (lab 09), measured by the client.

    ``token_s[i]``: when each of request i's tokens reached the client (seconds from the replay's start);
    ``emitted_s[i]``: when the engine handed it out (same clock; the difference is Serve's streaming delivery).
    TTFT, TPOT and end-to-end as in ``LLMResult``; ``step_cost``: the engine's step costs measured in the replica.
    """

    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    token_s: tuple
    emitted_s: tuple
    tokens: tuple                    # the token ids each request received
    step_cost: object
    engine: dict                     # steps, forward_s (in the model), loop_s (whole iterations), init_s
    startup_s: dict                  # ray_init, serve_start, replica_ready (torch import + weights), warm_up, ...
    serve_overhead_s: float          # Serve's part of a lone request's TTFT (client TTFT - priced prefill), before replay
    max_batch: int
    kv_tokens: int
    workload: str = ""
    source: str = field(default="served on Ray Serve")

    @property
    def duration_s(self) -> float:
        return float(np.nanmax(self.finish_s)) if len(self.finish_s) else 0.0

    @property
    def tokens_out_per_s(self) -> float:
        return float(self.output_tokens.sum()) / self.duration_s

    @property
    def dilation(self) -> float:
        """The engine's forward passes in service / what ``step_cost`` (measured alone) prices them at: CPU shared
        with Serve's streaming threads, the client and other load."""
        return float(self.engine["forward_s"] / self.engine["priced_s"]) if self.engine.get("priced_s") else 1.0

    @property
    def in_service_cost(self):
        """``step_cost`` x ``dilation``: the step costs as the engine met them during the replay."""
        return self.step_cost.scaled(self.dilation, "measured in the Serve replica, x its in-service dilation")

    def simulate(self, workload, in_service: bool = True):
        """``serve_llm_sim`` of `workload` on this machine with this engine's slots, KV budget and step costs
        (``in_service_cost``, or ``step_cost`` as measured alone); the device is this CPU, not calibrated."""
        from labkit.deploy.gpt_engine import local_measured
        from labkit.deploy.llm_engine import serve_llm_sim

        cost = self.in_service_cost if in_service else self.step_cost
        return serve_llm_sim(workload, "gpt", local_measured(), cost=cost, max_batch=self.max_batch,
                             kv_tokens=self.kv_tokens, block_tokens=1)

    @property
    def delivery_s(self) -> np.ndarray:
        """Per token: arrival at the client - emission by the engine (Serve's streaming path)."""
        return np.concatenate([c - e for c, e in zip(self.token_s, self.emitted_s)]) if self.token_s else np.zeros(0)

    def percentiles(self, metric: str = "ttft_s") -> dict:
        from labkit.deploy.llm_result import LLMResult

        return LLMResult.percentiles(self, metric)

    def summary(self) -> dict:
        out = {f"{m[:-2]}_p{p}_s": v for m in ("ttft_s", "tpot_s", "e2e_s") for p, v in self.percentiles(m).items()}
        out["tokens_out_per_s"] = self.tokens_out_per_s
        return out

    def __repr__(self) -> str:
        s = self.summary()
        return (f"ServedLLM(gpt on Ray Serve, {len(self.arrival_s)} requests, {self.engine.get('steps', 0)} engine "
                f"steps: TTFT p50/p99 {s['ttft_p50_s'] * 1e3:.3g}/{s['ttft_p99_s'] * 1e3:.3g} ms, TPOT p50/p99 "
                f"{s['tpot_p50_s'] * 1e3:.3g}/{s['tpot_p99_s'] * 1e3:.3g} ms, {self.tokens_out_per_s:.4g} output "
                f"tok/s; delivery median {np.median(self.delivery_s) * 1e3:.3g} ms per token)")


def prompts_for(workload, seed: int = 0) -> list[list[int]]:
    """Token ids for each request's ``prompt_tokens``: slices of tinyshakespeare at seeded offsets (lab 09)."""
    from labkit.llm import text

    ids = text.split("val")
    rng = np.random.default_rng(seed)
    out = []
    for n in np.asarray(workload.columns["prompt_tokens"], dtype=np.int64):
        start = int(rng.integers(0, len(ids) - n))
        out.append(ids[start:start + n].tolist())
    return out


def _check(workload, prompts, max_batch, kv_tokens, context, vocab):
    from labkit.args import check_int

    for col in ("prompt_tokens", "output_tokens"):
        if col not in workload.columns:
            raise ValueError(f"the workload needs a {col!r} column (tokens per request); it has "
                             f"{sorted(workload.columns) or 'none'}.")
    check_int("max_batch", max_batch, 1)
    out = np.asarray(workload.columns["output_tokens"], dtype=np.int64)
    if (out < 1).any():
        bad = int(np.argmax(out < 1))
        raise ValueError(f"every request needs output_tokens >= 1 (the prefill emits the first token); request "
                         f"{bad} has {int(out[bad])}.")
    if prompts is None:
        prompts = prompts_for(workload)
    if len(prompts) != len(workload):
        raise ValueError(f"prompts has {len(prompts)} entries for {len(workload)} requests.")
    from labkit.llm.text import encode

    ids = [encode(p) if isinstance(p, str) else [int(t) for t in p] for p in prompts]
    for i, (p, n) in enumerate(zip(ids, out)):
        if not p:
            raise ValueError(f"request {i}'s prompt is empty; give at least one token.")
        if min(p) < 0 or max(p) >= vocab:
            raise ValueError(f"request {i}'s prompt has token ids outside the vocabulary [0, {vocab}).")
        if len(p) + n > context:
            raise ValueError(f"request {i}: prompt ({len(p)} tokens) + output ({int(n)}) exceeds the small GPT's "
                             f"context of {context} tokens; shorten the workload's lengths.")
    kv_tokens = check_int("kv_tokens", kv_tokens if kv_tokens is not None else max_batch * context, 1)
    longest = max((len(p) + int(n) for p, n in zip(ids, out)), default=0)
    if longest > kv_tokens:
        raise ValueError(f"kv_tokens ({kv_tokens}) is smaller than one sequence: the longest request needs "
                         f"{longest} tokens (prompt + output).")
    return ids, out, kv_tokens


def serve_llm(workload, prompts=None, *, max_batch: int = 8, kv_tokens: int | None = None, address: str | None = None,
              num_cpus: int = 2, calibrate_repeats: int = 5) -> ServedLLM:
    """Serve the small GPT (``lk.zoo.load("gpt")``) on one Ray Serve replica and replay `workload` (lab 09).

    `workload` needs ``prompt_tokens`` and ``output_tokens`` columns (prompt + output <= 128, the GPT's context);
    `prompts` (strings or token-id lists, one per request) default to tinyshakespeare slices of those lengths.
    Greedy decoding; `max_batch` KV slots; `kv_tokens` the KV budget (default: every slot full). Before the
    replay the replica measures its own step costs (``step_cost``, for ``serve_llm_sim(..., cost=)``).

    >>> import labkit as lk
    >>> w = lk.deploy.Workload([0.0, 0.05], {"prompt_tokens": [20, 30], "output_tokens": [8, 8]})
    >>> served = lk.deploy.serve_llm(w)                                  # doctest: +SKIP
    >>> [len(t) for t in served.tokens]                                  # doctest: +SKIP
    [8, 8]
    """
    from labkit.cluster import ray_cluster
    from labkit.deploy.twin import _off_loop
    from labkit.llm.archs import config

    cfg = config("gpt")
    ids, out, kv_tokens = _check(workload, prompts, max_batch, kv_tokens, cfg.context, cfg.vocab)
    startup: dict = {}
    import ray

    ours = not ray.is_initialized() and address in (None, "local")   # Ray's shutdown then takes Serve down too
    t0 = time.perf_counter()
    with ray_cluster(num_cpus=num_cpus, address=address):
        startup["ray_init"] = time.perf_counter() - t0
        from ray import serve as rserve

        t0 = time.perf_counter()
        logging.disable(logging.INFO)
        try:
            rserve.start(proxy_location="Disabled")
        finally:
            logging.disable(logging.NOTSET)
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        startup["serve_start"] = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            app = rserve.deployment(_replica_class(rserve)).options(
                name="gpt", num_replicas=1, max_ongoing_requests=max(64, 4 * max_batch),
                ray_actor_options={"num_cpus": 1}).bind(max_batch, kv_tokens, 1)
            handle = rserve.run(app, name="gpt", route_prefix=None)
            startup["replica_ready"] = time.perf_counter() - t0
            res = _off_loop(_run, handle, workload.arrival_s, ids, out, calibrate_repeats, startup)
        finally:
            t0 = time.perf_counter()
            if not ours:                       # a cluster we joined or were given: take our Serve app down
                rserve.shutdown()
            startup["serve_shutdown"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    startup["ray_shutdown"] = time.perf_counter() - t0
    sent, toks, recv, emit, cost, stats, overhead = res
    first = np.array([r[0] if len(r) else np.nan for r in recv])
    finish = np.array([r[-1] if len(r) else np.nan for r in recv])
    return ServedLLM(sent, first, finish, np.array([len(p) for p in ids]), out, tuple(recv), tuple(emit),
                     tuple(tuple(t) for t in toks), cost, stats, startup, overhead, max_batch, kv_tokens,
                     workload.name)


def _run(handle, arrival, ids, out, repeats, startup):
    import asyncio

    t0 = time.perf_counter()
    gen = handle.options(method_name="generate", stream=True)
    for _ in range(2):                                            # warm the streaming path
        list(gen.remote([0], 2))
    cost = handle.calibrate.remote(repeats).result(timeout_s=120)
    lone = []                    # Serve's own time in a lone request's TTFT: client TTFT - the priced prefill
    for _ in range(5):
        sent = time.perf_counter()
        stamps = [time.perf_counter() for _ in gen.remote([0] * 8, 2)]
        lone.append(stamps[0] - sent - cost.prefill_s(8))
    overhead = max(float(np.median(lone)), 0.0)
    startup["warm_up_and_calibrate"] = time.perf_counter() - t0
    n = len(arrival)
    sent = np.full(n, np.nan)
    toks = [[] for _ in range(n)]
    recv = [[] for _ in range(n)]
    emit = [[] for _ in range(n)]

    async def one(i, start):
        sent[i] = time.perf_counter() - start
        async for tok, stamp in gen.remote(ids[i], int(out[i])):
            recv[i].append(time.perf_counter() - start)
            emit[i].append(stamp - start)
            toks[i].append(tok)

    async def main():
        start = time.perf_counter()
        tasks = []
        for i, a in enumerate(arrival.tolist()):
            delay = start + a - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, start)))
        await asyncio.gather(*tasks)

    base = handle.engine_stats.remote().result(timeout_s=60)
    asyncio.run(main())
    stats = handle.engine_stats.remote().result(timeout_s=60)
    stats = {k: (v - base[k] if k != "init_s" else v) for k, v in stats.items()}
    return sent, toks, [np.array(r) for r in recv], [np.array(e) for e in emit], cost, stats, overhead
