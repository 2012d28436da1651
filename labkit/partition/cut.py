"""The two exact solvers behind ``lk.partition`` (lab 06): a linear scan for chains, a minimum s–t cut for DAGs.

* layers ``0..n-1`` in topological order; ``producers[v]`` are the layers whose output ``v`` reads, and
  ``-1`` stands for the model input (which starts on the edge);
* ``edge_w[v]`` is paid when ``v`` runs on the edge, ``cloud_w[v]`` when it runs in the cloud (the caller
  adds the download of a model output to its producer's ``cloud_w``);
* ``up_w[u + 1]`` is paid once when tensor ``u`` (``-1``: the input) is made on the edge and read by at least
  one cloud layer — however many cloud layers read it;
* a placement is valid when no edge layer reads a cloud layer's output (data never goes back down, except
  the final result, whose cost the caller put in ``cloud_w``).

Both solvers return the set of cloud layers of a placement that minimises
``sum(edge_w[edge]) + sum(cloud_w[cloud]) + sum(up_w[crossing tensors])`` over all valid placements.
Constant terms (one RTT whenever the cloud is used) are the caller's business.
"""

from __future__ import annotations

import numpy as np

INPUT = -1          # producer index of the model input


def is_chain(producers: list[tuple[int, ...]]) -> bool:
    """True when layer 0 reads only the input and every other layer reads only the layer before it."""
    return all(tuple(p) == (v - 1,) for v, p in enumerate(producers))


def chain_split(edge_w, cloud_w, up_w) -> int:
    """Neurosurgeon's linear scan over a chain: the number k of leading layers to keep on the edge (0..n).

    Placement k runs layers ``0..k-1`` on the edge and ``k..n-1`` in the cloud, uploading tensor ``k-1``
    (the input when k = 0); k = n uploads nothing. O(n) with prefix sums. Ties go to the larger k (less
    sent over the network).

    >>> chain_split([1, 1, 9], [2, 2, 1], [5, 0.5, 0.5, 7])   # keep 2 on the edge, send layer 1's output
    2
    """
    edge_w = np.asarray(edge_w, dtype=float)      # (n,)
    cloud_w = np.asarray(cloud_w, dtype=float)    # (n,)
    up_w = np.asarray(up_w, dtype=float)          # (n + 1,): input, then each layer's output
    n = len(edge_w)
    edge_prefix = np.concatenate(([0.0], np.cumsum(edge_w)))              # (n + 1,): edge cost of k layers
    cloud_suffix = np.concatenate((np.cumsum(cloud_w[::-1])[::-1], [0.0]))  # (n + 1,): cloud cost of the rest
    crossing = np.append(up_w[:n], 0.0)                                   # k = n sends nothing
    total = edge_prefix + cloud_suffix + crossing                         # (n + 1,)
    return int(n - np.argmin(total[::-1]))                                # last minimum: the largest k


FLOWS = ("scaled-dinic", "push-relabel", "preflow_push", "boykov_kolmogorov", "shortest_augmenting_path", "edmonds_karp")


def min_cut(edge_w, cloud_w, up_w, producers: list[tuple[int, ...]], flow: str = "scaled-dinic") -> set[int]:
    """Exact optimum over every valid placement of a DAG as a minimum s–t cut (after DADS, INFOCOM 2019).

    Source s is "the edge", sink t is "the cloud"; a node on the sink side of the cut runs in the cloud.

    * s → v with capacity ``cloud_w[v]`` is cut when v runs in the cloud; v → t with ``edge_w[v]`` when it
      stays on the edge.
    * A tensor read by one layer: u → v with capacity ``up_w[u]``, cut when u is on the edge and v in the
      cloud. A tensor read by several: u → a_u with capacity ``up_w[u]`` and a_u → v of infinite capacity
      for each reader v; any cloud reader pulls a_u into the cloud, so the upload is cut once.
      The model input is produced by s itself.
    * Every data edge u → v also gets v → u of infinite capacity: a cut with u in the cloud and v on the
      edge (data going back down) would cost infinity, so the cut is always a valid placement.

    `flow` picks the max-flow: "scaled-dinic" (default: scipy's C Dinic on a few successively finer
    integer roundings of the capacities, see `_scaled_dinic_sink_side`), "push-relabel" (this module's,
    pure Python, exact in floats, slower on some graphs), or one of networkx's (slowest; kept to
    cross-check; beware networkx's preflow_push, whose partition can be off with float capacities,
    networkx issue #4972). All return a minimum cut; among several, "scaled-dinic" returns the one with the
    fewest cloud layers (ties go to the edge side); the others may return any of them.

    >>> sorted(min_cut([1, 1, 9], [2, 2, 1], [5, 0.5, 0.5, 7], [(-1,), (0,), (1,)]))
    [2]
    """
    if flow not in FLOWS:
        raise ValueError(f"unknown max-flow algorithm {flow!r}; allowed: {', '.join(FLOWS)}.")
    n = len(edge_w)
    edge_w = np.asarray(edge_w, dtype=float)
    cloud_w = np.asarray(cloud_w, dtype=float)
    readers: dict[int, list[int]] = {}
    for v, prods in enumerate(producers):
        for u in dict.fromkeys(prods):          # a layer reading the same tensor twice reads it once
            readers.setdefault(u, []).append(v)

    # Nodes: layers 0..n-1, s = n, t = n + 1, then one auxiliary node per tensor with several readers.
    # Each layer pays one of its two terminal costs whatever the cut, so subtracting their minimum from both
    # changes no placement's rank; one of its two terminal edges then has capacity 0 and is left out.
    s, t = n, n + 1
    both = np.minimum(edge_w, cloud_w)
    to_cloud, to_edge = (cloud_w - both).tolist(), (edge_w - both).tolist()
    caps: dict[tuple[int, int], float] = {(s, v): to_cloud[v] for v in range(n) if to_cloud[v] > 0}
    caps.update({(v, t): to_edge[v] for v in range(n) if to_edge[v] > 0})
    inf = float("inf")
    n_nodes = n + 2
    for u, vs in readers.items():
        src = s if u == INPUT else u
        cap = float(up_w[u + 1])
        if len(vs) == 1:
            caps[src, vs[0]] = caps.get((src, vs[0]), 0.0) + cap   # s -> v may already be a terminal edge
        else:
            aux, n_nodes = n_nodes, n_nodes + 1
            caps[src, aux] = cap
            caps.update({(aux, v): inf for v in vs})
        if u != INPUT:
            caps.update({(v, u): inf for v in vs})                # no data back down to the edge
    edges = [(a, b, c) for (a, b), c in caps.items()]
    if flow == "scaled-dinic":
        sink_side = _scaled_dinic_sink_side(n_nodes, edges, s, t)
        return {v for v in range(n) if v in sink_side}
    if flow == "push-relabel":
        # Push-relabel is quick when nearly all the excess it starts with reaches the sink, and slow when
        # much of it must be proven stuck. So start from the side with less terminal capacity: the same
        # minimum cut is found on the reversed graph from t to s (measured: 1,000-layer DAGs whose optimum
        # is all-edge went from ~1 s to ~15 ms).
        out_s = sum(c for a, _, c in edges if a == s)
        into_t = sum(c for _, b, c in edges if b == t)
        if out_s <= into_t:
            sink_side = _push_relabel_sink_side(n_nodes, edges, s, t)
            return {v for v in range(n) if v in sink_side}
        edge_side = _push_relabel_sink_side(n_nodes, [(b, a, c) for a, b, c in edges], t, s)
        return {v for v in range(n) if v not in edge_side}
    return {v for v in range(n) if v not in _networkx_source_side(n_nodes, edges, s, t, flow)}


def _scaled_dinic_sink_side(n_nodes: int, edges, s: int, t: int) -> set[int]:
    """The nodes that reach t in the residual graph of a maximum flow: the sink side of a minimum cut.

    scipy's maximum_flow (Dinic, in C) takes int32 capacities only. So the flow is built in two phases:
    each rounds the *residual* capacities down at a scale K (a power of two: 2^31, then 2^51, over the
    largest finite capacity), finds a maximum integer flow and adds it, divided by K. Rounding down keeps
    the flow feasible; a phase is repeated while it still finds flow (capacities clipped at 2^31 - 1 can
    hold it back). Then every edge of the minimum cut has less than 2^-51 of the largest capacity left,
    and the cut is read with a tolerance of 2^-50 of it: optimal to within float rounding of the
    largest capacity (about 1e-15 of it per cut edge), which the tests check against brute force.
    """
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    pairs: dict[tuple[int, int], list[float]] = {}          # (lo, hi) -> [cap lo->hi, cap hi->lo]
    for a, b, c in edges:
        lo, hi = min(a, b), max(a, b)
        pairs.setdefault((lo, hi), [0.0, 0.0])[0 if a == lo else 1] += c
    lo, hi = (np.array(x, dtype=np.int32) for x in zip(*pairs))
    cap_f, cap_b = (np.array(x, dtype=float) for x in zip(*pairs.values()))
    net = np.zeros(len(lo))                                 # net flow lo -> hi
    finite = np.concatenate((cap_f, cap_b))
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 0.0
    rows, cols = np.concatenate((lo, hi)), np.concatenate((hi, lo))
    if top > 0:
        with np.errstate(invalid="ignore"):                 # inf - inf never happens: net is finite
            for bits in (31, 51):
                scale = 2.0 ** (bits - np.ceil(np.log2(top)))
                for _ in range(8):
                    resid = np.concatenate((cap_f - net, cap_b + net))          # inf stays inf
                    q = np.floor(np.minimum(np.maximum(resid, 0.0) * scale, 2**31 - 1)).astype(np.int32)
                    keep = q > 0
                    graph = csr_array((q[keep], (rows[keep], cols[keep])), shape=(n_nodes, n_nodes))
                    result = maximum_flow(graph, s, t, method="dinic")
                    if result.flow_value == 0:
                        break
                    net += np.asarray(result.flow[lo, hi]).ravel() / scale
    resid = np.concatenate((cap_f - net, cap_b + net))
    tol = top * 2.0**-50                                    # float noise, far below any real capacity
    ok = resid > tol
    # edges a -> b with residual, reversed (b -> a), so a BFS from t finds every node that reaches t
    back = csr_array((np.ones(int(ok.sum())), (cols[ok], rows[ok])), shape=(n_nodes, n_nodes))
    return set(breadth_first_order(back, t, directed=True, return_predecessors=False).tolist())


def _push_relabel_sink_side(n_nodes: int, edges, s: int, t: int) -> set[int]:
    """The nodes that still reach t after a maximum preflow (highest-label push-relabel, Goldberg–Tarjan,
    with global relabelling and the gap rule), i.e. the sink side of a minimum cut; exact in floats.

    Edges are (a, b, capacity) with capacity possibly inf; edge 2i is the i-th edge, 2i + 1 its reverse.
    """
    from collections import deque

    m, N = len(edges), n_nodes
    head = [0] * (2 * m)                        # edge -> the node it points to
    cap = [0.0] * (2 * m)                       # residual capacity
    adj: list[list[int]] = [[] for _ in range(N)]
    for i, (a, b, c) in enumerate(edges):
        head[2 * i], cap[2 * i], head[2 * i + 1] = b, c, a
        adj[a].append(2 * i)
        adj[b].append(2 * i + 1)
    height, excess, it = [N] * N, [0.0] * N, [0] * N
    buckets: list[list[int]] = [[] for _ in range(N)]       # active nodes by height (< N)
    count = [0] * (2 * N + 2)                                # nodes per height (< N)

    def reach_t() -> list[int]:
        """Exact distances to t in the residual graph (N: cannot reach t); BFS backwards from t."""
        dist = [N] * N
        dist[t] = 0
        queue = deque([t])
        while queue:
            w = queue.popleft()
            dw = dist[w] + 1
            for e in adj[w]:                     # e: w -> v, so e ^ 1 is v -> w
                v = head[e]
                if dist[v] == N and v != s and cap[e ^ 1] > 0:
                    dist[v] = dw
                    queue.append(v)
        return dist

    def global_relabel() -> int:
        height[:] = reach_t()
        for b in buckets:
            b.clear()
        count[:] = [0] * len(count)
        top = -1
        for v in range(N):
            h = height[v]
            if h < N and v != t:
                count[h] += 1
                it[v] = 0
                if excess[v] > 0:
                    buckets[h].append(v)
                    top = max(top, h)
        return top

    for e in adj[s]:                             # saturate what leaves s
        c = cap[e]
        if c > 0:
            cap[e], cap[e ^ 1] = 0.0, cap[e ^ 1] + c
            excess[head[e]] += c
    top = global_relabel()
    work = 0
    while top >= 0:
        if not buckets[top]:
            top -= 1
            continue
        v = buckets[top].pop()
        hv = height[v]
        if hv != top:                            # lifted by a gap since it was queued
            continue
        adj_v, i, ex = adj[v], it[v], excess[v]
        while True:                              # discharge v
            if i == len(adj_v):                  # relabel: just above its lowest residual neighbour
                low = min((height[head[e]] for e in adj_v if cap[e] > 0), default=2 * N)
                work += len(adj_v) + 12
                count[hv] -= 1
                if count[hv] == 0:               # gap: nothing at or above hv can reach t any more
                    for u in range(N):
                        if hv < height[u] < N:
                            count[height[u]] -= 1
                            height[u] = N
                    hv = N
                else:
                    hv = min(low + 1, N)
                i = 0
                if hv >= N:
                    break
                count[hv] += 1
                continue
            e = adj_v[i]
            c = cap[e]
            if c > 0 and hv == height[head[e]] + 1:
                w = head[e]
                d = ex if ex < c else c          # d == c leaves exactly 0: no float residue on saturation
                cap[e], cap[e ^ 1] = c - d, cap[e ^ 1] + d
                if excess[w] == 0 and w != t and w != s:
                    buckets[hv - 1].append(w)
                    top = max(top, hv - 1)
                excess[w] += d
                ex -= d
                if ex == 0:
                    break
            i += 1
        excess[v], it[v], height[v] = ex, i, hv
        if hv < N and ex > 0:
            buckets[hv].append(v)
            top = max(top, hv)
        if work > 6 * N + m:                     # relabels have drifted: recompute exact distances
            work = 0
            top = global_relabel()
    dist = reach_t()
    return {v for v in range(N) if dist[v] < N}


def _networkx_source_side(n_nodes: int, edges, s: int, t: int, flow: str) -> set[int]:
    import networkx as nx
    from networkx.algorithms import flow as nxflow

    g = nx.DiGraph()
    g.add_nodes_from(range(n_nodes))
    g.add_edges_from((a, b, {"capacity": c} if c < float("inf") else {}) for a, b, c in edges)
    _, (source_side, _) = nx.minimum_cut(g, s, t, flow_func=getattr(nxflow, flow))
    return set(source_side)
