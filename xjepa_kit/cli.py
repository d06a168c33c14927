"""The ``xjepa`` command line (DESIGN 9). User mistakes print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import os
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
    _add_layout(p)
    p = dsub.add_parser("pack", help="convert a dataset into the fast memory-mapped store")
    p.add_argument("root")
    p.add_argument("--out", required=True)
    p.add_argument("--split-file", default=None)
    _add_layout(p)
    p.add_argument("--s1-dtype", choices=["float32", "float16"], default="float32")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--force", action="store_true", help="replace an existing store")
    p = dsub.add_parser("subset", help="draw a label-stratified BEN-14K-style subset (split file)")
    p.add_argument("root")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=14832)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-cloud-snow", action="store_true", help="do not exclude TU Berlin's lists")


def _add_layout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", choices=["auto", "v1", "v2", "ben14k"], default="auto",
                   help="the dataset's on-disk layout (default: detected from its folders)")


def _ablation_names() -> list[str]:
    from xjepa_kit.compare import ABLATIONS

    return list(ABLATIONS)


def _add_embed_from(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embed-from", choices=["target", "context", "prediction"], default=None,
                   help="retrieval embedding (default: the run's model.embed_from); prediction: cross-modal queries "
                        "through the X-JEPA predictors")


def _add_data_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split-file", default=None, help="replaces the run's data.split_file (e.g. when it moved)")
    p.add_argument("--rgb-root", default=None, help="fMoW: replaces the run's data.fmow_rgb_root (--data is the "
                   "Sentinel root)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xjepa", description="X-JEPA cross-modal retrieval kit")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _data_parser(sub)
    p = sub.add_parser("pretrain", help="pretrain a model (single process or under torchrun)")
    p.add_argument("--config", default=None, help="preset name (tiny_cpu, ben14k_vitb, fmow_vitb) or YAML path "
                   "(default: tiny_cpu; with --resume, the run's own config.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.root=PATH train.steps=100")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--no-progress", action="store_true")
    p = sub.add_parser("embed", help="embed a dataset with a checkpoint (per-modality vectors, ids, labels)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="GeoTIFF root or packed store")
    p.add_argument("--split", default=None, help="train, val or test (default: all pairs)")
    p.add_argument("--out", required=True, help="EMB.npz")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    _add_embed_from(p)
    _add_data_paths(p)
    p = sub.add_parser("evaluate", help="retrieval metrics in the four directions (queries val, archive test)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="GeoTIFF root or packed store")
    p.add_argument("--k", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    p.add_argument("--query-split", default="val")
    p.add_argument("--archive-split", default="test")
    p.add_argument("--out", required=True, help="REPORT.json (a REPORT.md table is written beside it)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--force", action="store_true", help="replace an existing report")
    _add_embed_from(p)
    _add_data_paths(p)
    p = sub.add_parser("ablate", help="train and evaluate baselines and ablations on the same data and budget")
    p.add_argument("--data", required=True, help="GeoTIFF root or packed store")
    p.add_argument("--out", required=True, help="folder for one run per variant and comparison.{json,md,png}")
    p.add_argument("--config", default="tiny_cpu", help="base preset or YAML path")
    p.add_argument("--variants", nargs="+", default=None, help="subset of: " + ", ".join(_ablation_names()))
    p.add_argument("overrides", nargs="*", help="key=value applied to every variant, e.g. train.steps=300")
    p.add_argument("--no-prediction-rows", action="store_true", help="leave out the <variant>_prediction rows (each "
                   "X-JEPA run re-evaluated with cross-modal queries through its predictors)")
    p.add_argument("--no-progress", action="store_true")
    demo = sub.add_parser("demo", help="the whole pipeline on the embedded default data (about 10 minutes)")
    demo.add_argument("--data", default="data", help="folder for the sample, the synthetic set and its store")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--n", type=int, default=3000, help="synthetic pairs")
    demo.add_argument("--steps", type=int, default=300, help="training steps per method")
    demo.add_argument("--minutes", type=float, default=4.0, help="time limit per trained method")
    demo.add_argument("--no-progress", action="store_true")
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
        report = data.check(args.root, version=args.layout, split_file=args.split_file)
        print(report.summary())
        return 0 if report.ok else 1
    elif args.data_cmd == "pack":
        out = data.pack(args.root, args.out, split_file=args.split_file, version=args.layout, s1_dtype=args.s1_dtype,
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
    from xjepa_kit.train import shutdown_distributed, train

    saved = Path(args.out) / "config.yaml"
    config = args.config or (saved if args.resume and saved.exists() else "tiny_cpu")
    cfg = load_config(config, args.overrides)
    finished = False
    try:
        train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
        finished = True
    finally:
        shutdown_distributed(wait=finished)  # after an error another rank may never reach a barrier
    if _rank() == 0:
        print(f"run written to {args.out} (config.yaml, metrics.jsonl, last.pt)")
    return 0


def _refuse_existing(paths: list[Path], force: bool) -> None:
    """Outputs are only replaced with --force (checked before any work is done)."""
    found = [str(p) for p in paths if p.exists()]
    if found and not force:
        raise XJepaError(f"{', '.join(found)} exists; choose another --out or pass --force to replace it")


def run_embed(args: argparse.Namespace) -> int:
    from xjepa_kit.config import config_from_dict
    from xjepa_kit.embeddings import embed, load_model
    from xjepa_kit.train import setup_distributed, shutdown_distributed
    from xjepa_kit.train_data import build_dataset, point_at_data

    _refuse_existing([Path(args.out)], args.force)
    _, _, device = setup_distributed()  # under torchrun each rank embeds a shard, rank 0 merges
    model, meta = load_model(args.checkpoint, device, embed_from=args.embed_from)
    cfg = config_from_dict(meta.pop("config"))  # read the data as the run was trained (kind, bands, split file)
    point_at_data(cfg, args.data, args.split_file, args.rgb_root)
    emb = embed(model, build_dataset(cfg, split=args.split), args.batch_size, args.workers, device)
    emb.meta.update(meta)
    shutdown_distributed()
    if len(emb):  # rank 0 (or a single process) holds the merged result
        emb.save(args.out)
        dims = ", ".join(f"{m} {v.shape}" for m, v in emb.vectors.items())
        print(f"{len(emb)} pairs embedded ({dims}) -> {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from xjepa_kit.evaluate import evaluate, markdown_table, report_paths, write_report
    from xjepa_kit.train import setup_distributed, shutdown_distributed

    _refuse_existing(list(report_paths(args.out)), args.force)
    setup_distributed()  # under torchrun each rank embeds a shard, rank 0 evaluates and writes
    report = evaluate(args.checkpoint, args.data, ks=args.k, query_split=args.query_split,
                      archive_split=args.archive_split, batch_size=args.batch_size, num_workers=args.workers,
                      embed_from=args.embed_from, split_file=args.split_file, rgb_root=args.rgb_root)
    shutdown_distributed(wait=False)  # evaluate() met every rank after embedding; others need not wait for rank 0
    if report is None:
        return 0
    out, md = write_report(report, args.out, k=10)
    print(markdown_table(report, k=10))
    print(f"{report['queries']} queries ({args.query_split}) x {report['archive']} archive ({args.archive_split}) "
          f"-> {out}, {md}")
    return 0


def _world() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _one_process(command: str) -> None:
    if _world() > 1:
        raise XJepaError(f"xjepa {command} trains and evaluates its runs one after another in one process: start it "
                         "without torchrun (torchrun suits pretrain, embed and evaluate)")


def run_ablate(args: argparse.Namespace) -> int:
    from xjepa_kit.compare import ABLATIONS, add_prediction_rows, comparison_table, run_variants, write_comparison

    _one_process("ablate")

    names = args.variants or list(ABLATIONS)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise XJepaError(f"unknown variant(s) {unknown}; choose from {list(ABLATIONS)}")
    results = run_variants({n: ABLATIONS[n] for n in names}, args.data, args.out, base=args.config,
                           overrides=args.overrides, progress=not args.no_progress)
    if not args.no_prediction_rows and add_prediction_rows(results, args.out):
        write_comparison(results, args.out)
    print(comparison_table(results))
    print(f"comparison written to {args.out}/comparison.md")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from xjepa_kit.demo import run_demo as demo

    _one_process("demo")
    demo(args.data, args.out, n=args.n, steps=args.steps, minutes_per_model=args.minutes, progress=not args.no_progress)
    return 0


def user_message(err: Exception) -> str:
    """The error's own message; for one re-raised by a DataLoader worker ("Caught DataError in DataLoader worker
    process 0. Original Traceback ..."), the message at the end of the worker's traceback."""
    text, name = str(err), type(err).__name__
    if text.startswith("Caught ") and "Original Traceback" in text and f"{name}: " in text:
        return text[text.rfind(f"{name}: ") + len(name) + 2:].strip()
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``key=value`` overrides may stand anywhere among the options (before and after --out)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.cmd == "data":
            return run_data(args)
        if args.cmd == "pretrain":
            return run_pretrain(args)
        if args.cmd == "embed":
            return run_embed(args)
        if args.cmd == "evaluate":
            return run_evaluate(args)
        if args.cmd == "ablate":
            return run_ablate(args)
        if args.cmd == "demo":
            return run_demo(args)
    except XJepaError as err:
        print(f"xjepa: error: {user_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xjepa: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not _another_rank_failed(err):
            raise
        first = str(err).strip().splitlines()[0][:200]  # it names the lost peer (never empty: see the check)
        print(f"xjepa: error: rank {_rank()} lost its connection to another rank, which most "
              f"likely failed (its error would be printed above): {first}", file=sys.stderr)
        return 2
    return 0


def _another_rank_failed(err: Exception) -> bool:
    """Under torchrun: did a collective (gloo or NCCL, a RuntimeError) break because a peer went away?"""
    peer_gone = ("Connection closed by peer", "Connection reset by peer")
    return _world() > 1 and isinstance(err, RuntimeError) and \
        any(s in str(err) for s in peer_gone)


if __name__ == "__main__":
    sys.exit(main())
