"""Retrieval evaluation protocol (DESIGN 7): queries = validation split, archive = test split.

Four directions for modalities (a, b): a->b, b->a, a->a, b->b. Label metrics (F1, P, R, mAP @ k)
follow CSMAE's protocol. ``pair_recall@k`` (cross-modal only) asks whether a query's own
co-registered partner is in its top k, so it searches the query split's other modality (where
the partner is). Same-modal search over the set the queries come from excludes the query itself.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from xjepa_kit.atomic import atomic_write_text
from xjepa_kit.embedding_store import Embeddings, check_comparable
from xjepa_kit.errors import XJepaError
from xjepa_kit.metrics import retrieval_metrics
from xjepa_kit.retrieval import RetrievalIndex

DEFAULT_KS = (5, 10, 20, 50, 100)
TABLE_KEYS = ("F1@{k}", "F1_csmae@{k}", "P@{k}", "R@{k}", "mAP@{k}", "pair_recall@{k}")


def directions(modalities: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """[(a, b), (b, a), (a, a), (b, b)]."""
    a, b = modalities
    return [(a, b), (b, a), (a, a), (b, b)]


def drop_self(ranked: np.ndarray) -> np.ndarray:
    """Remove each query's own row index from its ranking [Q, K+1] -> [Q, K] (else drop the last)."""
    q = len(ranked)
    is_self = ranked == np.arange(q)[:, None]
    keep = ~is_self
    keep[~is_self.any(1), -1] = False
    return ranked[keep].reshape(q, ranked.shape[1] - 1)


def search(archive: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Exact top-k (faiss flat, inner product) -> ranked archive indices [Q, k]."""
    index = RetrievalIndex.build(archive)
    _, ranked = index.search(queries, k + int(exclude_self))
    return drop_self(ranked) if exclude_self else ranked


def checked_ks(ks) -> tuple[int, ...]:
    """The k's sorted and unique; one error unless every k is at least 1."""
    ks = tuple(sorted(set(int(k) for k in ks)))
    if not ks or ks[0] < 1:
        raise XJepaError(f"every k must be at least 1, got {list(ks)}")
    return ks


def evaluate_embeddings(queries: Embeddings, archive: Embeddings, ks=DEFAULT_KS, same_set: bool = False) -> dict:
    """Metrics for every direction -> ``{"directions": {"s1->s2": {"F1@10": ...}, ...}, ...}``."""
    ks = checked_ks(ks)
    if len(archive) - int(same_set) < 1:
        raise XJepaError("the archive is empty: nothing to retrieve")
    check_comparable(queries, archive)
    kmax = min(max(ks), len(archive) - int(same_set))
    dropped = [k for k in ks if k > kmax]
    if dropped:  # the report says so; a warning only for k's the caller chose (the defaults fit large archives)
        kept = tuple(k for k in ks if k <= kmax) or (kmax,)
        if set(ks) != set(DEFAULT_KS):
            warnings.warn(f"k={dropped} exceed the {kmax} archive items a query can retrieve; evaluated at "
                          f"k={list(kept)}", stacklevel=2)
        ks = kept
    mods = list(queries.vectors)
    out: dict = {"ks": list(ks), "ks_dropped": dropped, "queries": len(queries), "archive": len(archive),
                 "directions": {}}
    for s, t in directions(mods):
        ranked = search(archive.vectors[t], queries.query_vectors(s, t), kmax, exclude_self=same_set and s == t)
        metrics = retrieval_metrics(ranked, queries.labels, archive.labels, ks)
        pair_ks = tuple(k for k in ks if k <= len(queries))
        if s != t and pair_ks:
            paired = search(queries.vectors[t], queries.query_vectors(s, t), max(pair_ks))
            pair = retrieval_metrics(paired, queries.labels, queries.labels, pair_ks,
                                     query_ids=queries.ids, archive_ids=queries.ids)
            metrics.update({key: v for key, v in pair.items() if key.startswith("pair_recall")})
        out["directions"][f"{s}->{t}"] = metrics
    return out


def evaluate(checkpoint: str | Path, data: str | Path, ks=DEFAULT_KS, query_split: str = "val",
             archive_split: str = "test", batch_size: int = 64, num_workers: int = 2,
             embed_from: str | None = None, split_file: str | None = None,
             rgb_root: str | None = None) -> dict | None:
    """Embed both splits of ``data`` with ``checkpoint`` and evaluate.

    ``data`` is read as the checkpoint was trained: a BigEarthNet GeoTIFF root or packed store (with
    the training run's split file and band setting), or the fMoW-Sentinel root of an fMoW run.
    ``embed_from`` replaces the run's ``model.embed_from`` (e.g. ``prediction`` for an X-JEPA run);
    ``split_file`` and ``rgb_root`` its ``data.split_file`` and ``data.fmow_rgb_root``. Under torchrun (process
    group initialised) every rank embeds its shard of both splits and rank 0 alone gets the report (others: None).
    """
    import torch

    from xjepa_kit.config import config_from_dict
    from xjepa_kit.embeddings import embed, load_model
    from xjepa_kit.train_data import build_dataset, point_at_data

    checked_ks(ks)  # before the minutes of embedding
    model, meta = load_model(checkpoint, embed_from=embed_from)
    cfg = config_from_dict(meta.pop("config"))
    point_at_data(cfg, data, split_file, rgb_root)
    q = embed(model, build_dataset(cfg, split=query_split), batch_size, num_workers)
    same = query_split == archive_split
    a = q if same else embed(model, build_dataset(cfg, split=archive_split), batch_size, num_workers)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank's share is gathered; rank 0 alone evaluates (others: None)
        if torch.distributed.get_rank() != 0:
            return None
    report = evaluate_embeddings(q, a, ks, same_set=same)
    report.update({"model": meta, "data": str(data), "query_split": query_split, "archive_split": archive_split})
    return report


def markdown_table(report: dict, k: int = 10) -> str:
    """The four directions at ``k`` as a markdown table (metrics in %, as papers print them).

    A ``k`` the report lacks (dropped for a small archive) gives way to the largest evaluated one below it
    (or the smallest evaluated one).
    """
    ks = report.get("ks") or [k]
    k = k if k in ks else max((x for x in ks if x <= k), default=min(ks))
    cols = [c.format(k=k) for c in TABLE_KEYS]
    lines = ["| direction | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for name, m in report["directions"].items():
        cells = [f"{100 * m[c]:.2f}" if c in m else "–" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: dict, out: str | Path, k: int = 10) -> tuple[Path, Path]:
    """``out`` (JSON) and the markdown table beside it (``.md``)."""
    out, md = report_paths(out)
    atomic_write_text(out, json.dumps(report, indent=1))
    atomic_write_text(md, f"# Retrieval report\n\n{markdown_table(report, k)}\n")
    return out, md


def report_paths(out: str | Path) -> tuple[Path, Path]:
    """The JSON report ``out`` and its markdown table beside it (``.md``); refused where the two would be one file."""
    out = Path(out)
    if out.suffix.lower() == ".md":
        raise XJepaError(f"--out {out} names the JSON report, and its markdown table is written beside it as .md: "
                         f"give {out.with_suffix('.json')} instead")
    return out, out.with_suffix(".md")
