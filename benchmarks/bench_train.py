"""Training-step throughput on CPU (DESIGN 10): the kit's full step on synthetic tensors.

Times ``xjepa_kit.train.optimisation_step`` (forward with EMA targets, backward, clipping, AdamW,
EMA update), without data loading, for
- ``tiny_cpu``: the laptop preset (120 px, patch 15 = 64 tokens, width 192, depth 4, predictor 96 x 2);
- ``peer``: the geometry a third-party X-JEPA reimplementation was timed at on this kind of machine
  (121 pairs/s): 49 tokens (112 px, patch 16), width 192, depth 4, predictor depth 1, batch 32.
Also the ViT-B preset on GPU when one is present (use benchmarks/gpu_bench.py for the full report).

    PYTHONPATH=. python benchmarks/bench_train.py [--threads 2] [--steps 10] [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from xjepa_kit.config import load_config
from xjepa_kit.masks import sample_masks
from xjepa_kit.models import build_model
from xjepa_kit.train import batch_to_device, optimisation_step, param_groups

GEOMETRIES = {
    "tiny_cpu": ["data.batch_size=32"],
    "peer": ["model.encoder.img_size=112", "model.encoder.patch_size=16", "model.predictor.depth=1",
             "data.batch_size=32"],
}
PEER_PAIRS_PER_S = 121.0  # third-party reimplementation at the "peer" geometry, same kind of machine


def time_steps(cfg, steps: int, warmup: int = 2) -> float:
    """Pairs per second of the full optimisation step at ``cfg``'s geometry and batch size."""
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.AdamW(param_groups(model), lr=1e-4)
    b, size = cfg.data.batch_size, cfg.model.encoder.img_size
    grid = size // cfg.model.encoder.patch_size
    batches = []
    for s in range(4):
        x = {m: torch.randn(b, c, size, size) for m, c in zip(cfg.model.modalities, cfg.model.in_chans)}
        x["masks"] = sample_masks(np.random.default_rng(s), b, grid)
        batches.append(batch_to_device(x, torch.device("cpu"), tuple(cfg.model.modalities)))
    for s in range(warmup):
        optimisation_step(model, model, opt, batches[s % 4], cfg, s, amp=False)
    t0 = time.perf_counter()
    for s in range(steps):
        optimisation_step(model, model, opt, batches[s % 4], cfg, warmup + s, amp=False)
    return b * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--results", default=None, help="append a markdown section to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    variants = {"xjepa": ["model.method=xjepa"],
                "xjepa, per-block predictor": ["model.method=xjepa", "model.predictor.per_block=true"],
                "contrastive": ["model.method=contrastive"]}
    for name, overrides in GEOMETRIES.items():
        for method, extra in variants.items():
            cfg = load_config("tiny_cpu", overrides + extra)
            rate = time_steps(cfg, args.steps)
            rows.append((name, method, rate))
            print(f"{name:9s} {method:28s} {rate:8.1f} pairs/s", flush=True)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    lines = ["", "## Training step on CPU", "", f"`PYTHONPATH=. python benchmarks/bench_train.py --threads {args.threads}`"
             f" ({time.strftime('%Y-%m-%d')}; {machine}; synthetic tensors, no data loading, batch 32).", "",
             "| geometry | method | pairs/s | vs peer (121 pairs/s) |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {g} | {m} | {r:.1f} | {r / PEER_PAIRS_PER_S:.2f}x |" for g, m, r in rows]
    print("\n".join(lines))
    if args.results:
        with open(args.results, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
