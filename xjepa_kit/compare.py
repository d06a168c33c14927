"""Train and evaluate several methods or ablation variants on the same data and budget; one table.

``run_variants({"xjepa": [...overrides], "contrastive": [...]}, data, out)`` trains each variant
into ``out/<name>`` (reusing a finished run), evaluates it with the retrieval protocol and writes
``out/comparison.json`` (``{"methods": {name: report}}``), ``comparison.md`` and ``comparison.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

from xjepa_kit.atomic import atomic_write_text
from xjepa_kit.checkpoint import config_changes, load_checkpoint
from xjepa_kit.config import load_config, to_dict
from xjepa_kit.errors import XJepaError
from xjepa_kit.evaluate import evaluate, markdown_table

# The ablation grid of the paper's Table (DESIGN 4-5), plus the baselines.
ABLATIONS: dict[str, list[str]] = {
    "random": ["model.method=random"],
    "contrastive": ["model.method=contrastive"],
    "ijepa": ["model.method=ijepa"],
    "xjepa_l2": ["loss.psa=0", "loss.vicreg=0"],
    "xjepa_l2_psa": ["loss.vicreg=0"],
    "xjepa": [],
    "xjepa_no_shared_queries": ["model.predictor.shared_queries=false"],
}
DEMO_METHODS = ("xjepa", "contrastive", "random")


# Keys two sessions of the same finished run may differ in (how it ran, not what it learned).
REUSABLE_KEYS = frozenset({"name", "train.time_limit_s", "train.threads", "train.compile", "train.compile_mode",
                           "train.check_finite_every", "data.num_workers"})


def run_finished(run: Path, steps: int, cfg=None) -> bool:
    """True when ``run/last.pt`` ended its training (all ``steps``, or stopped by its time limit).

    With ``cfg``, a run trained with another config (other data, steps, losses ...) is refused with a
    clear error instead of being reused or resumed as if it were this one.
    """
    last = run / "last.pt"
    if not last.exists():
        return False
    ckpt = load_checkpoint(last)
    if cfg is not None and config_changes(ckpt["config"], to_dict(cfg), REUSABLE_KEYS):
        raise XJepaError(f"{run} holds a run with another config than this one; remove it or choose another "
                         "output folder (compare its config.yaml)")
    return bool(ckpt.get("finished")) or ckpt["step"] >= steps


def run_variants(variants: dict[str, list[str]], data: str | Path, out: str | Path, base: str = "tiny_cpu",
                 overrides: list[str] | tuple[str, ...] = (), ks=(5, 10, 20, 50, 100), progress: bool = True,
                 log=print) -> dict:
    """Train (if needed) and evaluate each variant; returns ``{"methods": {name: report}}`` and writes files."""
    from xjepa_kit.train import train

    out = Path(out)
    results: dict = {"methods": {}, "data": str(data), "base": base, "overrides": list(overrides)}
    for name, extra in variants.items():
        cfg = load_config(base, [f"data.root={data}", *overrides, *extra])
        cfg.name = name
        run = out / name
        if run_finished(run, cfg.train.steps, cfg):
            log(f"== {name}: reusing {run / 'last.pt'} ==")
        else:
            log(f"== {name}: training ({' '.join(extra) or 'defaults'}) ==")
            train(cfg, run, resume=(run / "last.pt").exists(), progress=progress)
        report = evaluate(run / "last.pt", data, ks=ks)
        report["overrides"] = extra
        report["steps"] = load_checkpoint(run / "last.pt")["step"]
        results["methods"][name] = report
        atomic_write_text(run / "report.json", json.dumps(report, indent=1))
    write_comparison(results, out)
    return results


def add_embedding_row(results: dict, name: str, trained: str, out: str | Path, embed_from: str) -> dict:
    """Add row ``name`` to ``results``: the finished run of variant ``trained`` evaluated with another
    ``model.embed_from`` (no training; e.g. ``prediction`` for X-JEPA's predicted cross-modal queries)."""
    base = results["methods"][trained]
    report = evaluate(Path(out) / trained / "last.pt", results["data"], ks=base["ks"], embed_from=embed_from)
    report.update({"overrides": [*base.get("overrides", []), f"model.embed_from={embed_from}"], "steps": base["steps"],
                   "reevaluates": trained})
    rows = list(results["methods"].items())
    at = [n for n, _ in rows].index(trained) + 1  # the new row follows the run it re-evaluates
    results["methods"] = dict(rows[:at] + [(name, report)] + rows[at:])
    return report


def add_prediction_rows(results: dict, out: str | Path) -> list[str]:
    """After each X-JEPA run of ``results``, a row ``<name>_prediction``: the same run with cross-modal
    queries through its predictors (``model.embed_from=prediction``); returns the added names.

    Idempotent: rows that re-evaluate a run or have no run folder under ``out``, and runs that already have
    their ``_prediction`` row, are skipped.
    """
    added = []
    for name, report in list(results["methods"].items()):
        if "reevaluates" in report or f"{name}_prediction" in results["methods"] or \
                not (Path(out) / name / "config.yaml").exists():
            continue
        model = load_config(Path(out) / name / "config.yaml").model
        if model.method == "xjepa" and model.embed_from != "prediction":
            add_embedding_row(results, f"{name}_prediction", name, out, "prediction")
            added.append(f"{name}_prediction")
    return added


def comparison_table(results: dict, k: int | None = None) -> str:
    """Methods x directions table of F1@k, with pair recall@k for the cross-modal directions (in %)."""
    methods = results["methods"]
    if k is None:
        ks = next(iter(methods.values()))["ks"]
        k = 10 if 10 in ks else ks[0]
    dirs = list(next(iter(methods.values()))["directions"])
    head = [f"{d} F1@{k}" for d in dirs] + [f"{d} pair R@{k}" for d in dirs if d.split("->")[0] != d.split("->")[1]]
    lines = ["| method | steps | " + " | ".join(head) + " |", "| --- | ---: |" + " ---: |" * len(head)]
    for name, rep in methods.items():
        cells = [f"{100 * rep['directions'][d].get(f'F1@{k}', float('nan')):.2f}" for d in dirs]
        cells += [f"{100 * rep['directions'][d][f'pair_recall@{k}']:.2f}" for d in dirs if f"pair_recall@{k}" in
                  rep["directions"][d]]
        lines.append(f"| {name} | {rep.get('steps', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_comparison(results: dict, out: str | Path, k: int | None = None) -> None:
    """``comparison.json``, ``comparison.md`` (table + per-method tables) and ``comparison.png`` at ``k``
    (default: 10 if it was evaluated, else the smallest k)."""
    from xjepa_kit.viz import plot_comparison

    if k is None:
        ks = next(iter(results["methods"].values()))["ks"]
        k = 10 if 10 in ks else ks[0]

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "comparison.json", json.dumps(results, indent=1))
    parts = ["# Method comparison", "", f"Data: `{results['data']}`; queries = validation split, archive = "
             "test split; F1 in % (DESIGN 7).", "", comparison_table(results, k), "", "![F1 per direction](comparison.png)"]
    for name, rep in results["methods"].items():
        parts += ["", f"## {name}", "", markdown_table(rep, k)]
    atomic_write_text(out / "comparison.md", "\n".join(parts) + "\n")
    plot_comparison(results, out / "comparison.png", k)
