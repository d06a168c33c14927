"""Benchmark: CPU embedding throughput and peak memory of training and the demo (DESIGN 10).

- ``--embed``: pairs/s of ``xjepa_kit.embeddings.embed`` (both modalities, batch 64) with the
  ``tiny_cpu`` model (randomly initialised; cost does not depend on the weights) over every pair of
  a packed synthetic store (``make_synthetic(n=600)`` + ``pack``), ``num_workers`` 0 and 2,
  torch threads = ``--threads``; one untimed warm-up, then ``--repeats`` interleaved runs, median.
- ``--train``: peak memory of ``xjepa pretrain --config tiny_cpu`` (``train.steps=60``) on that store
  for each ``data.num_workers`` in ``--workers``: GNU time's "Maximum resident set size" (the max
  over the process and its reaped children, not a sum), plus a 0.2 s sampler of /proc: the main
  process's VmHWM and peak RssAnon (RSS less file-backed pages: shared libraries, the memory-mapped
  store), and the peak of the summed PSS of the main process and its DataLoader workers (PSS splits
  shared pages, e.g. the torch libraries, between the processes; summed RSS would count them in
  every worker), in all and its anonymous + shared-memory part (Pss_Anon + Pss_Shmem).
- ``--demo``: the same for ``xjepa demo --n 3000`` (about 10 minutes on 2 cores), whose stdout is kept.

    PYTHONPATH=. python benchmarks/bench_memory.py [--embed] [--train] [--demo]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work" / "mem"


def make_store(n: int = 600) -> Path:
    """A packed synthetic store of ``n`` pairs under benchmarks/_work/mem (made once)."""
    from xjepa_kit.data import make_synthetic, pack

    root, store = WORK / f"synthetic_{n}", WORK / f"synthetic_{n}.packed"
    if not (store / "meta.json").exists():
        if not (root / "splits.csv").exists():
            make_synthetic(root, n=n, seed=0, overwrite=True)
        pack(root, store, overwrite=True, progress=False)
    return store


def bench_embed(store: Path, threads: int, repeats: int, workers: list[int]) -> dict[int, list[float]]:
    """pairs/s of embed() per num_workers (all runs)."""
    import torch

    from xjepa_kit.config import load_config
    from xjepa_kit.data import PackedPairs
    from xjepa_kit.embeddings import embed
    from xjepa_kit.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(load_config("tiny_cpu")).eval()
    ds = PackedPairs(store)
    embed(model, ds, batch_size=64, num_workers=0, device="cpu")        # warm-up
    rates: dict[int, list[float]] = {w: [] for w in workers}
    for _ in range(repeats):
        for w in workers:
            t0 = time.perf_counter()
            e = embed(model, ds, batch_size=64, num_workers=w, device="cpu")
            rates[w].append(len(e) / (time.perf_counter() - t0))
    return rates


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (via /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def _kib(path: str | Path, key: str) -> int:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", Path(path).read_text(), re.MULTILINE)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def measured(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` under /usr/bin/time -v with a /proc sampler -> MiB figures and wall seconds."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    t0 = time.perf_counter()
    with open(log, "w") as out, open(log.with_suffix(".time"), "w") as err:
        proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=out, stderr=err, env=env)
        peak = {"main_hwm": 0, "main_anon": 0, "sum_pss": 0, "sum_pss_anon": 0, "max_procs": 0}
        while proc.poll() is None:
            kids = _tree(proc.pid)[1:]                                      # [python main, workers...]
            if kids:
                main = kids[0]
                peak["main_hwm"] = max(peak["main_hwm"], _kib(f"/proc/{main}/status", "VmHWM"))
                peak["main_anon"] = max(peak["main_anon"], _kib(f"/proc/{main}/status", "RssAnon"))
                roll = [Path(f"/proc/{p}/smaps_rollup") for p in kids]
                peak["sum_pss"] = max(peak["sum_pss"], sum(_kib(r, "Pss") for r in roll))
                peak["sum_pss_anon"] = max(peak["sum_pss_anon"], sum(_kib(r, "Pss_Anon") + _kib(r, "Pss_Shmem")
                                                                     for r in roll))
                peak["max_procs"] = max(peak["max_procs"], len(kids))
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    timing = log.with_suffix(".time").read_text()
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{timing[-2000:]}")
    gnu = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1))
    elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", timing).group(1)
    return {"gnu_maxrss": gnu / 1024, "elapsed": elapsed, "wall": wall, "procs": peak.pop("max_procs"),
            **{k: v / 1024 for k, v in peak.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embed", action="store_true")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--n", type=int, default=600, help="pairs in the synthetic store")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 0])
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    store = make_store(args.n)
    py = [sys.executable, "-m", "xjepa_kit"]
    print(f"store {store}; load average (1 min) {os.getloadavg()[0]:.2f} at start")

    if args.embed:
        rates = bench_embed(store, args.threads, args.repeats, sorted(set(args.workers)))
        print(f"\nembed(), tiny_cpu, {args.n} pairs, batch 64, {args.threads} torch threads, "
              f"median of {args.repeats}\n\n| num_workers | pairs/s | runs |\n| ---: | ---: | --- |")
        for w, r in rates.items():
            print(f"| {w} | {statistics.median(r):,.1f} | {', '.join(f'{x:.1f}' for x in r)} |")

    rows = []
    if args.train:
        for w in args.workers:
            out = WORK / f"pretrain_w{w}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = py + ["pretrain", "--config", "tiny_cpu", f"data.root={store}", f"train.steps={args.steps}",
                        f"data.num_workers={w}", "--out", str(out), "--no-progress"]
            rows.append((f"pretrain tiny_cpu, {args.steps} steps, num_workers={w}", measured(cmd, WORK / f"pretrain_w{w}.log")))
    if args.demo:
        shutil.rmtree(WORK / "demo", ignore_errors=True)
        cmd = py + ["demo", "--data", str(WORK / "demo" / "data"), "--out", str(WORK / "demo" / "out"),
                    "--n", "3000", "--no-progress"]
        (WORK / "demo").mkdir(parents=True)
        rows.append(("demo --n 3000", measured(cmd, WORK / "demo" / "stdout.log")))
    if rows:
        print("\n| run | wall | GNU time max RSS (max over process tree) | main VmHWM | main RssAnon | "
              "peak sum PSS main+workers | of it anon+shmem | processes |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, m in rows:
            print(f"| {name} | {m['elapsed']} | {m['gnu_maxrss']:,.0f} MiB | {m['main_hwm']:,.0f} MiB | "
                  f"{m['main_anon']:,.0f} MiB | {m['sum_pss']:,.0f} MiB | {m['sum_pss_anon']:,.0f} MiB | {m['procs']} |")
        print()
        for name, m in rows:
            for what, v in (("GNU time max RSS", m["gnu_maxrss"]), ("peak sum PSS", m["sum_pss"]),
                            ("peak sum PSS anon+shmem", m["sum_pss_anon"])):
                print(f"- {'PASS' if v < 2048 else 'FAIL'}  [{name}] {what} < 2 GB: {v:,.0f} MiB")
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
