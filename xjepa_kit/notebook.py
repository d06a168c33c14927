"""Notebook support: the FAST switch (read here only), default sizes, and idempotent data/run preparation.

``XJEPA_FAST=1`` shrinks the data and the training so all notebooks run in a few minutes on 2 CPU
cores (used under nbval); unset, the notebooks run the full embedded default.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from xjepa_kit.errors import XJepaError


def fast_mode() -> bool:
    """True when ``XJEPA_FAST`` is set to 1 / true / yes."""
    return os.environ.get("XJEPA_FAST", "").strip().lower() in ("1", "true", "yes")


@dataclass
class NotebookSettings:
    """Where data and runs live, and how big they are, for FAST or full mode.

    ``user_data``: the notebooks' ``DATA_ROOT`` (a BigEarthNet v1, v2/reBEN or BEN-14K root, or a packed
    store); None for the embedded default (real sample + synthetic set).
    """

    fast: bool
    data_dir: Path
    runs_dir: Path
    n_synthetic: int
    steps: int
    overrides: list[str] = field(default_factory=list)
    user_data: Path | None = None

    @property
    def dataset(self) -> Path:
        """What training and evaluation read: ``DATA_ROOT`` when set, else the packed synthetic store."""
        return self.user_data if self.user_data is not None else self.store

    @property
    def browse(self) -> Path:
        """What notebook 01 shows beside the real sample: ``DATA_ROOT`` when set, else the synthetic GeoTIFF root."""
        return self.user_data if self.user_data is not None else self.synthetic

    @property
    def sample(self) -> Path:
        return self.data_dir / "sample"

    @property
    def synthetic(self) -> Path:
        return self.data_dir / "synthetic"

    @property
    def store(self) -> Path:
        return self.data_dir / "synthetic.packed"


def settings(data: str | Path | None = None, root: str | Path | None = None,
             fast: bool | None = None) -> NotebookSettings:
    """Defaults for the notebooks.

    ``data``: the notebooks' ``DATA_ROOT``: your dataset root or packed store, read instead of the synthetic
    set (runs then go to their own folder, ``runs/<mode>-<name>-<hash of the path>``); ``root``: the
    repository (the notebooks' parent folder).
    """
    root = Path(root) if root is not None else Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
    fast = fast_mode() if fast is None else fast
    if fast:  # the same model on less data and fewer steps: the point is that every cell runs
        s = NotebookSettings(True, root / "data" / "fast", root / "runs" / "fast", 240, 30,
                             ["data.batch_size=16", "data.num_workers=0", "train.warmup_steps=5", "train.log_every=5"])
    else:
        s = NotebookSettings(False, root / "data", root / "runs" / "notebooks", 3000, 300, ["data.num_workers=2"])
    if data is not None:
        user = Path(data).expanduser().resolve()
        if not user.is_dir():
            raise XJepaError(f"DATA_ROOT {user} is not a folder; set it to a BigEarthNet (v1, v2/reBEN) or BEN-14K "
                             "root or a packed store (xjepa data pack), or to None for the embedded default")
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", user.name) + "-" + hashlib.sha1(str(user).encode()).hexdigest()[:8]
        s.user_data, s.runs_dir = user, s.runs_dir.with_name(f"{s.runs_dir.name}-{tag}")
    return s


def prepare_data(s: NotebookSettings, progress: bool = False) -> NotebookSettings:
    """Extract the real sample, write the synthetic set and pack it, each only if missing.

    With ``DATA_ROOT`` set (``s.user_data``) only the real sample is extracted: the synthetic set is not needed.
    """
    from xjepa_kit import data

    data.extract_sample(s.sample)
    if s.user_data is not None:
        return s
    if not (s.synthetic / "splits.csv").exists():
        data.make_synthetic(s.synthetic, n=s.n_synthetic, seed=0, overwrite=True)
    if not data.is_packed_store(s.store):
        data.pack(s.synthetic, s.store, overwrite=True, progress=progress, workers=0 if s.fast else 2)
    return s


def ensure_trained(s: NotebookSettings, name: str = "xjepa", extra: list[str] | tuple[str, ...] = (),
                   progress: bool = True) -> Path:
    """Train ``tiny_cpu`` (+ ``extra`` overrides) on ``s.dataset`` into ``s.runs_dir/<name>`` unless done."""
    from xjepa_kit.compare import run_finished
    from xjepa_kit.config import load_config
    from xjepa_kit.train import train

    prepare_data(s)
    cfg = load_config("tiny_cpu", [f"data.root={s.dataset}", f"train.steps={s.steps}", *s.overrides, *extra])
    cfg.name = name
    run = s.runs_dir / name
    if not run_finished(run, cfg.train.steps, cfg):
        train(cfg, run, resume=(run / "last.pt").exists(), progress=progress)
    return run / "last.pt"
