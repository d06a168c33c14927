"""Training-step throughput on CPU (DESIGN 10): the kit's full step on synthetic tensors.

Times ``xjepa_kit.train.optimisation_step`` (forward with EMA targets, backward, clipping, AdamW,
EMA update), without data loading, for
- ``tiny_cpu``: the laptop preset (120 px, patch 15 = 64 tokens, width 192, depth 4, predictor 96 x 2);
- ``peer``: the geometry a third-party X-JEPA reimplementation was timed at on this kind of machine
  (121 pairs/s): 49 tokens (112 px, patch 16), width 192, depth 4, predictor depth 1, batch 32.
Also the ViT-B preset on GPU when one is present (use benchmarks/gpu_bench.py for the full report).

    PYTHONPATH=. python benchmarks/bench_train.py [--threads 2] [--steps 10] [--results benchmarks/RESULTS.md]
    PYTHONPATH=. python benchmarks/bench_train.py --compile   # eager vs torch.compile, fixed-shape masks
    PYTHONPATH=. python benchmarks/bench_train.py --profile   # torch.profiler: tiny_cpu and ViT-B steps
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time

import numpy as np
import torch

from xjepa_kit.config import load_config
from xjepa_kit.masks import sample_masks
from xjepa_kit.models import build_model
from xjepa_kit.train import batch_to_device, build_optimizer, optimisation_step, param_groups

GEOMETRIES = {
    "tiny_cpu": ["data.batch_size=32"],
    "peer": ["model.encoder.img_size=112", "model.encoder.patch_size=16", "model.predictor.depth=1",
             "data.batch_size=32"],
}
PEER_PAIRS_PER_S = 121.0  # third-party reimplementation at the "peer" geometry, same kind of machine


@contextlib.contextmanager
def as_first_written(active: bool):
    """The step as first written, for before/after rows in one run: each encoder extracts its own patches
    (targets and context encoders both) and embeds all N of them before the context is kept (and, in
    time_steps, AdamW unfused)."""
    if not active:
        yield
        return
    from xjepa_kit.models.encoder import ViTEncoder, gather_tokens
    from xjepa_kit.models.xjepa import XJEPA

    current = ViTEncoder.forward_patches, XJEPA.forward

    def embed_then_drop(self, patches, keep=None):
        tokens = self.vit._pos_embed(self.embed_patches(patches))
        if keep is not None:
            tokens = gather_tokens(tokens, keep)
        return self.vit.norm(self.vit.blocks(tokens))

    def separate_patches(self, batch):
        masks = batch["masks"]
        tgt = self.forward_target(batch)
        return self.loss(self.forward_context(batch, masks), tgt, masks)

    ViTEncoder.forward_patches, XJEPA.forward = embed_then_drop, separate_patches
    try:
        yield
    finally:
        ViTEncoder.forward_patches, XJEPA.forward = current


def _batches(cfg, n: int = 4) -> list[dict]:
    b, size = cfg.data.batch_size, cfg.model.encoder.img_size
    grid = size // cfg.model.encoder.patch_size
    out = []
    for s in range(n):
        x = {m: torch.randn(b, c, size, size) for m, c in zip(cfg.model.modalities, cfg.model.in_chans)}
        x["masks"] = sample_masks(np.random.default_rng(s), b, grid, fixed_shapes=cfg.mask.fixed_shapes)
        out.append(batch_to_device(x, torch.device("cpu"), tuple(cfg.model.modalities)))
    return out


def time_steps(cfg, steps: int, warmup: int = 2, compile_: bool = False, unfused: bool = False) -> float:
    """Pairs per second of the full optimisation step at ``cfg``'s geometry and batch size.

    ``unfused``: torch's default AdamW on CPU (a Python loop over parameters), as first written.
    """
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.AdamW(param_groups(model), lr=cfg.train.lr, betas=(0.9, 0.95)) if unfused \
        else build_optimizer(model, cfg)
    forward = torch.compile(model, dynamic=False) if compile_ else model
    batches = _batches(cfg)
    amp = cfg.train.precision == "bf16"  # bf16 autocast on the CPU (fast with AVX512-BF16 / AMX)
    for s in range(warmup):
        optimisation_step(forward, model, opt, batches[s % 4], cfg, s, amp=amp)
    t0 = time.perf_counter()
    for s in range(steps):
        optimisation_step(forward, model, opt, batches[s % 4], cfg, warmup + s, amp=amp)
    return cfg.data.batch_size * steps / (time.perf_counter() - t0)


def profile_step(cfg, label: str, rows: int = 12) -> None:
    """torch.profiler table (self CPU time) of two optimisation steps after one warm-up step."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = build_model(cfg)
    opt = build_optimizer(model, cfg)
    batches = _batches(cfg, 3)
    optimisation_step(model, model, opt, batches[0], cfg, 0, amp=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for s in (1, 2):
            optimisation_step(model, model, opt, batches[s], cfg, s, amp=False)
    print(f"\n### {label}: two steps, batch {cfg.data.batch_size}\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def compile_rows(steps: int) -> list[tuple[str, str, float]]:
    """Eager vs torch.compile (inductor, static shapes) with fixed-shape masks, interleaved, 2 rounds."""
    rows = []
    for name, overrides in GEOMETRIES.items():
        cfg = load_config("tiny_cpu", overrides + ["mask.fixed_shapes=true"])
        rates: dict[str, list[float]] = {"eager": [], "compiled": []}
        t = time.perf_counter()
        rates["compiled"].append(time_steps(cfg, steps, warmup=3, compile_=True))
        print(f"{name}: first compile + {steps} steps took {time.perf_counter() - t:.0f} s", flush=True)
        for _ in range(2):
            rates["eager"].append(time_steps(cfg, steps))
            rates["compiled"].append(time_steps(cfg, steps, warmup=3, compile_=True))
        for key, values in rates.items():
            rate = float(np.median(values[-2:]))
            rows.append((name, f"xjepa, fixed-shape masks, {key}", rate))
            print(f"{name:9s} {key:9s} {rate:8.1f} pairs/s (runs: {', '.join(f'{v:.1f}' for v in values)})", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions of every row")
    p.add_argument("--results", default=None, help="append a markdown section to this file")
    p.add_argument("--compile", action="store_true", help="only: eager vs torch.compile with fixed-shape masks")
    p.add_argument("--profile", action="store_true", help="only: torch.profiler tables of tiny_cpu and ViT-B steps")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile_step(load_config("tiny_cpu", ["data.batch_size=32"]), "tiny_cpu")
        profile_step(load_config("ben14k_vitb", ["data.batch_size=8", "model.encoder.drop_path=0"]), "ben14k_vitb (ViT-B/15)")
        return
    if args.compile:
        for g, m, r in compile_rows(args.steps):
            print(f"| {g} | {m} | {r:.1f} |")
        return
    variants = {"xjepa": (["model.method=xjepa"], False),
                "xjepa, as first written (see below)": (["model.method=xjepa"], True),
                "xjepa, per-block predictor": (["model.method=xjepa", "model.predictor.per_block=true"], False),
                "contrastive": (["model.method=contrastive"], False),
                "xjepa, train.precision=bf16": (["model.method=xjepa", "train.precision=bf16"], False)}
    rates: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):  # interleaved rounds: a busy spell on a shared machine hits every row alike
        for name, overrides in GEOMETRIES.items():
            for method, (extra, before) in variants.items():
                with as_first_written(before):
                    rate = time_steps(load_config("tiny_cpu", overrides + extra), args.steps, unfused=before)
                rates.setdefault((name, method), []).append(rate)
                print(f"round {r + 1}: {name:9s} {method:44s} {rate:8.1f} pairs/s", flush=True)
    rows = [(g, m, float(np.median(v)), max(v)) for (g, m), v in rates.items()]
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    lines = ["", "## Training step on CPU", "", f"`PYTHONPATH=. python benchmarks/bench_train.py --threads {args.threads}`"
             f" ({time.strftime('%Y-%m-%d')}; {machine}; synthetic tensors, no data loading, batch 32).", "",
             f"| geometry | method | pairs/s (median of {args.rounds}) | best | median vs peer (121 pairs/s) |",
             "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {g} | {m} | {r:.1f} | {b:.1f} | {r / PEER_PAIRS_PER_S:.2f}x |" for g, m, r, b in rows]
    print("\n".join(lines))
    if args.results:
        with open(args.results, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
