"""Operators per eager training step, by phase: what an eager GPU step launches, counted on a CPU.

On a GPU the eager ViT-B step is bound by the host launching kernels (benchmarks/RESULTS.md, GPU section),
so the number of kernel-launching operators per step is the figure to watch when the model changes. It does
not depend on the batch size or the layer widths, so this script counts it on the CPU with the preset's
structure (depths, heads, token grid, masks) at a narrow width: every aten operator one full
``optimisation_step`` dispatches (bf16 autocast as on CUDA, deferred finite check, fused AdamW, EMA), split
into phases, and those that are not views or metadata (on a GPU: roughly one kernel each).

    PYTHONPATH=. python benchmarks/bench_step_ops.py [--config ben14k_vitb] [key=value ...]
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from xjepa_kit.config import load_config
from xjepa_kit.masks import sample_masks
from xjepa_kit.models import build_model
from xjepa_kit.train import _finite_flag, batch_to_device, build_optimizer

# aten operators that only make a new view or read metadata: no kernel on a GPU
VIEW_OPS = {"view", "t", "transpose", "permute", "expand", "unsqueeze", "squeeze", "detach", "_unsafe_view",
            "as_strided", "unbind", "select", "slice", "split", "alias", "reshape", "_reshape_alias",
            "split_with_sizes", "chunk", "unflatten", "flatten", "lift_fresh", "empty", "empty_like", "new_empty",
            "empty_strided", "_record_function_enter_new", "_record_function_exit"}
NARROW = ["model.encoder.embed_dim=24", "model.predictor.embed_dim=24", "model.projector_dim=32"]


class OpCounter(TorchDispatchMode):
    """Counts every aten operator dispatched inside the ``with`` block, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket).split(".")[-1]] += 1
        return func(*args, **(kwargs or {}))


def count_phases(model: nn.Module, opt: torch.optim.Optimizer, batch: dict) -> dict[str, collections.Counter]:
    """The phases of ``train.optimisation_step`` (check=False, as on a GPU), each counted on its own."""
    phases: dict[str, collections.Counter] = {}

    def run(name: str, fn):
        with OpCounter() as c:
            result = fn()
        phases[name] = c.counts
        return result

    with torch.autocast("cpu", dtype=torch.bfloat16):  # casts as CUDA autocast makes them (linear in bf16)
        patches = run("patch extraction", lambda: model.patches(batch))
        tgt = run("target encoders (forward)", lambda: model.forward_target(batch, patches))
        ctx = run("context encoders (forward)", lambda: model.forward_context(batch, batch["masks"], patches))
        terms = run("predictors and losses (forward)", lambda: model.loss(ctx, tgt, batch["masks"]))
    opt.zero_grad(set_to_none=True)
    run("backward", lambda: terms["loss"].backward())
    finite = run("clip and finite flag", lambda: _finite_flag(terms["loss"], nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
    opt.found_inf = 1.0 - finite
    run("AdamW (fused)", opt.step)
    run("EMA update", lambda: model.ema_update(0.999))
    return phases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="ben14k_vitb")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    cfg = load_config(args.config, NARROW + args.overrides)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = build_optimizer(model, cfg)
    size = cfg.model.encoder.img_size
    batch = {m: torch.randn(2, c, size, size) for m, c in zip(cfg.model.modalities, cfg.model.in_chans)}
    batch["masks"] = sample_masks(np.random.default_rng(0), 2, size // cfg.model.encoder.patch_size,
                                  fixed_shapes=True)
    batch = batch_to_device(batch, torch.device("cpu"), tuple(cfg.model.modalities))
    count_phases(model, opt, batch)  # warm-up: lazy state (AdamW moments, PSA buffers) is created once
    phases = count_phases(model, opt, batch)
    print(f"{args.config} ({', '.join(NARROW + args.overrides)}), one eager step, torch {torch.__version__}\n")
    print("| phase | aten ops | not views (about one GPU kernel each) | of which autocast casts | most frequent |")
    print("| --- | ---: | ---: | ---: | --- |")
    total = kernels = casts = 0
    for name, c in phases.items():
        n, k, cast = sum(c.values()), sum(v for o, v in c.items() if o not in VIEW_OPS), c["_to_copy"]
        top = ", ".join(f"{o} {v}" for o, v in c.most_common(8) if o not in VIEW_OPS and o != "_to_copy")
        print(f"| {name} | {n} | {k} | {cast} | {top} |")
        total, kernels, casts = total + n, kernels + k, casts + cast
    print(f"| **step** | **{total}** | **{kernels}** | **{casts}** | |")


if __name__ == "__main__":
    main()
