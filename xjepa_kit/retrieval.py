"""faiss indexes over L2-normalised embeddings (inner product), saved and loaded with their metadata.

``RetrievalIndex.build(vectors, kind="flat"|"hnsw"|"ivfpq", meta=...)``; ``index.search(queries, k,
expect=...)`` refuses queries of another dimension, modality or checkpoint with a clear error.
An index file is one ``.npz`` (serialised faiss index + ids + metadata), written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from xjepa_kit.atomic import atomic_savez, load_savez
from xjepa_kit.errors import XJepaError

KINDS = ("flat", "hnsw", "ivfpq")


class IndexMismatchError(XJepaError):
    """A query that does not belong to this index (dimension, modality or model)."""


def _faiss_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    n, d = vectors.shape
    if kind == "flat":
        return faiss.IndexFlatIP(d)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
        return index
    if kind == "ivfpq":
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        m = next(m for m in (64, 48, 32, 24, 16, 12, 8, 4, 2, 1) if d % m == 0 and m <= d)
        if n < 39 * nlist or n < 256:
            raise XJepaError(f"an ivfpq index needs at least {max(39 * nlist, 256)} vectors to train, got {n}; "
                             "use kind='flat' or 'hnsw' for small archives")
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(16, nlist)
        return index
    raise XJepaError(f"unknown index kind {kind!r}; choose one of {KINDS}")


def order_ties_by_row(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal scores in archive-row order (scores [Q, k] descending, rows [Q, k]).

    faiss returns tied items in an order that depends on k, so P@1 of one query could change with the largest k
    asked for; sorted by row, a top-k list is the first k of any longer one (where it holds the same items) and
    agrees with a stable sort of the scores (the explorer's).
    """
    tied = np.flatnonzero((scores[:, 1:] == scores[:, :-1]).any(1)) if scores.shape[1] > 1 else []
    if len(tied):
        order = np.lexsort((rows[tied], -scores[tied]), axis=1)
        scores, rows = scores.copy(), rows.copy()
        scores[tied] = np.take_along_axis(scores[tied], order, 1)
        rows[tied] = np.take_along_axis(rows[tied], order, 1)
    return scores, rows


class RetrievalIndex:
    """A faiss index with ``ids`` [N] and ``meta`` (``dim``, ``kind``, ``modality``, ``checkpoint_hash`` ...)."""

    def __init__(self, index: faiss.Index, ids: np.ndarray, meta: dict) -> None:
        self.index, self.ids, self.meta = index, np.asarray(ids), meta

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray | None = None, kind: str = "flat",
              meta: dict | None = None) -> RetrievalIndex:
        """Index ``vectors`` [N, D] (L2-normalised float32; inner product = cosine similarity)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise XJepaError(f"index vectors must be a non-empty [N, D] array, got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise XJepaError("index vectors contain NaN or inf; re-embed with a healthy checkpoint")
        off = np.abs(np.linalg.norm(vectors, axis=1) - 1) > 1e-3  # inner product is cosine only on unit vectors
        if off.any():
            row = int(off.argmax())
            raise XJepaError(f"index vectors must be L2-normalised (DESIGN 7): row {row} has norm "
                             f"{np.linalg.norm(vectors[row]):.4g}; divide each row by its norm (xjepa embed does)")
        index = _faiss_index(vectors, kind)
        index.add(vectors)
        ids = np.arange(len(vectors)).astype(str) if ids is None else np.asarray(ids).astype(str)
        return cls(index, ids, {**(meta or {}), "dim": int(vectors.shape[1]), "kind": kind, "count": len(vectors)})

    @classmethod
    def from_embeddings(cls, emb, modality: str, kind: str = "flat") -> RetrievalIndex:
        """Index one modality of an :class:`~xjepa_kit.embeddings.Embeddings`, keeping its model metadata."""
        if modality not in emb.vectors:
            raise XJepaError(f"no {modality!r} vectors in these embeddings; they hold {sorted(emb.vectors)}")
        meta = {k: emb.meta[k] for k in ("checkpoint", "checkpoint_hash", "method", "step") if k in emb.meta}
        return cls.build(emb.vectors[modality], emb.ids, kind=kind, meta={**meta, "modality": modality})

    def search_embeddings(self, emb, modality: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search with the ``modality`` items of ``emb`` as queries [Q, D] (through the predictor towards the
        index's modality where ``emb`` holds such vectors); refused unless made by the index's checkpoint."""
        expect = {"checkpoint_hash": emb.meta["checkpoint_hash"]} if "checkpoint_hash" in emb.meta else None
        return self.search(emb.query_vectors(modality, self.meta.get("modality", modality)), k, expect=expect)

    def __len__(self) -> int:
        return self.index.ntotal

    def check(self, dim: int, expect: dict | None = None) -> None:
        """Raise :class:`IndexMismatchError` unless ``dim`` and every key of ``expect`` match the metadata."""
        if dim != self.meta["dim"]:
            raise IndexMismatchError(f"query dimension {dim} does not match the index dimension {self.meta['dim']} "
                                     f"(index built from {self.meta.get('checkpoint', 'unknown model')})")
        for key, value in (expect or {}).items():
            if key in self.meta and self.meta[key] != value:
                raise IndexMismatchError(f"query {key} {value!r} does not match the index's {self.meta[key]!r}; "
                                         "embed queries with the model the index was built from")

    def search(self, queries: np.ndarray, k: int, expect: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` archive rows per query -> (scores float32 [Q, k], indices int64 [Q, k])."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        self.check(queries.shape[1], expect)
        if k < 1:
            raise XJepaError(f"k must be at least 1, got {k}")
        if not np.isfinite(queries).all():
            bad = np.flatnonzero(~np.isfinite(queries).all(1))
            raise XJepaError(f"{len(bad)} query vector(s) hold NaN or inf (first: row {bad[0]}); embed them again")
        k = min(k, len(self))
        return order_ties_by_row(*self.index.search(queries, k))

    def save(self, path: str | Path) -> Path:
        """One ``.npz`` with the serialised index, ids and metadata, written atomically."""
        return atomic_savez(path, meta=self.meta, index=faiss.serialize_index(self.index), ids=self.ids.astype(str))

    @classmethod
    def load(cls, path: str | Path) -> RetrievalIndex:
        """Read an index written by :meth:`save`."""
        return load_savez(path, "index", lambda z, meta: cls(faiss.deserialize_index(z["index"]), z["ids"], meta))
