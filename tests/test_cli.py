"""The `xjepa data …` and `xjepa demo` commands, end to end, and their one-line errors."""

import subprocess
import sys

import pandas as pd
import pytest

from xjepa_kit.cli import main, parse_args
from xjepa_kit.data import PackedPairs


def test_synth_pack_check_subset_commands(tmp_path, capsys):
    root, store = tmp_path / "syn", tmp_path / "store"
    assert main(["data", "synth", "--out", str(root), "--n", "30", "--seed", "2", "--format", "v2"]) == 0
    assert "30 pairs" in capsys.readouterr().out
    assert main(["data", "check", str(root)]) == 0
    assert "no problems" in capsys.readouterr().out
    assert main(["data", "pack", str(root), "--out", str(store), "--workers", "0"]) == 0
    assert len(PackedPairs(store)) == 30
    assert main(["data", "subset", str(root), "--out", str(tmp_path / "sub.csv"), "--n", "12"]) == 0
    assert len(pd.read_csv(tmp_path / "sub.csv")) == 12


def test_user_errors_are_one_line_without_traceback(tmp_path):
    cmd = [sys.executable, "-m", "xjepa_kit", "data", "check", str(tmp_path / "missing")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1 and "not found" in res.stdout
    cmd = [sys.executable, "-m", "xjepa_kit", "data", "pack", str(tmp_path / "missing"), "--out", str(tmp_path / "s")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and "missing" in res.stderr


def test_an_error_in_a_loader_worker_is_still_one_line(small_v1, tmp_path):
    band = next(small_v1.rglob("*_B8A.tif"))
    band.unlink()
    cmd = [sys.executable, "-m", "xjepa_kit", "data", "pack", str(small_v1), "--out", str(tmp_path / "s"),
           "--workers", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "worker" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("xjepa:")]  # the rest: tqdm's bar
    assert len(errors) == 1 and band.name in errors[0] and "file is missing" in errors[0], res.stderr
    assert not (tmp_path / "s").exists()  # nothing half-written


def test_overrides_may_stand_before_and_after_out():
    args = parse_args(["pretrain", "--config", "tiny_cpu", "train.steps=5", "--out", "runs/x", "loss.psa=0", "--resume"])
    assert args.overrides == ["train.steps=5", "loss.psa=0"] and args.out == "runs/x" and args.resume
    args = parse_args(["ablate", "--data", "d", "train.steps=3", "--out", "o", "loss.vicreg=0", "--no-progress"])
    assert args.overrides == ["train.steps=3", "loss.vicreg=0"]
    with pytest.raises(SystemExit):
        parse_args(["pretrain", "--out", "runs/x", "--bogus"])  # an unknown option is still refused
    with pytest.raises(SystemExit):
        parse_args(["embed", "--checkpoint", "c", "--data", "d", "--out", "e.npz", "train.steps=3"])  # takes none


def test_layout_can_be_named_when_it_cannot_be_detected(synth_v2, tmp_path, capsys):
    assert main(["data", "check", str(synth_v2), "--layout", "v2"]) == 0
    for d in ("BigEarthNet-S2/some_folder", "BigEarthNet-S1"):
        (tmp_path / d).mkdir(parents=True)
    capsys.readouterr()
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "cannot tell the layout" in out and "--layout v1|v2|ben14k" in out


def test_ablate_and_demo_refuse_torchrun(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for cmd in (["ablate", "--data", str(tmp_path), "--out", str(tmp_path / "a")], ["demo", "--out", str(tmp_path / "d")]):
        assert main(cmd) == 2
        assert f"xjepa {cmd[0]} trains and evaluates its runs one after another in one process" in capsys.readouterr().err
