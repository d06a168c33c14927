"""The ``xjepa`` command line (DESIGN 9). User mistakes print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xjepa_kit.errors import XJepaError


def _data_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare, check and pack datasets")
    dsub = data.add_subparsers(dest="data_cmd", required=True)
    p = dsub.add_parser("sample", help="extract the six real BigEarthNet-MM example pairs (v1 layout)")
    p.add_argument("--out", default="data/sample")
    p = dsub.add_parser("synth", help="write a synthetic BigEarthNet-format S1/S2 set")
    p.add_argument("--out", default="data/synthetic")
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=["v1", "v2"], default="v1")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p = dsub.add_parser("check", help="validate a dataset; exits 1 when problems are found")
    p.add_argument("root")
    p.add_argument("--split-file", default=None)
    p = dsub.add_parser("pack", help="convert a dataset into the fast memory-mapped store")
    p.add_argument("root")
    p.add_argument("--out", required=True)
    p.add_argument("--split-file", default=None)
    p.add_argument("--s1-dtype", choices=["float32", "float16"], default="float32")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--force", action="store_true", help="replace an existing store")
    p = dsub.add_parser("subset", help="draw a label-stratified BEN-14K-style subset (split file)")
    p.add_argument("root")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=14832)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-cloud-snow", action="store_true", help="do not exclude TU Berlin's lists")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xjepa", description="X-JEPA cross-modal retrieval kit")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _data_parser(sub)
    p = sub.add_parser("pretrain", help="pretrain a model (single process or under torchrun)")
    p.add_argument("--config", default="tiny_cpu", help="preset name (tiny_cpu, ben14k_vitb, fmow_vitb) or YAML path")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.root=PATH train.steps=100")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--no-progress", action="store_true")
    demo = sub.add_parser("demo", help="the whole pipeline on the embedded default data")
    demo.add_argument("--data", default="data", help="folder for the sample and the synthetic set")
    demo.add_argument("--n", type=int, default=4000, help="synthetic pairs")
    return parser


def run_data(args: argparse.Namespace) -> int:
    from xjepa_kit import data

    if args.data_cmd == "sample":
        out = data.extract_sample(args.out)
        print(data.summarize(data.BigEarthNetMM(out)))
        print(f"real sample written to {out}")
    elif args.data_cmd == "synth":
        out = data.make_synthetic(args.out, n=args.n, seed=args.seed, format=args.format, overwrite=args.force)
        print(data.summarize(data.BigEarthNetMM(out)))
        print(f"synthetic set ({args.format}) written to {out}")
    elif args.data_cmd == "check":
        report = data.check(args.root, split_file=args.split_file)
        print(report.summary())
        return 0 if report.ok else 1
    elif args.data_cmd == "pack":
        out = data.pack(args.root, args.out, split_file=args.split_file, s1_dtype=args.s1_dtype,
                        workers=args.workers, overwrite=args.force)
        print(f"packed store written to {out} ({len(data.PackedPairs(out))} pairs)")
    elif args.data_cmd == "subset":
        subset = data.make_subset(args.root, args.out, n=args.n, seed=args.seed,
                                  exclude_cloud_snow=not args.keep_cloud_snow)
        counts = subset["split"].value_counts().to_dict()
        print(f"{len(subset)} pairs written to {args.out} {counts}")
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    from xjepa_kit.config import load_config
    from xjepa_kit.train import train

    cfg = load_config(args.config, args.overrides)
    try:
        train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    print(f"run written to {args.out} (config.yaml, metrics.jsonl, last.pt)")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """At this stage: the real sample and a synthetic set, with their summaries."""
    from xjepa_kit import data

    root = Path(args.data)
    sample = data.extract_sample(root / "sample")
    print("== real sample (bigearthnet-common, BigEarthNet-MM v1) ==")
    print(data.summarize(data.BigEarthNetMM(sample)))
    synth = root / "synthetic"
    if not (synth / "splits.csv").exists():
        print(f"== writing {args.n} synthetic pairs to {synth} ==", flush=True)
        data.make_synthetic(synth, n=args.n, seed=0, overwrite=True)
    print("== synthetic set ==")
    print(data.summarize(data.BigEarthNetMM(synth)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "data":
            return run_data(args)
        if args.cmd == "pretrain":
            return run_pretrain(args)
        if args.cmd == "demo":
            return run_demo(args)
    except XJepaError as err:
        print(f"xjepa: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xjepa: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
