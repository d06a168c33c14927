"""Where the GPU time of one training step goes, by kernel kind, and which attention backend is fastest.

For the ``ben14k_vitb`` preset with fixed-shape masks, per run: the step time, and the device time of two
profiled steps split into matmul, attention, fused (Inductor's Triton kernels), layer norm, optimiser
(fused AdamW, foreach), other elementwise / reductions, copies and the rest. Runs: the eager step under
each scaled-dot-product-attention backend of ``--backends``, then, with ``--compile-mode``, the compiled
step. Needs only torch, timm, numpy and pyyaml (like ``gpu_bench.py``):

    PYTHONPATH=. python benchmarks/gpu_profile.py --batch 512 --backends default flash efficient math --compile-mode default

Each run is ``gpu_bench.bench_train`` (the same timing, flop count and host-wait count, finite flags read once at
the end as ``train`` does on a GPU) with :func:`kernel_split` as its profile hook; the two profiled steps leave
their flags on the device. On a machine without a GPU the same split is made of the operators' CPU time (for tests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_bench import bench_train, open_run, release_memory, sync  # noqa: E402

from xjepa_kit.train import optimisation_step  # noqa: E402

# first match wins: kernel names seen on an H200 (cuBLAS nvjet/xmma, cuDNN SDPA, Triton) and aten op names
KINDS = [("attention", ("sdpa", "flash", "fmha", "attention", "attn")),
         ("matmul", ("gemm", "nvjet", "xmma", "cutlass", "aten::mm", "aten::addmm", "aten::bmm", "aten::linear")),
         ("fused (triton)", ("triton",)),
         ("layer norm", ("layer_norm", "layernorm")),
         ("optimiser", ("adam", "multi_tensor", "foreach", "lerp")),
         ("copy / cast", ("copy", "memcpy", "memset", "aten::to", "_to_copy", "fill")),
         ("elementwise / reduction", ("elementwise", "vectorized", "reduce", "softmax", "gelu", "aten::"))]


def kernel_kind(name: str) -> str:
    """The kind of one kernel or operator name (see ``KINDS``); ``other`` if none matches."""
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def time_split(prof, steps: int) -> dict[str, float]:
    """Milliseconds per step by kind: GPU kernels' self time on CUDA, else the operators' self CPU time."""
    cuda = torch.cuda.is_available()
    split: dict[str, float] = {}
    for e in prof.key_averages():
        if cuda:
            if e.device_type != torch.autograd.DeviceType.CUDA:
                continue
            us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0.0)
        else:
            us = e.self_cpu_time_total
        kind = kernel_kind(e.key)
        split[kind] = split.get(kind, 0.0) + us / 1e3 / steps
    if cuda and not split:  # no kernel rows: the operators' own device time (their kernels, by operator name)
        for e in prof.key_averages():
            us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0.0)
            if us:
                split[kernel_kind(e.key)] = split.get(kernel_kind(e.key), 0.0) + us / 1e3 / steps
    return dict(sorted(split.items(), key=lambda kv: -kv[1]))


def kernel_split(forward, model, opt, batches, cfg, amp: bool) -> dict:
    """Device time of two profiled steps by kernel kind (``gpu_bench.bench_train``'s ``profile`` hook)."""
    device = next(model.parameters()).device
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for s in range(2):
            optimisation_step(forward, model, opt, batches[s], cfg, 100 + s, amp, check=False)
        sync(device)
    split = time_split(prof, 2)
    return {"busy_ms": sum(split.values()), "split_ms": split}


BACKENDS = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}


def backend_context(name: str):
    """``sdpa_kernel`` limited to one backend; ``default`` leaves torch's choice."""
    if name == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, BACKENDS[name]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="ben14k_vitb")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--backends", nargs="+", default=["default"], choices=["default", *BACKENDS])
    p.add_argument("--compile-mode", nargs="*", default=[], choices=["default", "max-autotune-no-cudagraphs"],
                   help="also the compiled step (torch's default attention backend)")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    device, cfg, report = open_run(args.config, args.overrides)
    report["runs"] = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(b, None) for b in args.backends] + [("default", m) for m in args.compile_mode]
    for backend, mode in runs:
        try:
            with backend_context(backend):
                r = bench_train(cfg, args.batch, args.steps, args.warmup, device, mode, kernel_split, fixed=True)
        except Exception as err:  # keep the other runs of this (scarce) device call
            r = {"error": f"{type(err).__name__}: {str(err)[:1500]}"}
            release_memory(device, compiled=bool(mode))
        r = {"attention_backend": backend, "compile": mode or "eager", **r}
        print(json.dumps(r), flush=True)
        report["runs"].append(r)
        (out / "gpu_profile.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
