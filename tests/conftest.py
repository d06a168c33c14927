"""Shared tiny datasets, generated once per test session (never committed binaries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SMALL_RUN
from xjepa_kit.data import extract_sample, make_synthetic


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """The six real BigEarthNet-MM v1 example pairs of bigearthnet-common."""
    return extract_sample(tmp_path_factory.mktemp("sample") / "sample")


@pytest.fixture(scope="session")
def synth_v1(tmp_path_factory) -> Path:
    """120 synthetic pairs in the v1 layout (three scenes)."""
    return make_synthetic(tmp_path_factory.mktemp("synth") / "v1", n=120, seed=3, format="v1")


@pytest.fixture(scope="session")
def synth_v2(tmp_path_factory) -> Path:
    """The same 120 pairs (same seed) in the v2 / reBEN layout."""
    return make_synthetic(tmp_path_factory.mktemp("synth") / "v2", n=120, seed=3, format="v2")


@pytest.fixture()
def small_v1(tmp_path) -> Path:
    """A fresh 6-pair v1 set a test may damage."""
    return make_synthetic(tmp_path / "small", n=6, seed=11, format="v1")


@pytest.fixture(scope="session")
def small_checkpoint(synth_v1, tmp_path_factory) -> Path:
    """``last.pt`` of a 3-step SMALL_RUN X-JEPA on ``synth_v1`` (read only: embed and evaluate it)."""
    from xjepa_kit.config import load_config
    from xjepa_kit.train import train

    run = tmp_path_factory.mktemp("run")
    train(load_config("tiny_cpu", SMALL_RUN + [f"data.root={synth_v1}", "train.steps=3"]), run, progress=False)
    return run / "last.pt"
