"""Data-loading benchmark: pairs/s of the GeoTIFF reader, the packed store and torchgeo on the same pairs.

Readers, each reading every pair of a set in order, in one process (no DataLoader workers):
``xjepa BigEarthNetMM`` (our GeoTIFF reader; ``s2_bands=10``, and 12 for a like-for-like row against
torchgeo, which reads all 12 S2 bands), ``xjepa PackedPairs`` (the store ``pack`` makes of the same
root), ``torchgeo BigEarthNet`` (``bands="all"``; skipped, and said so, when torchgeo is not
installed: ``pip install -e .[bench]``) and a bare numpy memmap read of the same rows (reference).
Sets: a synthetic v1 set of ``--n`` pairs and the 6 real BigEarthNet v1 pairs (``extract_sample``).

Timing: one untimed warm-up pass per reader (OS page cache, GDAL), then ``--passes`` timed passes
interleaved across readers (so load from other processes hits all alike), each repeating the set
until it lasts ``--min-pass-s``; the figure is the median pass. ``torch.set_num_threads(1)`` by
default, as in a DataLoader worker: with 2 intra-op threads on a shared 2-core machine, OpenMP
barriers in small tensor ops made figures swing by two orders of magnitude between runs.
Exactness: max |S1 - file| in dB (files read as float32 with rasterio) over every pair.
Writes the "Data loading" section of ``benchmarks/RESULTS.md``.

Run: ``PYTHONPATH=. python benchmarks/bench_data.py [--n 400] [--work benchmarks/_work] [--passes 3]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
import torch

from xjepa_kit.data import BigEarthNetMM, PackedPairs, extract_sample, make_synthetic, pack

HERE = Path(__file__).resolve().parent
TORCHGEO_REF = 71.0  # pairs/s, torchgeo on real v1 files on a 2-core machine of this kind (brief)
MEMMAP_REF = 6700.0  # pairs/s, a bare numpy memmap read on such a machine (brief)
Reader = tuple[str, int, Callable[[int], object]]  # (name, number of pairs, read pair i)
GEO10, GEO12 = "xjepa BigEarthNetMM (GeoTIFF, 10 S2 bands)", "xjepa BigEarthNetMM (GeoTIFF, 12 S2 bands)"
PACKED, TG = "xjepa PackedPairs (packed store)", "torchgeo BigEarthNet (bands='all')"


def torchgeo_dataset_class():
    try:
        from torchgeo.datasets import BigEarthNet
    except ImportError as err:
        print(f"torchgeo is not installed ({err}); skipping the torchgeo row (pip install -e .[bench])")
        return None
    return BigEarthNet


def open_torchgeo(tg_class, root: Path):
    return tg_class(str(root), split="train", bands="all", num_classes=19, download=False, checksum=False)


def prepare(name: str, root: Path, work: Path) -> tuple[BigEarthNetMM, Path]:
    """Our reader over ``root`` (split=None), a packed store of it and torchgeo's split CSVs."""
    ds = BigEarthNetMM(root)
    store = work / f"{name}.packed"
    if not (store / "meta.json").exists() or PackedPairs(store).meta["count"] != len(ds):
        pack(root, store, workers=2, overwrite=True, progress=False)
    # torchgeo reads root/bigearthnet-<split>.csv, rows "s2_name,s1_name", no header; all pairs -> train
    rows = "".join(f"{a},{b}\n" for a, b in zip(ds.index["s2_name"], ds.index["s1_name"]))
    for split, text in (("train", rows), ("val", ""), ("test", "")):
        path = root / f"bigearthnet-{split}.csv"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return ds, store


def synthetic_root(work: Path, n: int) -> Path:
    root = work / f"synthetic_{n}"
    if not (root / "splits.csv").exists():
        make_synthetic(root, n=n, seed=0, format="v1", overwrite=True)
    return root


def readers_for(ds: BigEarthNetMM, store: Path, tg_class) -> list[Reader]:
    ds12 = BigEarthNetMM(ds.layout.root, s2_bands=12)
    packed = PackedPairs(store)
    s2_mm, s1_mm = np.load(store / "s2.npy", mmap_mode="r"), np.load(store / "s1.npy", mmap_mode="r")
    band_idx = packed._band_idx

    def bare(i: int) -> tuple[np.ndarray, np.ndarray]:
        return s2_mm[i, band_idx].astype(np.float32), s1_mm[i].astype(np.float32)

    out: list[Reader] = [(GEO10, len(ds), ds.__getitem__), (GEO12, len(ds12), ds12.__getitem__),
                         (PACKED, len(packed), packed.__getitem__),
                         ("bare numpy memmap read (reference)", len(packed), bare)]
    if tg_class is not None:
        tg = open_torchgeo(tg_class, ds.layout.root)
        assert len(tg) == len(ds), (len(tg), len(ds))
        out.append((TG, len(tg), tg.__getitem__))
    return out


def one_pass(read: Callable[[int], object], n: int, reps: int) -> float:
    t0 = time.perf_counter()
    for i in list(range(n)) * reps:
        read(i)
    return time.perf_counter() - t0


def measure(readers: list[Reader], passes: int, min_pass_s: float) -> dict[str, float]:
    """Median pairs/s per reader: one untimed warm-up pass each, then interleaved timed passes."""
    reps = {name: max(1, int(np.ceil(min_pass_s / max(one_pass(read, n, 1), 1e-6))))
            for name, n, read in readers}
    rates: dict[str, list[float]] = {name: [] for name, _, _ in readers}
    for _ in range(passes):
        for name, n, read in readers:
            rates[name].append(n * reps[name] / one_pass(read, n, reps[name]))
    return {name: statistics.median(r) for name, r in rates.items()}


def s1_truth(paths: list[Path]) -> np.ndarray:
    out = []
    for p in paths:
        with rasterio.open(p) as src:
            out.append(src.read(1).astype(np.float32))
    return np.stack(out)


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(b)
    return float(np.abs(np.asarray(a, np.float64)[ok] - b[ok]).max()) if ok.any() else 0.0


def s1_exactness(ds: BigEarthNetMM, store: Path, tg_class) -> dict[str, float]:
    """Max |S1 - file| in dB over every pair: our reader (read_raw), the packed store, torchgeo."""
    packed = PackedPairs(store, normalize=False)
    tg = open_torchgeo(tg_class, ds.layout.root) if tg_class is not None else None
    err = {"ours": 0.0, "packed": 0.0, **({"torchgeo": 0.0} if tg is not None else {})}
    for i in range(len(ds)):
        paths = ds.s1_paths(i)
        truth = s1_truth([paths["VV"], paths["VH"]])
        err["ours"] = max(err["ours"], max_abs(ds.read_raw(i)["s1"], truth))
        err["packed"] = max(err["packed"], max_abs(packed[i]["s1"].numpy(), truth))
        if tg is not None:
            tg_paths = [Path(p) for p in tg._load_paths(i)[:2]]  # torchgeo's S1 files, in its order
            err["torchgeo"] = max(err["torchgeo"], max_abs(tg[i]["image"][:2].numpy(), s1_truth(tg_paths)))
    return err


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu).group(1).strip()  # type: ignore[union-attr]
    except (OSError, subprocess.SubprocessError, AttributeError):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.platform()}, Python {platform.python_version()}"


def versions(tg_class) -> str:
    tg = __import__("torchgeo").__version__ if tg_class is not None else "not installed"
    return (f"torch {torch.__version__} (intra-op threads: {torch.get_num_threads()}), numpy {np.__version__}, "
            f"rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__}), torchgeo {tg}")


def check(label: str, ok: bool, detail: str) -> str:
    line = f"{'PASS' if ok else 'FAIL'}  {label}: {detail}"
    print(line)
    return line


def targets(name: str, rate: dict[str, float], err: dict[str, float]) -> list[str]:
    geo, packed, tg = rate[GEO10], rate[PACKED], rate.get(TG)
    tg_ref, tg_src = (tg, "measured") if tg is not None else (TORCHGEO_REF, "reference figure, torchgeo not installed")
    return [check(f"[{name}] packed >= 50x GeoTIFF reader", packed >= 50 * geo, f"{packed / geo:.0f}x"),
            check(f"[{name}] packed >= 5,000 pairs/s", packed >= 5000, f"{packed:,.0f} pairs/s"),
            check(f"[{name}] GeoTIFF reader >= torchgeo", geo >= tg_ref,
                  f"{geo:,.1f} vs {tg_ref:,.1f} pairs/s ({tg_src}; with all 12 S2 bands, as torchgeo "
                  f"reads: {rate[GEO12]:,.1f})"),
            check(f"[{name}] our S1 values exact", err["ours"] == 0 and err["packed"] == 0,
                  f"max |diff| {err['ours']:g} dB (GeoTIFF reader), {err['packed']:g} dB (packed)")]


def write_results(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"## Data loading\n\n{body.rstrip()}\n"
    m = re.search(r"^## Data loading\n.*?(?=^## |\Z)", text, flags=re.M | re.S)
    if m is None:
        text = text.rstrip() + "\n\n" + section
    else:
        rest = text[m.end():]
        text = text[:m.start()] + section + ("\n" + rest if rest else "")
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="synthetic pairs (default 400)")
    ap.add_argument("--work", type=Path, default=HERE / "_work", help="scratch folder (git-ignored)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes per reader (after one warm-up)")
    ap.add_argument("--min-pass-s", type=float, default=1.0, help="repeat the set until a pass lasts this")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (1, as in DataLoader workers)")
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="Markdown file to update")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    tg_class = torchgeo_dataset_class()
    sets = {f"synthetic v1, {args.n} pairs": ("synthetic", synthetic_root(args.work, args.n)),
            "real BigEarthNet v1 sample, 6 pairs": ("sample", extract_sample(args.work / "sample"))}
    load0 = os.getloadavg()
    rows, checks, exact = [], [], []
    for label, (name, root) in sets.items():
        ds, store = prepare(name, root, args.work)
        print(f"\n== {label}: {root}")
        rate = measure(readers_for(ds, store, tg_class), args.passes, args.min_pass_s)
        err = s1_exactness(ds, store, tg_class)
        base = rate[GEO10]
        for reader, r in rate.items():
            print(f"  {reader:45s} {r:10,.1f} pairs/s  {r / base:7.2f}x")
            rows.append(f"| {label} | {reader} | {r:,.1f} | {r / base:.2f}x |")
        print("  S1 max |diff| vs files (dB): " + ", ".join(f"{k} {v:g}" for k, v in err.items()))
        exact.append(f"| {label} | " + " | ".join(f"{err[k]:g}" if k in err else "not run"
                                                   for k in ("ours", "packed", "torchgeo")) + " |")
        checks += targets(label, rate, err)
    load1 = os.getloadavg()
    command = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')} {sys.executable} {' '.join(sys.argv)}"
    body = "\n".join([
        f"Measured {datetime.date.today().isoformat()} by `benchmarks/bench_data.py`:",
        "", f"    {command}", "",
        f"- Machine: {machine()}.", f"- Software: {versions(tg_class)}.",
        f"- One process, no DataLoader workers, `torch.set_num_threads({args.threads})` (1 is what a "
        "DataLoader worker uses; with 2 threads on this shared 2-core machine OpenMP barriers in small "
        "tensor ops made the figures swing by two orders of magnitude between runs). Every reader "
        "reads every pair of the set in order. One untimed warm-up pass per reader first (OS page cache "
        f"warm), then {args.passes} timed passes interleaved across readers, each repeating the set until "
        f"it lasts >= {args.min_pass_s:g} s; the figure is the median pass. Load average (1 min) "
        f"{load0[0]:.2f} at start, {load1[0]:.2f} at end (other processes share the 2 cores).",
        "- The xjepa readers return the full sample dict (S1 2 + S2 10 or 12 bands at 120x120, "
        "normalised, labels, bounds); torchgeo returns 14 unnormalised channels and the label; the bare "
        "memmap row only copies the S1 and 10 S2 band arrays to float32. torchgeo reads the same pairs "
        "in the same order from a `bigearthnet-train.csv` written by this script into each set's root.",
        "", "| set | reader | pairs/s | vs GeoTIFF reader (10 bands) |", "| --- | --- | ---: | ---: |",
        *rows, "",
        "S1 exactness, max |reader - file| in dB over every pair (files read as float32 with rasterio):",
        "", "| set | xjepa GeoTIFF reader | xjepa packed store | torchgeo |", "| --- | ---: | ---: | ---: |",
        *exact, "", "torchgeo reads every band with `out_dtype='int32'`, so S1 dB values are rounded to "
        "whole dB (error up to 0.5 dB); the xjepa readers keep the files' float32 values.", "",
        f"Targets (reference figures: torchgeo ~{TORCHGEO_REF:g} pairs/s on real v1 files, bare memmap "
        f"~{MEMMAP_REF:,.0f} pairs/s, on this kind of machine):", "",
        *[f"- {c}" for c in checks]])
    if not args.no_write:
        write_results(args.results, body)
        print(f"\nwrote the Data loading section of {args.results}")


if __name__ == "__main__":
    main()
