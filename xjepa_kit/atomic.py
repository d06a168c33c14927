"""Atomic file writes: write a temporary file beside the target, then rename it into place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def atomic_savez(path: str | Path, meta: dict | None = None, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically; ``meta`` is stored as a JSON string under ``"meta"``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        if meta is not None:
            arrays["meta"] = np.array(json.dumps(meta))
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
