"""The training loop (DESIGN 6): single process or DDP under torchrun, exact resume, atomic checkpoints.

``train(cfg, out)`` writes ``out/config.yaml``, ``out/metrics.jsonl`` (one JSON object per logged
step: ``step``, ``loss``, each loss term, ``lr``, ``wd``, ``ema``, ``pairs_per_s``) and ``out/last.pt``
plus ``out/ckpt_<step>.pt`` every ``train.ckpt_every`` steps.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch
import torch.distributed as torch_dist
from torch import nn

from xjepa_kit.atomic import atomic_write_text
from xjepa_kit.checkpoint import (check_compatible, check_resume_config, load_checkpoint, model_signature, rng_state,
                                  save_checkpoint, set_rng_state)
from xjepa_kit.config import Config, save_config, to_dict
from xjepa_kit.errors import XJepaError
from xjepa_kit.models import build_model, count_parameters
from xjepa_kit.optim import build_optimizer, cosine, param_groups, schedules  # noqa: F401 - also used from here
from xjepa_kit.train_data import build_dataset, build_loader

log = logging.getLogger(__name__)


class NonFiniteLossError(XJepaError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; initialises the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, device


def shutdown_distributed(wait: bool = True) -> None:
    """Tear the process group down (no-op without one). ``wait``: a barrier first, so no rank closes its
    connections while another still finishes a collective with it (gloo then aborts the process)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        if wait:
            torch_dist.barrier()
        torch_dist.destroy_process_group()


def batch_to_device(batch: dict, device: torch.device, keys: tuple[str, ...]) -> dict:
    out = {k: batch[k].to(device, non_blocking=True) for k in keys}
    if "masks" in batch:
        m = batch["masks"]
        out["masks"] = type(m)(m.context.to(device, non_blocking=True), m.targets.to(device, non_blocking=True))
    return out


def _any_rank(flag: bool, world: int, device: torch.device | str = "cpu") -> bool:
    """True on every rank if ``flag`` is true on any (so all ranks take the same branch)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)  # NCCL reduces CUDA tensors only
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _finite_flag(loss: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
    """1.0 where the loss and the gradient norm are finite, else 0.0 (a 0-dim tensor on their device)."""
    return (torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)).to(torch.float32)


def raise_if_non_finite(pending: list[tuple[int, torch.Tensor, torch.Tensor]], world: int, last: Path | None,
                        now: int | None = None) -> None:
    """Read the finite flags of ``pending`` (step, flag, loss) on the host (one wait for the device) and raise
    :class:`NonFiniteLossError` naming the first bad step on every rank if any rank had one; else empty
    ``pending`` (those steps are checked)."""
    if not pending:
        return
    flags = torch.stack([f for _, f, _ in pending])
    if world > 1:
        torch_dist.all_reduce(flags, op=torch_dist.ReduceOp.MIN)
    bad = (flags < 1).nonzero()
    if len(bad):
        step, _, loss = pending[int(bad[0])]
        late = f"; stopped at step {now}" if now is not None else "; stopped"
        kept = f"the last good checkpoint {last} is kept" if last is not None and Path(last).exists() else \
            f"no checkpoint had been written yet{f' to {last}' if last is not None else ''}"
        raise NonFiniteLossError(
            f"non-finite loss or gradients at step {step} (loss {float(loss.detach()):.4g}){late}, and nothing was "
            f"written after it: {kept}. Lower train.lr, raise train.warmup_steps, use train.precision=fp32, "
            "or run `xjepa data check`")
    pending.clear()


def _raise_if_weights_non_finite(model: nn.Module, step: int, last: Path | None) -> None:
    """Before a checkpoint: every parameter and buffer finite (one wait for the device)."""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        raise NonFiniteLossError(f"the weights became non-finite by step {step} (the update overflowed); stopped "
                                 f"without writing {last}. Lower train.lr or raise train.warmup_steps")


def optimisation_step(forward, model: nn.Module, opt: torch.optim.Optimizer, inputs: dict, cfg: Config, step: int,
                      amp: bool, world: int = 1, last: Path | None = None,
                      check: bool = True) -> tuple[dict, tuple[float, float, float]]:
    """One step: schedules, forward (bf16 autocast if ``amp``), backward, clip, finite check, AdamW, EMA.

    ``check``: read the finite flag on the host now and raise :class:`NonFiniteLossError` before touching
    the weights. ``check=False`` never waits for the device: ``terms["finite"]`` (1.0 / 0.0) is left for
    the caller to read later (:func:`raise_if_non_finite`), and a non-finite step leaves the trained
    weights and AdamW's state unchanged (fused AdamW's ``found_inf``, as AMP's GradScaler uses it); buffers
    updated in the forward pass (PSA's running covariance) are not protected, so the run must still stop.
    Returns (loss terms, (lr, wd, ema)).
    """
    lr, wd, ema = schedules(cfg, step)
    opt.param_groups[0]["weight_decay"] = wd
    for g in opt.param_groups:
        g["lr"] = lr
    device_type = next(model.parameters()).device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
        terms = forward(inputs)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad if cfg.train.clip_grad > 0
                                         else float("inf"))  # inf: measure only
    finite = _finite_flag(terms["loss"], grad_norm)
    check = check or not opt.defaults.get("fused")  # only fused AdamW can skip a step on the device
    if check:
        raise_if_non_finite([(step + 1, finite, terms["loss"])], world, last)
    opt.found_inf = None if check else 1.0 - finite  # read by fused AdamW: 1 skips the update
    opt.step()
    model.ema_update(ema)  # after a skipped update the targets move towards unchanged, finite encoders
    terms["finite"] = finite
    return terms, (lr, wd, ema)


def train(cfg: Config, out: str | Path, resume: bool = False, progress: bool = True) -> nn.Module:
    """Train ``cfg`` into the run folder ``out``; returns the trained (unwrapped) model."""
    rank, world, device = setup_distributed()
    out = Path(out)
    last = out / "last.pt"
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg).to(device)
    sig = model_signature(model, cfg.model.method)
    if _any_rank(rank == 0 and last.exists() and not resume, world, device):  # every rank stops, not rank 0 alone
        raise XJepaError(f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
    opt = build_optimizer(model, cfg)
    start, ckpt = 0, None
    if resume:  # every check before anything in the run folder is written
        if not last.exists():
            raise XJepaError(f"{last}: nothing to resume; drop --resume to start a new run")
        ckpt = load_checkpoint(last, map_location=device)
        check_compatible(ckpt, model, cfg.model.method, last)
        check_resume_config(ckpt, to_dict(cfg), last)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
        if rank == 0 and ckpt.get("world", world) != world:
            print(f"warning: {last} was trained on {ckpt['world']} processes and resumes on {world}: the global batch "
                  f"changes from {ckpt['world'] * cfg.data.batch_size} to {world * cfg.data.batch_size} pairs and the "
                  "data order changes, so the run will not match a straight run", flush=True)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        if resume:
            _drop_metrics_after(out / "metrics.jsonl", start)
        else:
            (out / "metrics.jsonl").unlink(missing_ok=True)  # rows of an earlier attempt that never checkpointed
        counts = count_parameters(model)
        print("parameters: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in counts.items()), flush=True)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else None
    forward = ddp or model
    # Static shapes: mask counts are fixed (validated) and batches full; only data.on_error=skip can
    # shorten a batch, and each new batch size then compiles once more.
    if cfg.train.compile:
        forward = torch.compile(forward, dynamic=False, mode=cfg.train.compile_mode)
    graphs = cfg.train.compile and cfg.train.compile_mode == "reduce-overhead"
    amp = cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and device.type == "cuda")
    steps = 0 if cfg.model.method == "random" else cfg.train.steps

    # Finite flags not yet read on the host: reading one makes the host wait for the GPU, so on CUDA they
    # are read at log steps (which wait anyway) and before every checkpoint, never after a bad step.
    check_every = cfg.train.check_finite_every or (1 if device.type == "cpu" else cfg.train.log_every)
    pending: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def save(step: int, finished: bool = False) -> None:
        raise_if_non_finite(pending, world, last, step)
        _raise_if_weights_non_finite(model, step, last)  # finite gradients can still overflow a weight
        if rank == 0:
            payload = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "rng": rng_state(),
                       "config": to_dict(cfg), "signature": sig, "finished": finished, "world": world}
            save_checkpoint(last, payload)
            if cfg.train.ckpt_every and step % cfg.train.ckpt_every == 0 and 0 < step < steps:
                save_checkpoint(out / f"ckpt_{step:06d}.pt", payload)

    if start >= steps:
        save(max(start, steps), finished=True)
        return model
    dataset = build_dataset(cfg)
    grid = cfg.model.encoder.img_size // cfg.model.encoder.patch_size
    loader = build_loader(cfg, dataset, grid, model.uses_masks, start, rank, world, device.type == "cuda")
    batches = iter(loader)  # created before restoring RNG state, so a resumed run matches a straight one
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
    writer = _tensorboard(out) if cfg.train.tensorboard and rank == 0 else None
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=cfg.name, unit="step", dynamic_ncols=True)
    metrics = (out / "metrics.jsonl").open("a") if rank == 0 else None
    keys = tuple(model.modalities)
    model.train()
    t0, seen, row, done = time.perf_counter(), 0, None, start
    try:
        for batch in batches:
            step = batch["step"]
            skip = keys[0] not in batch  # every sample of this batch was unreadable (data.on_error=skip)
            if world > 1 and cfg.data.on_error == "skip":
                skip = _any_rank(skip, world, device)  # all ranks skip together, or DDP would wait forever
            done = step + 1
            if skip:  # no update and no metrics row; checkpoints and the time limit still apply below
                if rank == 0:
                    log.warning("step %d skipped: every sample of a batch was unreadable (data.on_error=skip)", done)
            else:
                if graphs:  # CUDA graphs: this step may overwrite the last step's graph outputs
                    torch.compiler.cudagraph_mark_step_begin()
                terms, (lr, wd, ema) = optimisation_step(forward, model, opt, batch_to_device(batch, device, keys),
                                                         cfg, step, amp, world, last, check=check_every == 1)
                finite = terms.pop("finite")
                if check_every > 1:  # clone: a CUDA graph's next replay overwrites its outputs
                    pending.append((done, finite, terms["loss"].detach().clone()))
                    if len(pending) >= check_every or done % cfg.train.log_every == 0 or done == steps:
                        raise_if_non_finite(pending, world, last, done)  # before a metrics row is written
                seen += len(batch[keys[0]]) * world
                if rank == 0 and (done % cfg.train.log_every == 0 or done == steps):
                    rate = seen / (time.perf_counter() - t0)
                    row = {"step": done, **{k: float(v.detach()) for k, v in terms.items()}, "lr": lr, "wd": wd,
                           "ema": ema, "pairs_per_s": rate}
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    if writer is not None:
                        for k, v in row.items():
                            writer.add_scalar(f"train/{k}", v, done)
                    if bar is not None:
                        bar.set_postfix(loss=f"{row['loss']:.4f}", pairs_s=f"{rate:.0f}")
            if bar is not None:
                bar.update(1)
            out_of_time = cfg.train.time_limit_s > 0 and _any_rank(
                time.perf_counter() - t0 > cfg.train.time_limit_s, world, device)
            if done == steps or out_of_time or (cfg.train.ckpt_every and done % cfg.train.ckpt_every == 0):
                save(done, finished=done == steps or out_of_time)
            if out_of_time:
                if rank == 0:
                    print(f"time limit train.time_limit_s={cfg.train.time_limit_s:g} reached at step {done}", flush=True)
                break
    finally:
        if bar is not None:
            bar.close()
        if metrics is not None:
            metrics.close()
    if bar is not None and done > start:  # a line that stays readable where the bar does not (stored notebooks)
        logged = f", loss {row['loss']:.4f} at step {row['step']}, {row['pairs_per_s']:.0f} pairs/s" if row else ""
        print(f"{cfg.name}: trained to step {done} in {time.perf_counter() - t0:.0f} s{logged}; checkpoint {last}",
              flush=True)
    return model


def _drop_metrics_after(path: Path, step: int) -> None:
    """On resume, forget logged rows past the checkpoint's step (they are logged again), atomically.

    A row cut short by a kill or a full disk (only the last can be) is dropped; an unreadable earlier row is an
    error naming the file and line."""
    if not path.exists():
        return
    lines = [(number, line) for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    keep = []
    for i, (number, line) in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise XJepaError(f"{path}: line {number} is not a JSON row; fix or delete that line, then resume") from None
        if row["step"] <= step:
            keep.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise XJepaError("train.tensorboard=true needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(out / "tb")
