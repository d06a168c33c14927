"""GPU benchmark of the paper-scale preset (DESIGN 10): one prepared script for a lent device machine.

Trains the ``ben14k_vitb`` X-JEPA preset (ViT-B/15 per modality, predictor 384 x 12) for a fixed
number of steps on synthetic tensors with the kit's own training step (bf16 autocast, AdamW,
clipping, EMA), and reports pairs/s, peak memory and model FLOP utilisation (FLOPs counted by
``torch.utils.flop_counter`` on one real step), then embedding throughput of the target encoders.
Needs only torch, timm, numpy and pyyaml:

    PYTHONPATH=. python benchmarks/gpu_bench.py [--batch 128] [--steps 40] [--checked] [--compile] [--out DIR]

The step reads its finite flag on the host only at the end of a timed run, as ``train`` does on a GPU
(at log steps); ``--checked`` also times the step that reads it every step (waiting for the GPU), and
each run reports how often one step waits for the GPU (``host_syncs_per_step``).

``--compile`` adds, per batch size, the eager step with fixed-shape masks (``mask.fixed_shapes``) and
the ``torch.compile``'d step (static shapes; ``--compile-mode default reduce-overhead`` also times CUDA
graphs), next to the eager step with I-JEPA's variable masks. ``--eager-batch 64 1024`` times the eager step
alone at other batch sizes right after the first run: the preset's own 64 per GPU (how host-bound eager is
there) and a larger one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from xjepa_kit.config import load_config
from xjepa_kit.masks import sample_masks
from xjepa_kit.models import build_model, count_parameters
from xjepa_kit.train import batch_to_device, build_optimizer, optimisation_step, raise_if_non_finite

# Dense bf16 tensor-core peaks (vendor data sheets: H100 SXM / H200 989.4 TFLOPS, H100 PCIe 756, A100 312).
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0}


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def synthetic_batch(cfg, batch: int, device: torch.device, step: int, fixed: bool = False) -> dict:
    size, grid = cfg.model.encoder.img_size, cfg.model.encoder.img_size // cfg.model.encoder.patch_size
    g = torch.Generator().manual_seed(step)
    out = {m: torch.randn(batch, c, size, size, generator=g) for m, c in zip(cfg.model.modalities, cfg.model.in_chans)}
    out["masks"] = sample_masks(np.random.default_rng(step), batch, grid, fixed_shapes=fixed)
    return batch_to_device(out, device, tuple(cfg.model.modalities))


def bench_train(cfg, batch: int, steps: int, warmup: int, device: torch.device, compile_mode: str | None,
                profile=None, fixed: bool = False, checked: bool = False) -> dict:
    """One timed run; ``compile_mode`` None is eager, else a torch.compile mode (static shapes).

    ``checked``: read the finite flag on the host every step (one wait for the GPU per step; the code of
    sessions 1-3 waited three times); otherwise the flags are read once at the end, as ``train`` reads
    them at log steps. On CUDA, ``host_syncs_per_step`` counts the waits of one step
    (``torch.cuda.set_sync_debug_mode``). ``profile(forward, model, opt, batches, cfg, amp)``, if given, runs
    before the timed steps; a dict it returns is added to the result.
    """
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    opt = build_optimizer(model, cfg)
    forward = torch.compile(model, dynamic=False, mode=compile_mode) if compile_mode else model
    graphs = compile_mode == "reduce-overhead"
    amp = device.type == "cuda"
    batches = [synthetic_batch(cfg, batch, device, s, fixed or bool(compile_mode)) for s in range(4)]
    t_compile = time.perf_counter()
    for s in range(warmup):
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        optimisation_step(forward, model, opt, batches[s % 4], cfg, s, amp)
    sync(device)
    t_compile = time.perf_counter() - t_compile
    with FlopCounterMode(display=False) as counter:
        optimisation_step(model, model, opt, batches[0], cfg, warmup, amp)
    flops_per_step = counter.get_total_flops()
    syncs = count_host_syncs(lambda: optimisation_step(forward, model, opt, batches[1], cfg, warmup, amp,
                                                       check=checked), device, graphs)
    profiled = profile(forward, model, opt, batches, cfg, amp) if profile else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    pending = []
    t0 = time.perf_counter()
    for s in range(steps):
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        terms, _ = optimisation_step(forward, model, opt, batches[s % 4], cfg, warmup + 1 + s, amp, check=checked)
        pending.append((warmup + 2 + s, terms["finite"], terms["loss"].detach().clone()))
    raise_if_non_finite(pending, 1, None, warmup + 1 + steps)
    sync(device)
    dt = time.perf_counter() - t0
    out = {"batch": batch, "steps": steps, "seconds": dt, "pairs_per_s": batch * steps / dt,
           "step_ms": 1e3 * dt / steps, "flops_per_step": flops_per_step, "achieved_tflops": flops_per_step * steps / dt / 1e12,
           "loss": float(terms["loss"].detach()), "compile": compile_mode or "eager",
           "masks": "fixed" if fixed or compile_mode else "variable", "finite_check": "every step" if checked
           else "deferred", "host_syncs_per_step": syncs, "warmup_seconds": t_compile}
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    out["params_m"] = {k: v / 1e6 for k, v in count_parameters(model).items()}
    out.update(profiled or {})
    del model, opt, forward, batches
    release_memory(device, compiled=bool(compile_mode))
    return out


def release_memory(device: torch.device, compiled: bool) -> None:
    """Free what a run held before the next one (compiled graphs and CUDA-graph pools included)."""
    import gc

    if compiled:
        torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@torch.no_grad()
def bench_embed(cfg, batch: int, steps: int, device: torch.device) -> dict:
    model = build_model(cfg).to(device).eval()
    x = {m: torch.randn(batch, c, cfg.model.encoder.img_size, cfg.model.encoder.img_size, device=device)
         for m, c in zip(cfg.model.modalities, cfg.model.in_chans)}
    res = {}
    for m in cfg.model.modalities:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model.embed(x[m], m)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                model.embed(x[m], m)
            sync(device)
        res[m] = batch * steps / (time.perf_counter() - t0)
    return {"batch": batch, "pairs_per_s_by_modality": res}


def print_profile(forward, model, opt, batches, cfg, amp: bool) -> None:
    """Top operators by device time over two steps, and how many kernels one step launches."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=acts) as prof:
        for s in range(2):
            optimisation_step(forward, model, opt, batches[s], cfg, 100 + s, amp)
        sync(next(model.parameters()).device)
    table = prof.key_averages()
    launches = sum(e.count for e in table if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    print(f"kernel launches per step: {launches // 2}", flush=True)
    sort = "device_time_total" if torch.cuda.is_available() else "cpu_time_total"
    print(table.table(sort_by=sort, row_limit=14, max_name_column_width=60), flush=True)


def count_host_syncs(step, device: torch.device, graphs: bool) -> int | None:
    """How many times one call of ``step`` makes the host wait for the GPU (CUDA's sync debug mode).

    Prints where each wait happens: the innermost lines of the kit's and torch's Python code that issued it.
    """
    if device.type != "cuda":
        return None
    import traceback
    import warnings

    if graphs:
        torch.compiler.cudagraph_mark_step_begin()
    sync(device)
    waits: list[str] = []

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" in str(message):
            frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack()[:-1]
                      if "warnings" not in f.filename and "gpu_bench" not in f.filename]
            waits.append(" <- ".join(reversed(frames[-4:])))

    with warnings.catch_warnings():
        torch.cuda.set_sync_debug_mode("warn")  # before the recorder: its own one-time notice is no wait
        warnings.simplefilter("always")
        warnings.showwarning = record
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for where in sorted(set(waits)):
        print("host waits at:", where, flush=True)
    return len(waits)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def open_run(config: str, overrides: list[str]) -> tuple[torch.device, object, dict]:
    """The device (CUDA if there is one, TF32 matmuls allowed), the config, and the report's header."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return device, load_config(config, overrides), {"device": name, "torch": torch.__version__, "config": config,
                                                    "overrides": overrides}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="ben14k_vitb")
    p.add_argument("--batch", type=int, nargs="+", default=[128], help="one run per batch size")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="also time fixed-shape masks eager and compiled")
    p.add_argument("--checked", action="store_true", help="also time the eager step that reads its finite flag "
                   "on the host every step (one wait for the GPU per step)")
    p.add_argument("--compile-mode", nargs="+", default=["default"],
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
    p.add_argument("--eager-batch", type=int, nargs="*", default=[],
                   help="the eager step alone at these batch sizes too, right after the first run (e.g. the preset's 64 per GPU)")
    p.add_argument("--embed-batch", type=int, default=512)
    p.add_argument("--profile", action="store_true", help="print the top GPU kernels of two steps")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    device, cfg, report = open_run(args.config, args.overrides)
    report["peak_bf16_tflops"] = peak_tflops(report["device"])
    # Most wanted first, and the report rewritten after each run: a call that runs out of time keeps the rest.
    variants = [(None, False, False)] + ([(m, True, False) for m in args.compile_mode] + [(None, True, False)]
                                         if args.compile else []) + ([(None, False, True)] if args.checked else [])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report["embed"] = bench_embed(cfg, args.embed_batch, 10, device)
    print(json.dumps(report["embed"]), flush=True)
    report["train"] = []
    # the cheap eager runs at other batch sizes right after the first (eager) run, before the compilations
    runs = [(b, v) for b in args.batch for v in variants]
    runs[1:1] = [(b, (None, False, False)) for b in args.eager_batch]
    for batch, (mode, fixed, checked) in runs:
        try:
            r = bench_train(cfg, batch, args.steps, args.warmup, device, mode,
                            print_profile if args.profile and mode != "reduce-overhead" else None,
                            fixed, checked)
        except Exception as err:  # keep the other runs of this (scarce) device call
            r = {"batch": batch, "compile": mode or "eager", "masks": "fixed" if fixed else "variable",
                 "finite_check": "every step" if checked else "deferred",
                 "error": f"{type(err).__name__}: {str(err)[:2000]}"}
            print(json.dumps(r), flush=True)
            release_memory(device, compiled=bool(mode))
        else:
            if report["peak_bf16_tflops"]:
                r["mfu"] = r["achieved_tflops"] / report["peak_bf16_tflops"]
            print(json.dumps({k: v for k, v in r.items() if k != "params_m"}), flush=True)
        report["train"].append(r)
        (out / "gpu_bench.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
