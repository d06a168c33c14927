"""Checkpoints: atomic writes (temp file + rename), ``torch.load(weights_only=True)``, model checks.

A checkpoint is plain data: tensors, numbers, strings, lists and dicts (never pickled code):
``model`` (state dict), ``optimizer``, ``step``, ``rng`` (torch / CUDA / numpy / python states),
``config`` (the resolved config as a dict), ``signature`` (method, modalities, parameter shapes), ``finished``,
``world`` (the number of processes that trained it).
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xjepa_kit.atomic import temp_beside
from xjepa_kit.errors import XJepaError

FORMAT = "xjepa-checkpoint-1"


class CheckpointError(XJepaError):
    """A checkpoint that is missing, unreadable, or of another model."""


def model_signature(model: nn.Module, method: str) -> dict:
    """What must match to load weights: method, modalities, and a hash of all parameter shapes."""
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(model.state_dict().items()))
    return {"method": method, "modalities": list(getattr(model, "modalities", ())),
            "shapes": hashlib.sha256(shapes.encode()).hexdigest()[:16]}


def rng_state() -> dict:
    """All random-number-generator states as tensors and numbers (weights_only-safe)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
             "numpy_pos": int(np_state[2]), "python": [list(x) if isinstance(x, tuple) else x
                                                       for x in random.getstate()]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically: a crash leaves the previous file intact."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; clear errors for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; train one with `xjepa pretrain`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not our checkpoint"
        raise CheckpointError(f"{path}: not a readable xjepa checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an xjepa-kit checkpoint (format {FORMAT} expected)")
    return ckpt


def check_compatible(ckpt: dict, model: nn.Module, method: str, path: str | Path) -> None:
    """Refuse a checkpoint whose model differs from ``model`` (method, modalities or shapes)."""
    want, have = model_signature(model, method), ckpt.get("signature", {})
    if want != have:
        diff = ", ".join(f"{k}: checkpoint {have.get(k)!r} vs config {want[k]!r}" for k in want if have.get(k) != want[k])
        raise CheckpointError(f"{path}: checkpoint of another model ({diff}); use the config it was trained "
                              "with (saved beside it as config.yaml) or another checkpoint")


# Keys a resumed run may change: how long and how it runs, where the data lies, not what it learns.
RESUMABLE_KEYS = frozenset({
    "name", "train.steps", "train.time_limit_s", "train.threads", "train.compile", "train.compile_mode",
    "train.check_finite_every", "train.log_every", "train.ckpt_every", "train.tensorboard",
    "data.root", "data.fmow_rgb_root", "data.split_file", "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.on_error",
})


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def config_changes(saved: dict, now: dict, may_differ: frozenset[str]) -> list[str]:
    """``"key: saved -> now"`` for every (dotted) config key outside ``may_differ`` whose value differs.

    Both configs are read through :func:`~xjepa_kit.config.config_from_dict` first, so a run saved before a key
    existed compares with that key's default.
    """
    from xjepa_kit.config import config_from_dict, to_dict

    a, b = (_flat(to_dict(config_from_dict(c))) for c in (saved, now))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in may_differ and a.get(k) != b.get(k)]


def check_resume_config(ckpt: dict, config: dict, path: str | Path) -> None:
    """Refuse to resume with a config that changes what the run learns (lr, losses, masks, batch size ...);
    :data:`RESUMABLE_KEYS` may change. ``config``: the new resolved config as a dict (``to_dict``)."""
    changed = config_changes(ckpt.get("config", {}), config, RESUMABLE_KEYS)
    if changed:
        raise CheckpointError(f"{path}: --resume would continue this run with another config ({'; '.join(changed)}); "
                              "resume with the config saved beside it (config.yaml), or start a new run in another --out")
