"""Benchmark: the whole four-direction evaluation vs the faiss searches it needs (DESIGN 10, metrics).

Input: Q queries x A archive items, random L2-normalised float32 vectors (dim 192) for modalities
s1 and s2, random multi-hot labels (19 classes, 1-5 per item), string ids (query i's partner is
query i of the other modality, as ``evaluate_embeddings`` expects). Measures
- time of ``xjepa_kit.evaluate.evaluate_embeddings(queries, archive, ks=(5, 10, 20, 50, 100))``;
- time of the faiss work alone, in the same process with the same thread count: exact
  ``IndexFlatIP`` top-100, 4 directions over the archive + 2 cross-modal pair searches over the
  query set (the ``add`` of each index is timed separately); both interleaved, medians reported;
- where the rest goes: each kit step of the evaluation timed on its own (index build, search
  wrapper, label metrics, pair metrics), and the top of a cProfile of one evaluation (``--profile``);
- peak memory: maximum RSS of a fresh subprocess that only imports the kit, loads the arrays and
  evaluates (GNU time's %M; the child's VmHWM after import, load and evaluation), for every
  ``--archive`` size (memory must not grow with Q x A).

    PYTHONPATH=. python benchmarks/bench_eval.py [--archive 100000 20000] [--repeats 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from bench_common import random_labels, unit_vectors
from xjepa_kit.embedding_store import Embeddings
from xjepa_kit.evaluate import directions, evaluate_embeddings
from xjepa_kit.metrics import retrieval_metrics
from xjepa_kit.retrieval import RetrievalIndex

KS = (5, 10, 20, 50, 100)
MODS = ("s1", "s2")
WORK = Path(__file__).resolve().parent / "_work" / "eval"


def make_set(rng: np.random.Generator, n: int, d: int, prefix: str) -> Embeddings:
    ids = np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), 6))   # like S2 patch names
    return Embeddings({m: unit_vectors(rng, n, d) for m in MODS}, ids, random_labels(rng, n), np.zeros((n, 4)))


def data_file(q: int, a: int, d: int, seed: int) -> Path:
    """Write (once) the query and archive sets to one .npz; returns its path."""
    path = WORK / f"q{q}_a{a}_d{d}_s{seed}.npz"
    if not path.exists():
        rng = np.random.default_rng(seed)
        qs, ar = make_set(rng, q, d, "Q_"), make_set(rng, a, d, "A_")
        WORK.mkdir(parents=True, exist_ok=True)
        np.savez(path.with_suffix(".tmp.npz"), **{f"{w}_{k}": v for w, e in (("q", qs), ("a", ar)) for k, v in
                 [("ids", e.ids), ("labels", e.labels), ("bounds", e.bounds), *e.vectors.items()]})
        path.with_suffix(".tmp.npz").rename(path)
    return path


def load_sets(path: Path) -> tuple[Embeddings, Embeddings]:
    """(queries, archive) as written by data_file."""
    with np.load(path) as z:
        return tuple(Embeddings({m: z[f"{w}_{m}"] for m in MODS}, z[f"{w}_ids"], z[f"{w}_labels"], z[f"{w}_bounds"])
                     for w in ("q", "a"))


def faiss_only(q: Embeddings, a: Embeddings, k: int) -> tuple[float, float]:
    """The six exact searches evaluate_embeddings needs -> (search seconds, add seconds)."""
    t_search = t_add = 0.0
    jobs = [(a.vectors[t], q.vectors[s]) for s, t in directions(MODS)]
    jobs += [(q.vectors[t], q.vectors[s]) for s, t in directions(MODS) if s != t]
    for base, xq in jobs:
        t0 = time.perf_counter()
        index = faiss.IndexFlatIP(base.shape[1])
        index.add(base)
        t1 = time.perf_counter()
        index.search(xq, k)
        t_search += time.perf_counter() - t1
        t_add += t1 - t0
    return t_search, t_add


def steps(q: Embeddings, a: Embeddings, k: int) -> dict[str, float]:
    """The evaluation's kit calls, each timed on its own (same order and arguments as evaluate_embeddings)."""
    t: dict[str, float] = {}

    def clock(name: str, fn, *args, **kw):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        t[name] = t.get(name, 0.0) + time.perf_counter() - t0
        return out

    for s, tm in directions(MODS):
        index = clock("RetrievalIndex.build (archive, x4)", RetrievalIndex.build, a.vectors[tm])
        _, ranked = clock("RetrievalIndex.search (archive, x4)", index.search, q.vectors[s], k)
        del index
        clock("retrieval_metrics labels (x4)", retrieval_metrics, ranked, q.labels, a.labels, KS)
        if s != tm:
            index = clock("RetrievalIndex.build (pair, x2)", RetrievalIndex.build, q.vectors[tm])
            _, paired = clock("RetrievalIndex.search (pair, x2)", index.search, q.vectors[s], k)
            clock("retrieval_metrics pair, str ids (x2)", retrieval_metrics, paired, q.labels, q.labels, KS,
                  query_ids=q.ids, archive_ids=q.ids)
    return t


def _hwm_mib() -> float:
    """This process's peak RSS (VmHWM: since its exec, unlike ru_maxrss, which inherits the parent's)."""
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


def child(path: Path, threads: int) -> None:
    """Fresh process: load the arrays, evaluate once, print JSON (peak RSS after each stage)."""
    faiss.omp_set_num_threads(threads)
    imported = _hwm_mib()
    q, a = load_sets(path)
    loaded = _hwm_mib()
    t0 = time.perf_counter()
    report = evaluate_embeddings(q, a, ks=KS)
    print(json.dumps({"seconds": time.perf_counter() - t0, "hwm_imported": imported, "hwm_loaded": loaded,
                      "hwm_end": _hwm_mib(), "pair_recall_10": report["directions"]["s1->s2"]["pair_recall@10"]}))


def memory_run(path: Path, threads: int) -> dict:
    """child() in a fresh process under GNU time, whose %M is that process's own maximum RSS."""
    out = WORK / "child.maxrss"
    cmd = ["/usr/bin/time", "-f", "%M", "-o", str(out), sys.executable, __file__, "--child", str(path),
           "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    return {**json.loads(res.stdout), "maxrss_mib": int(out.read_text().split()[-1]) / 1024}


def print_memory(mem: dict, args: argparse.Namespace) -> None:
    """The peak-memory table of the fresh-process runs, and the 2 GB check."""
    print("\n| archive | peak RSS after imports | after loading arrays | after evaluation | GNU time max RSS | "
          "evaluation time | a Q x A float32 matrix would be |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, m in mem.items():
        print(f"| {n:,} | {m['hwm_imported']:,.0f} MiB | {m['hwm_loaded']:,.0f} MiB | {m['hwm_end']:,.0f} MiB | "
              f"{m['maxrss_mib']:,.0f} MiB | {m['seconds']:.2f} s | {args.queries * n * 4 / 2**20:,.0f} MiB |")
    big, small = max(mem), min(mem)
    if big != small:
        grow = mem[big]["hwm_end"] - mem[small]["hwm_end"]
        vec = (big - small) * args.dim * 4 / 2**20
        print(f"\npeak grows {grow:,.0f} MiB from A={small:,} to {big:,}; the extra archive vectors are "
              f"{2 * vec:,.0f} MiB (2 modalities) + {vec:,.0f} MiB (one faiss copy) = {3 * vec:,.0f} MiB")
    peak = max(m["hwm_end"] for m in mem.values())
    print(f"peak memory (VmHWM) {peak:,.0f} MiB -> {'PASS' if peak < 2048 else 'FAIL'} (target < 2 GB); GNU time's "
          "figure also covers the `ldconfig -p` that `import torch` forks from the ~700 MiB process (inherited RSS)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--archive", type=int, nargs="+", default=[100_000, 20_000],
                    help="archive sizes; the first is timed, all get a memory run")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timings; medians reported")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="also print the top of a cProfile of one evaluation")
    ap.add_argument("--memory-only", action="store_true", help="only the fresh-process peak-memory runs")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.threads)
    faiss.omp_set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    paths = {a: data_file(args.queries, a, args.dim, args.seed) for a in args.archive}

    mem = {a: memory_run(paths[a], args.threads) for a in args.archive}
    if args.memory_only:
        return print_memory(mem, args)
    q, a = load_sets(paths[args.archive[0]])
    k = max(KS)
    evaluate_embeddings(q, a, ks=KS)                                     # warm-up (page cache, allocator)
    t_eval, t_faiss, t_add = [], [], []
    for _ in range(args.repeats):                                        # interleaved: shared machine
        s, ad = faiss_only(q, a, k)
        t_faiss.append(s)
        t_add.append(ad)
        t0 = time.perf_counter()
        evaluate_embeddings(q, a, ks=KS)
        t_eval.append(time.perf_counter() - t0)
    parts = steps(q, a, k)
    load1 = os.getloadavg()[0]

    ev, fs, ad = statistics.median(t_eval), statistics.median(t_faiss), statistics.median(t_add)
    ratio, runs = ev / fs, lambda xs: ", ".join(f"{x:.2f}" for x in xs)
    print(f"threads {args.threads}, load average (1 min) {load0:.2f} at start, {load1:.2f} at end\n"
          f"{args.queries:,} queries x {args.archive[0]:,} archive, d={args.dim}, median of {args.repeats}\n"
          f"evaluate_embeddings: {ev:.2f} s  (runs: {runs(t_eval)})\nfaiss searches only: {fs:.2f} s  "
          f"(runs: {runs(t_faiss)}); IndexFlatIP.add x6: {ad * 1e3:.0f} ms\nratio evaluation / faiss-only: "
          f"{ratio:.3f}x -> {'PASS' if ratio <= 1.5 else 'FAIL'} (target <= 1.5x); ratio of the fastest runs "
          f"{min(t_eval) / min(t_faiss):.3f}x")
    print("\n| step of the evaluation (one run) | seconds |\n| --- | ---: |")
    for name, sec in parts.items():
        print(f"| {name} | {sec:.3f} |")
    print(f"| sum | {sum(parts.values()):.3f} |")
    print_memory(mem, args)
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(evaluate_embeddings, q, a, ks=KS)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        print(buf.getvalue())


if __name__ == "__main__":
    main()
