"""Label-based retrieval metrics (DESIGN section 7), vectorised over queries.

For query q with label set Y_q and its top-K results r_1..r_K:
``P@K(q) = 1/K sum_j |Y_q & Y_rj| / |Y_rj|``, ``R@K(q) = 1/K sum_j |Y_q & Y_rj| / |Y_q|``,
``F1@K`` = mean over queries of 2PR/(P+R), ``F1_csmae@K`` = 2 P̄ R̄ / (P̄ + R̄) of the query means,
``mAP@K`` with rel_j = [|Y_q & Y_rj| >= 1], ``pair_recall@K`` = share of queries whose partner (the
archive item with the same id) is in the top K. Guards: a term whose denominator |Y_rj| or |Y_q| is
0 is 0 (its intersection is 0 anyway); F1 is 0 where P+R = 0; AP is 0 where no result is relevant.

Labels are packed into uint64 bitmasks (one word per 64 classes), intersections counted with
popcount, so a chunk of queries costs [chunk, K, words] integers; nothing is Q x A.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["retrieval_metrics", "per_query_metrics", "retrieval_metrics_loop"]

_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Bits set per uint64 element (``np.bitwise_count`` on numpy >= 2.0, byte table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)


def _as_bool_labels(labels: Any, name: str) -> np.ndarray:
    """Multi-hot [N, C] labels as bool; 0/1 numbers accepted, anything else refused."""
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D multi-hot array [N, C], got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0/1 (or bool) values")
        arr = arr.astype(bool)
    return arr


def _pack(labels: np.ndarray) -> np.ndarray:
    """Bool [N, C] -> uint64 bitmasks [N, ceil(C / 64)] (class c is bit c % 64 of word c // 64)."""
    packed = np.packbits(labels, axis=1, bitorder="little")            # [N, ceil(C/8)] uint8
    out = np.zeros((labels.shape[0], max(1, -(-labels.shape[1] // 64)) * 8), dtype=np.uint8)
    out[:, : packed.shape[1]] = packed                                  # pad to whole words
    return out.view("<u8").astype(np.uint64, copy=False)


def _prepare(ranked: Any, query_labels: Any, archive_labels: Any, ks: Sequence[int],
             query_ids: Any, archive_ids: Any) -> tuple:
    """Validate inputs; return ranked [Q, K], packed labels, cardinalities, id codes (or None)."""
    ranked, ks = np.asarray(ranked), tuple(int(k) for k in ks)
    ql, al = _as_bool_labels(query_labels, "query_labels"), _as_bool_labels(archive_labels, "archive_labels")
    if ranked.ndim != 2 or not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must be an integer array [Q, K], got {ranked.dtype} {ranked.shape}")
    if not ks or min(ks) < 1 or max(ks) > ranked.shape[1]:
        raise ValueError(f"every k must be in 1..K={ranked.shape[1]} (the columns of ranked), got {ks}")
    if ranked.shape[0] != ql.shape[0] or ql.shape[1] != al.shape[1]:
        raise ValueError(f"shapes disagree: ranked {ranked.shape}, query_labels {ql.shape}, "
                         f"archive_labels {al.shape}")
    if ranked.size and (ranked.min() < 0 or ranked.max() >= al.shape[0]):
        raise ValueError(f"ranked holds indices outside 0..{al.shape[0] - 1} (faiss pads with -1 "
                         "when the archive has fewer than K items)")
    if (query_ids is None) != (archive_ids is None):
        raise ValueError("give both query_ids and archive_ids for pair recall, or neither")
    codes = None
    if query_ids is not None:
        qid, aid = np.asarray(query_ids), np.asarray(archive_ids)
        if qid.shape != (ql.shape[0],) or aid.shape != (al.shape[0],):
            raise ValueError(f"ids must be 1-D with Q={ql.shape[0]} and A={al.shape[0]} entries")
        if np.issubdtype(qid.dtype, np.integer) and np.issubdtype(aid.dtype, np.integer):
            codes = (qid, aid)                                          # compare directly
        else:                                                           # strings etc.: int codes
            _, inv = np.unique(np.concatenate([qid, aid]), return_inverse=True)
            codes = (inv[: len(qid)], inv[len(qid):])
    abits = _pack(al)
    inv_acard = 1.0 / np.maximum(_popcount(abits).sum(-1, dtype=np.int64), 1)  # 1/|Y_r|; 1 if empty
    return ranked, ks, _pack(ql), ql.sum(1), abits, inv_acard, codes


def _chunk_metrics(ranked: np.ndarray, qbits: np.ndarray, qcard: np.ndarray, abits: np.ndarray,
                   inv_acard: np.ndarray, ks: tuple, codes: tuple | None) -> dict[int, np.ndarray]:
    """Per-query metrics of one chunk: {k: float64 [5, q]} rows P, R, F1, AP, pair hit."""
    cuts = sorted(set(ks))                                              # the k's, ascending
    kmax, col = cuts[-1], {k: i for i, k in enumerate(cuts)}
    starts = [0] + cuts[:-1]

    def upto(a: np.ndarray, dtype: type) -> np.ndarray:                # [q, K] -> sums to each k
        return np.cumsum(np.add.reduceat(a, starts, axis=1, dtype=dtype), axis=1)

    top = ranked[:, :kmax]                                              # [q, K]
    inter = _popcount(abits[top] & qbits[:, None, :])                   # [q, K, words]
    inter = inter[..., 0] if inter.shape[2] == 1 else inter.sum(-1, dtype=np.int32)
    p_at = upto(inter * inv_acard[top], np.float64)                     # term 0 where |Y_r| = 0
    r_at = upto(inter, np.int64) / np.maximum(qcard, 1)[:, None]        # 0 where |Y_q| = 0
    rel = inter > 0
    hits = np.cumsum(rel, axis=1, dtype=np.int32)                       # sum_{i<=j} rel_i
    ap_at = upto((hits * rel) * (1.0 / np.arange(1, kmax + 1)), np.float64)
    if codes is not None:
        pair_at = upto(codes[1][top] == codes[0][:, None], np.int32) > 0
    out = {}
    for k in ks:
        c, h = col[k], hits[:, k - 1]
        p, r = p_at[:, c] / k, r_at[:, c] / k
        f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
        ap = np.divide(ap_at[:, c], h, out=np.zeros_like(p), where=h > 0)
        out[k] = np.stack([p, r, f1, ap, pair_at[:, c] if codes is not None else np.zeros_like(p)])
    return out


def _all_queries(ranked, query_labels, archive_labels, ks, query_ids, archive_ids,
                 chunk_size: int) -> tuple[tuple, dict[int, np.ndarray], bool]:
    """Run the chunks; return ks and {k: [5, Q]} per-query rows, and whether ids were given."""
    ranked, ks, qbits, qcard, abits, inv_acard, codes = _prepare(
        ranked, query_labels, archive_labels, ks, query_ids, archive_ids)
    n, step = ranked.shape[0], max(1, int(chunk_size))
    rows = {k: np.zeros((5, n)) for k in ks}
    for s in range(0, n, step):
        sl = slice(s, s + step)
        part = _chunk_metrics(ranked[sl], qbits[sl], qcard[sl], abits, inv_acard, ks,
                              None if codes is None else (codes[0][sl], codes[1]))
        for k in ks:
            rows[k][:, sl] = part[k]
    return ks, rows, codes is not None


def _summarise(ks: tuple, p: dict, r: dict, f1: dict, ap: dict, pair: dict | None) -> dict[str, float]:
    """Query means {k: [Q]} -> the flat metric dict (F1_csmae from the mean P and R)."""
    mean = lambda a: float(np.mean(a)) if len(a) else 0.0  # noqa: E731  (no queries -> 0)
    out: dict[str, float] = {}
    for k in ks:
        pm, rm = mean(p[k]), mean(r[k])
        out[f"F1@{k}"] = mean(f1[k])
        out[f"F1_csmae@{k}"] = 2 * pm * rm / (pm + rm) if pm + rm > 0 else 0.0
        out[f"P@{k}"], out[f"R@{k}"], out[f"mAP@{k}"] = pm, rm, mean(ap[k])
        if pair is not None:
            out[f"pair_recall@{k}"] = mean(pair[k])
    return out


def retrieval_metrics(ranked: Any, query_labels: Any, archive_labels: Any, ks: Sequence[int] = (10,),
                      query_ids: Any = None, archive_ids: Any = None,
                      chunk_size: int = 4096) -> dict[str, float]:
    """Query-averaged metrics for each k in ``ks`` (fractions in [0, 1], Python floats).

    ranked: int [Q, K] archive indices, best first, K >= max(ks); query_labels: bool/0-1 [Q, C];
    archive_labels: bool/0-1 [A, C]; query_ids [Q] / archive_ids [A]: optional, any comparable
    dtype, a query's partner is the archive item with the same id. Returns keys ``F1@k``,
    ``F1_csmae@k``, ``P@k``, ``R@k``, ``mAP@k`` and, with ids, ``pair_recall@k``. Queries are
    processed ``chunk_size`` at a time: memory ~ chunk_size x K x ceil(C/64) words, never Q x A.
    """
    ks, rows, with_ids = _all_queries(ranked, query_labels, archive_labels, ks, query_ids,
                                      archive_ids, chunk_size)
    p, r, f1, ap, pair = ({k: rows[k][i] for k in ks} for i in range(5))
    return _summarise(ks, p, r, f1, ap, pair if with_ids else None)


def per_query_metrics(ranked: Any, query_labels: Any, archive_labels: Any, k: int = 10,
                      query_ids: Any = None, archive_ids: Any = None,
                      chunk_size: int = 4096) -> dict[str, np.ndarray]:
    """Per-query float64 arrays [Q] at one k: ``P``, ``R``, ``F1``, ``AP`` (+ ``pair`` 0/1 with ids).

    Same inputs and guards as :func:`retrieval_metrics`; their means are its ``P@k`` etc.
    """
    ks, rows, with_ids = _all_queries(ranked, query_labels, archive_labels, (k,), query_ids,
                                      archive_ids, chunk_size)
    names = ("P", "R", "F1", "AP", "pair") if with_ids else ("P", "R", "F1", "AP")
    return dict(zip(names, rows[ks[0]]))


def retrieval_metrics_loop(ranked: Any, query_labels: Any, archive_labels: Any,
                           ks: Sequence[int] = (10,), query_ids: Any = None,
                           archive_ids: Any = None) -> dict[str, float]:
    """Reference: the same metrics with a plain per-query Python loop (slow; for tests/benchmarks)."""
    ranked, ks = np.asarray(ranked), tuple(int(k) for k in ks)
    ql, al = _as_bool_labels(query_labels, "query_labels"), _as_bool_labels(archive_labels, "archive_labels")
    p, r, f1, ap, pair = ({k: [] for k in ks} for _ in range(5))
    for q in range(ranked.shape[0]):
        n_q = int(ql[q].sum())
        for k in ks:
            res = al[ranked[q, :k]]                                     # [k, C]
            inter, n_r = (res & ql[q]).sum(1), res.sum(1)                # |Y_q & Y_rj|, |Y_rj|
            pq = sum(i / n if n > 0 else 0.0 for i, n in zip(inter, n_r)) / k
            rq = sum(i / n_q if n_q > 0 else 0.0 for i in inter) / k
            hits, s = 0, 0.0
            for j in range(k):
                if inter[j] >= 1:
                    hits += 1
                    s += hits / (j + 1)
            p[k].append(pq)
            r[k].append(rq)
            f1[k].append(2 * pq * rq / (pq + rq) if pq + rq > 0 else 0.0)
            ap[k].append(s / hits if hits else 0.0)
            if query_ids is not None:
                pair[k].append(float(any(archive_ids[i] == query_ids[q] for i in ranked[q, :k])))
    return _summarise(ks, p, r, f1, ap, pair if query_ids is not None else None)
