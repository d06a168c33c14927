"""Training: run folder contents, exact resume, non-finite stop, foreign checkpoints, skip-on-error, DDP."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers import free_port
from xjepa_kit.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from xjepa_kit.cli import main
from xjepa_kit.config import load_config
from xjepa_kit.data import BigEarthNetMM, pack
from xjepa_kit.errors import DataError, XJepaError
from xjepa_kit.train import NonFiniteLossError, param_groups, schedules, shutdown_distributed, train

SMALL = ["model.encoder.embed_dim=48", "model.encoder.depth=2", "model.encoder.num_heads=2",
         "model.predictor.embed_dim=32", "model.predictor.depth=1", "model.predictor.num_heads=2",
         "model.projector_dim=32", "data.batch_size=8", "data.num_workers=0", "train.warmup_steps=2",
         "train.log_every=1", "train.threads=1"]


def _cfg(root, *extra):
    return load_config("tiny_cpu", SMALL + [f"data.root={root}", *extra])


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_cli_pretrain_writes_config_metrics_and_checkpoint(synth_v1, tmp_path):
    run = tmp_path / "run"
    args = ["pretrain", "--config", "tiny_cpu", *SMALL, f"data.root={synth_v1}", "train.steps=6",
            "train.ckpt_every=3", "--out", str(run), "--no-progress"]
    assert main(args) == 0
    assert load_config(run / "config.yaml").train.steps == 6
    rows = _rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "l2", "psa", "vicreg", "lr", "pairs_per_s"} <= set(rows[0])
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["step"] == 6 and ckpt["config"]["train"]["steps"] == 6
    assert (run / "ckpt_000003.pt").exists() and not list(run.glob(".last.pt*"))
    assert main(args) == 2  # refuses to overwrite a run without --resume
    # --resume without --config continues with the run's own config.yaml (here: not the tiny_cpu defaults)
    assert main(["pretrain", "--out", str(run), "--resume", "train.steps=8", "--no-progress"]) == 0
    assert [r["step"] for r in _rows(run)] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert load_config(run / "config.yaml").model.encoder.embed_dim == 48


def test_resume_continues_exactly(synth_v1, tmp_path):
    cfg = _cfg(synth_v1, "train.steps=8", "train.ckpt_every=4", "model.encoder.drop_path=0.1")
    straight = train(cfg, tmp_path / "straight", progress=False)
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copy(tmp_path / "straight" / "ckpt_000004.pt", resumed_dir / "last.pt")  # as if stopped at step 4
    shutil.copy(tmp_path / "straight" / "metrics.jsonl", resumed_dir / "metrics.jsonl")  # rows 5-8 logged too
    with open(resumed_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 9, "loss": 1.2')  # and a row cut short by the kill
    resumed = train(cfg, resumed_dir, resume=True, progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert [r["step"] for r in _rows(resumed_dir)] == [1, 2, 3, 4, 5, 6, 7, 8]  # no duplicated steps
    assert _rows(resumed_dir)[-1]["loss"] == pytest.approx(_rows(tmp_path / "straight")[-1]["loss"], rel=1e-5)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(synth_v1, tmp_path):
    cfg = _cfg(synth_v1, "train.steps=30", "train.ckpt_every=1", "train.lr=1e30", "train.warmup_steps=0",
               "train.clip_grad=0")
    with pytest.raises(NonFiniteLossError, match="non-finite (loss|gradients).*last.pt"):
        train(cfg, tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert 1 <= ckpt["step"] < 30
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_checkpoint_of_another_model_is_refused(synth_v1, tmp_path):
    train(_cfg(synth_v1, "train.steps=2"), tmp_path / "run", progress=False)
    wider = _cfg(synth_v1, "train.steps=4", "model.encoder.embed_dim=64")
    with pytest.raises(CheckpointError, match="another model.*shapes"):
        train(wider, tmp_path / "run", resume=True, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_resume_refuses_another_config_and_leaves_the_run_untouched(synth_v1, tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(synth_v1, "train.steps=2"), run, progress=False)
    saved, rows = (run / "config.yaml").read_bytes(), (run / "metrics.jsonl").read_bytes()
    with pytest.raises(CheckpointError, match="another model"):
        train(_cfg(synth_v1, "train.steps=4", "model.method=contrastive"), run, resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"another config \(loss\.psa: 1\.0 -> 0\.0; train\.lr: 0\.001 -> 0\.01\)"):
        train(_cfg(synth_v1, "train.steps=4", "train.lr=0.01", "loss.psa=0"), run, resume=True, progress=False)
    assert (run / "config.yaml").read_bytes() == saved and (run / "metrics.jsonl").read_bytes() == rows
    # longer, on moved data, with other loader workers: the same run, continued
    shutil.copytree(synth_v1, tmp_path / "moved")
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["world"] == 1
    save_checkpoint(run / "last.pt", {**ckpt, "world": 2})  # as if trained on two processes
    capsys.readouterr()
    train(_cfg(tmp_path / "moved", "train.steps=4", "data.num_workers=1"), run, resume=True, progress=False)
    assert [r["step"] for r in _rows(run)] == [1, 2, 3, 4] and load_checkpoint(run / "last.pt")["step"] == 4
    assert "trained on 2 processes and resumes on 1: the global batch changes from 16 to 8" in capsys.readouterr().out


def test_an_image_size_other_than_the_patches_is_one_clear_error(synth_v1, tmp_path):
    with pytest.raises(XJepaError, match=r"'model\.encoder\.img_size' is 60, but BigEarthNet patches are 120 x 120"):
        train(_cfg(synth_v1, "train.steps=2", "model.encoder.img_size=60"), tmp_path / "run", progress=False)


def test_resume_accepts_moved_data_files():
    from xjepa_kit.checkpoint import check_resume_config
    from xjepa_kit.config import to_dict

    old = {"config": to_dict(load_config("fmow_vitb", ["data.split_file=/old/split.csv"]))}
    moved = load_config("fmow_vitb", ["data.root=/new/s", "data.fmow_rgb_root=/new/rgb", "data.split_file=/new/split.csv",
                                      "train.steps=9000", "data.num_workers=0"])
    check_resume_config(old, to_dict(moved), "last.pt")  # where the data lies is not what the run learns
    with pytest.raises(CheckpointError, match=r"data\.batch_size: 64 -> 8"):
        check_resume_config(old, to_dict(load_config("fmow_vitb", ["data.batch_size=8"])), "last.pt")


def test_the_summary_line_names_the_step_reached(synth_v1, tmp_path, capsys):
    train(_cfg(synth_v1, "train.steps=50", "train.log_every=20", "train.time_limit_s=0.001"), tmp_path / "run")
    out = capsys.readouterr().out
    assert "tiny_cpu: trained to step 1 in" in out and "time limit" in out  # stopped before any logged row
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 1


def test_a_new_run_starts_a_clean_metrics_file(synth_v1, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 99.0}\n')  # an attempt that never checkpointed
    train(_cfg(synth_v1, "train.steps=2"), run, progress=False)
    assert [r["step"] for r in _rows(run)] == [1, 2] and all(r["loss"] != 99.0 for r in _rows(run))


def test_on_error_skip_logs_and_continues(tmp_path, caplog):
    from xjepa_kit.data import make_synthetic

    root = make_synthetic(tmp_path / "data", n=12, seed=1)
    ds = BigEarthNetMM(root, split="train")
    ds.s2_paths(0)["B04"].unlink()
    with pytest.raises(DataError, match="B04"):
        train(_cfg(root, "train.steps=3", "data.batch_size=4"), tmp_path / "strict", progress=False)
    with caplog.at_level("WARNING"):
        train(_cfg(root, "train.steps=3", "data.batch_size=4", "data.on_error=skip"), tmp_path / "lax", progress=False)
    assert "B04" in caplog.text and len(_rows(tmp_path / "lax")) == 3


def test_trains_from_a_packed_store_and_random_is_untrained(synth_v1, tmp_path):
    store = pack(synth_v1, tmp_path / "store", progress=False, workers=0)
    train(_cfg(store, "train.steps=2"), tmp_path / "packed", progress=False)
    assert len(_rows(tmp_path / "packed")) == 2
    train(_cfg(store, "model.method=random"), tmp_path / "random", progress=False)
    assert load_checkpoint(tmp_path / "random" / "last.pt")["step"] == 0
    train(_cfg(store, "model.method=contrastive", "train.steps=2"), tmp_path / "con", progress=False)
    assert {"loss", "infonce", "temperature"} <= set(_rows(tmp_path / "con")[0])


def _ddp_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    cfg = _cfg(root, "train.steps=4", "data.batch_size=4")
    model = train(cfg, out, progress=False)
    torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    shutdown_distributed()


def test_ddp_two_cpu_processes_end_with_identical_weights(synth_v1, tmp_path):
    port = free_port()
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(synth_v1), str(tmp_path)), nprocs=2)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = train(_cfg(synth_v1, "model.method=random"), tmp_path / "init", progress=False).state_dict()
    assert not torch.equal(a["encoders.s1.vit.patch_embed.proj.weight"], start["encoders.s1.vit.patch_embed.proj.weight"])
    assert len(_rows(tmp_path)) == 4  # rank 0 alone logs


@pytest.mark.slow
def test_tiny_cpu_preset_loss_falls_over_a_few_hundred_steps(tmp_path):
    """The issue's acceptance run, shortened: tiny_cpu as shipped, 200 steps on a packed synthetic set."""
    from xjepa_kit.data import make_synthetic

    store = pack(make_synthetic(tmp_path / "syn", n=400, seed=0), tmp_path / "store", progress=False)
    cfg = load_config("tiny_cpu", [f"data.root={store}", "train.steps=200"])
    train(cfg, tmp_path / "run", progress=False)
    losses = [r["loss"] for r in _rows(tmp_path / "run")]
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:2]) / 2


def test_schedules_follow_the_design():
    cfg = load_config("tiny_cpu", ["train.steps=100", "train.warmup_steps=10", "train.lr=1e-3", "train.min_lr=1e-5",
                                   "train.ema=[0.996,1.0]"])  # I-JEPA's schedule (tiny_cpu shortens it)
    lr = [schedules(cfg, s)[0] for s in range(100)]
    assert lr[0] == pytest.approx(1e-4) and lr[9] == pytest.approx(1e-3)  # linear warm-up
    assert all(a >= b for a, b in zip(lr[9:], lr[10:])) and lr[-1] == pytest.approx(1e-5, rel=0.05)  # cosine down
    wd = [schedules(cfg, s)[1] for s in (0, 50, 100)]
    assert wd[0] == pytest.approx(0.04) and wd[2] == pytest.approx(0.4) and 0.04 < wd[1] < 0.4
    ema = [schedules(cfg, s)[2] for s in (0, 50, 100)]
    assert ema[0] == pytest.approx(0.996) and ema[1] == pytest.approx(0.998) and ema[2] == pytest.approx(1.0)


def test_weight_decay_only_on_matrices():
    from xjepa_kit.models import build_model

    model = build_model(load_config("tiny_cpu", SMALL))
    decay, no_decay = param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} >= {"queries", "predictors.s1->s2.mask_token"}
    assert not any(p is q for p in decay["params"] for q in model.targets.parameters())  # EMA: no optimiser


@pytest.mark.slow
def test_compiled_training_matches_eager(synth_v1, tmp_path):
    """`train.compile=true` (inductor, static shapes from mask.fixed_shapes) gives the eager run's losses (~2 min)."""
    extra = ("train.steps=4", "mask.fixed_shapes=true", "model.encoder.depth=1")
    train(_cfg(synth_v1, *extra), tmp_path / "eager", progress=False)
    train(_cfg(synth_v1, *extra, "train.compile=true"), tmp_path / "compiled", progress=False)
    eager, compiled = _rows(tmp_path / "eager"), _rows(tmp_path / "compiled")
    assert [r["step"] for r in compiled] == [1, 2, 3, 4]
    for a, b in zip(eager, compiled):
        assert b["loss"] == pytest.approx(a["loss"], rel=2e-3), (a, b)


def _ddp_skip_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    model = train(_cfg(root, "train.steps=4", "data.batch_size=2", "data.on_error=skip"), out, progress=False)
    torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    shutdown_distributed()


def test_ddp_ranks_skip_an_all_bad_batch_together(tmp_path):
    """Rank 0's first batch is unreadable: both ranks skip step 1 (else rank 1 waits in DDP forever)."""
    import time

    from xjepa_kit.data import make_synthetic
    from xjepa_kit.train_data import StepBatchSampler

    root = make_synthetic(tmp_path / "data", n=24, seed=3)
    ds = BigEarthNetMM(root, split="train")
    first = next(iter(StepBatchSampler(len(ds), 2, seed=0, steps=4, rank=0, world=2)))
    assert [s for _, s in first] == [0, 0]
    for index, _ in first:
        ds.s2_paths(index)["B04"].unlink()
    port = free_port()
    ctx = torch.multiprocessing.start_processes(_ddp_skip_worker, args=(2, port, str(root), str(tmp_path)),
                                                nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 240
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("DDP ranks went out of step after an all-bad batch (hung)")
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _rows(tmp_path)] == [2, 3, 4]  # step 1 skipped on both ranks
    assert load_checkpoint(tmp_path / "last.pt")["finished"]


def test_skipped_last_step_still_checkpoints_and_finishes(tmp_path):
    """An all-unreadable batch at the last step: no update, but the final checkpoint is written as finished."""
    from xjepa_kit.data import make_synthetic
    from xjepa_kit.train_data import StepBatchSampler

    root = make_synthetic(tmp_path / "data", n=24, seed=4)
    ds = BigEarthNetMM(root, split="train")
    batches = list(StepBatchSampler(len(ds), 2, seed=0, steps=4))
    assert len({i for b in batches for i, _ in b}) == 8  # one epoch: the four batches are disjoint
    for index, _ in batches[-1]:
        ds.s2_paths(index)["B04"].unlink()
    train(_cfg(root, "train.steps=4", "data.batch_size=2", "data.on_error=skip", "train.ckpt_every=2"),
          tmp_path / "run", progress=False)
    assert [r["step"] for r in _rows(tmp_path / "run")] == [1, 2, 3]
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["step"] == 4 and last["finished"] and (tmp_path / "run" / "ckpt_000002.pt").exists()


def _ddp_cli_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    import contextlib
    import io

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), CUDA_VISIBLE_DEVICES="")  # CPU ranks (gloo) on any machine
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["pretrain", "--config", "tiny_cpu", *SMALL, f"data.root={root}", "train.steps=4",
                     "data.batch_size=2", "--out", f"{out}/run", "--no-progress"])
    Path(f"{out}/rank{rank}.txt").write_text(f"{code}\n{err.getvalue()}")


def test_when_one_rank_fails_the_other_says_so_in_one_line(tmp_path):
    """Rank 0's first batch is unreadable: rank 0 names the file, rank 1 says another rank failed (no traceback)."""
    from xjepa_kit.data import make_synthetic
    from xjepa_kit.train_data import StepBatchSampler

    root = make_synthetic(tmp_path / "data", n=24, seed=3)
    ds = BigEarthNetMM(root, split="train")
    for index, _ in next(iter(StepBatchSampler(len(ds), 2, seed=0, steps=4, rank=0, world=2))):
        ds.s2_paths(index)["B04"].unlink()
    port = free_port()
    torch.multiprocessing.spawn(_ddp_cli_worker, args=(2, port, str(root), str(tmp_path)), nprocs=2)
    code0, err0 = (tmp_path / "rank0.txt").read_text().split("\n", 1)
    code1, err1 = (tmp_path / "rank1.txt").read_text().split("\n", 1)
    assert code0 == code1 == "2"
    assert "B04" in err0 and "Traceback" not in err0
    assert err1.strip().splitlines()[-1].startswith("xjepa: error: rank 1 lost its connection to another rank, which "
                                                    "most likely failed (its error would be printed above): ")
    assert "Traceback" not in err1
