"""Random inputs shared by the retrieval benchmarks (bench_metrics.py, bench_eval.py)."""

from __future__ import annotations

import numpy as np


def random_labels(rng: np.random.Generator, n: int, c: int = 19) -> np.ndarray:
    """Bool [n, c] multi-hot labels with 1..5 distinct classes per row, uniformly."""
    count = rng.integers(1, 6, n)
    order = np.argsort(rng.random((n, c)), axis=1)
    out = np.zeros((n, c), dtype=bool)
    np.put_along_axis(out, order, np.arange(c)[None, :] < count[:, None], axis=1)
    return out


def unit_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Random L2-normalised float32 [n, d] embeddings."""
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x
