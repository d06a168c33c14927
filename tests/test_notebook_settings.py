"""The notebooks' first cell: DATA_ROOT reaches training and evaluation; the embedded default otherwise."""

from pathlib import Path

import pytest
from helpers import SMALL_RUN
from xjepa_kit.compare import run_finished
from xjepa_kit.config import load_config
from xjepa_kit.errors import XJepaError
from xjepa_kit.notebook import ensure_trained, prepare_data, settings


def test_default_settings_read_the_packed_synthetic_store(tmp_path):
    s = settings(root=tmp_path, fast=True)
    assert s.user_data is None
    assert s.dataset == tmp_path / "data" / "fast" / "synthetic.packed"
    assert s.browse == tmp_path / "data" / "fast" / "synthetic"
    assert s.runs_dir == tmp_path / "runs" / "fast"
    assert settings(root=tmp_path, fast=False).runs_dir == tmp_path / "runs" / "notebooks"


def test_a_missing_data_root_is_one_clear_error(tmp_path):
    with pytest.raises(XJepaError, match=r"DATA_ROOT .*nowhere.* is not a folder.*None for the embedded default"):
        settings(tmp_path / "nowhere", root=tmp_path, fast=True)


def test_data_root_is_what_the_notebooks_train_on(synth_v1, tmp_path, capsys):
    s = settings(synth_v1, root=tmp_path, fast=True)
    assert s.dataset == s.browse == synth_v1.resolve()
    # runs of another dataset get their own folder, distinct per path, so no run is reused across datasets
    assert s.runs_dir.parent == tmp_path / "runs" and s.runs_dir.name.startswith(f"fast-{synth_v1.name}-")
    assert s.runs_dir != settings(tmp_path, root=tmp_path, fast=True).runs_dir
    prepare_data(s)
    assert len(list((s.sample / "BigEarthNet-v1.0").iterdir())) == 6  # the six real pairs are still extracted
    assert not s.synthetic.exists() and not s.store.exists()  # no synthetic set written for nothing
    s.steps, s.overrides = 2, [*SMALL_RUN, "train.warmup_steps=1", "train.log_every=1"]
    ckpt = ensure_trained(s, "xjepa")
    assert ckpt == s.runs_dir / "xjepa" / "last.pt" and ckpt.exists()
    assert Path(load_config(ckpt.parent / "config.yaml").data.root) == synth_v1.resolve()
    assert run_finished(ckpt.parent, 2)
    assert "xjepa: trained to step 2 in" in capsys.readouterr().out  # the summary line a stored notebook keeps
