"""Saved embeddings (:class:`Embeddings`) and checkpoint hashes, without torch.

Kept apart from :mod:`xjepa_kit.embeddings` (which embeds with a model) so that evaluating,
indexing and exploring saved embeddings does not import torch (about 0.7 GB of process memory
with a CUDA build). ``from xjepa_kit.embeddings import Embeddings`` still works.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xjepa_kit.atomic import atomic_savez, load_savez


@dataclass
class Embeddings:
    """``vectors[modality]`` float32 [N, D] (unit norm), ``ids`` [N] (S2 name / pair id), ``labels`` bool [N, C],
    ``bounds`` float64 [N, 4] (west, south, east, north), ``meta`` (checkpoint hash, method, dim, ...).

    ``cross["a->b"]`` [N, D] (``model.embed_from=prediction`` only): the items of modality a as queries for
    b items, embedded through the predictor P(a->b); :meth:`query_vectors` picks them for that direction.
    """

    vectors: dict[str, np.ndarray]
    ids: np.ndarray
    labels: np.ndarray
    bounds: np.ndarray
    meta: dict = field(default_factory=dict)
    cross: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = field(default="", compare=False)  # the file it was loaded from, for messages

    def __len__(self) -> int:
        return len(self.ids)

    def query_vectors(self, source: str, target: str) -> np.ndarray:
        """Query vectors [N, D] of the ``source`` items for searching ``target`` items."""
        return self.cross.get(f"{source}->{target}", self.vectors[source])

    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` atomically (temp file + rename)."""
        arrays = {f"vec_{m}": v for m, v in self.vectors.items()}
        arrays.update({f"cross_{d}": v for d, v in self.cross.items()})
        return atomic_savez(path, meta=self.meta, ids=self.ids.astype(str), labels=self.labels, bounds=self.bounds,
                            **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        """Read what :meth:`save` wrote; a clear error for anything else."""
        def read(z, meta: dict) -> Embeddings:
            vectors = {k[4:]: z[k] for k in z.files if k.startswith("vec_")}
            cross = {k[6:]: z[k] for k in z.files if k.startswith("cross_")}
            return cls(vectors, z["ids"], z["labels"], z["bounds"], meta, cross, source=str(path))

        return load_savez(path, "embeddings", read, "; create it with `xjepa embed`")


def check_comparable(queries: Embeddings, archive: Embeddings, modalities=None) -> None:
    """Raise :class:`~xjepa_kit.errors.XJepaError` unless ``archive`` can answer ``queries``: one checkpoint
    (where both record its hash), the ``modalities`` (default: the queries') in both, equal dimensions
    and one label set."""
    from xjepa_kit.errors import XJepaError

    if archive is queries:
        return
    q, a = (e.source or e.meta.get("checkpoint") or "in memory" for e in (queries, archive))
    both = f"queries ({q}) and archive ({a})"
    qh, ah = queries.meta.get("checkpoint_hash"), archive.meta.get("checkpoint_hash")
    if qh and ah and qh != ah:
        raise XJepaError(f"{both} were embedded by different checkpoints (hash {qh[:12]} vs {ah[:12]}); "
                         "embed both with one checkpoint")
    missing = [m for m in (modalities or queries.vectors) if m not in archive.vectors]
    if missing:
        raise XJepaError(f"{both}: the archive holds no {missing} vectors (queries: {sorted(queries.vectors)}, "
                         f"archive: {sorted(archive.vectors)}); embed both from one kind of dataset")
    for m in set(queries.vectors) & set(archive.vectors):
        if queries.vectors[m].shape[1] != archive.vectors[m].shape[1]:
            raise XJepaError(f"{both} have {m} vectors of dimension {queries.vectors[m].shape[1]} and "
                             f"{archive.vectors[m].shape[1]}; embed both with one checkpoint")
    if queries.labels.shape[1] != archive.labels.shape[1]:
        raise XJepaError(f"{both} use {queries.labels.shape[1]} and {archive.labels.shape[1]} classes; "
                         "embed both from one dataset")


def checkpoint_hash(path: str | Path) -> str:
    """Short SHA-256 of a checkpoint file: ties embeddings and indexes to the weights that made them."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]
