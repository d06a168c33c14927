"""Atomic file writes (a temporary file beside the target, then renamed into place) and their reader."""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xjepa_kit.errors import XJepaError

T = TypeVar("T")


STALE_TEMP_S = 3600  # a temp file this old beside its target is a leftover of a killed write, not one in progress


def temp_beside(path: Path, suffix: str = "") -> tuple[int, str]:
    """A new temp file (fd, name) beside ``path`` for an atomic write, with the usual file mode (mkstemp alone
    makes it 0600). Leftovers of killed writes to the same target (``.NAME.*``, over an hour old) are removed
    first: a checkpoint's can be gigabytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in path.parent.glob(f".{glob.escape(path.name)}.*"):
        try:
            if now - old.stat().st_mtime > STALE_TEMP_S:
                old.unlink()
        except OSError:  # another process removed or replaced it meanwhile
            pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.chmod(tmp, _usual_mode())
    return fd, tmp


def atomic_savez(path: str | Path, meta: dict | None = None, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically; ``meta`` is stored as a JSON string under ``"meta"``."""
    path = Path(path)
    fd, tmp = temp_beside(path, ".npz")
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


def _usual_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives here: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the whole new one)."""
    path = Path(path)
    fd, tmp = temp_beside(path, ".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_savez(path: str | Path, kind: str, read: Callable[[Any, dict], T], missing_hint: str = "") -> T:
    """Read what :func:`atomic_savez` wrote: ``read(npz, meta)`` -> result, with one clear error
    naming the file when it is missing (``missing_hint`` says how to make it) or is not a ``kind`` file."""
    path = Path(path)
    if not path.exists():
        raise XJepaError(f"{path}: {kind} file not found{missing_hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return read(z, json.loads(str(z["meta"])))
    except (KeyError, ValueError, OSError, RuntimeError, zipfile.BadZipFile, EOFError) as err:  # truncated too
        raise XJepaError(f"{path}: not an xjepa {kind} file ({err})") from None
