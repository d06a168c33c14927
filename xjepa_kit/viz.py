"""Pictures (matplotlib, imported lazily; Agg unless a notebook backend is active).

Here: method comparison bars and loss curves from ``metrics.jsonl``. Re-exported from
:mod:`xjepa_kit.viz_images` (S2/S1 composites, sample rows, mask overlays) and
:mod:`xjepa_kit.viz_latent` (UMAP, pair vs non-pair distances), so ``from xjepa_kit.viz import rgb`` works.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xjepa_kit.viz_images import COMPOSITES, _plt, mask_overlay, plot_masks, plot_pairs, rgb, sar, stretch
from xjepa_kit.viz_latent import dominant_labels, pair_distances, plot_pair_distances, plot_umap, umap_2d

__all__ = [
    "plot_comparison", "plot_loss_curves", "read_metrics", "rgb", "sar", "stretch", "COMPOSITES", "plot_pairs",
    "mask_overlay", "plot_masks", "umap_2d", "plot_umap", "dominant_labels", "pair_distances",
    "plot_pair_distances",
]


def read_metrics(run: str | Path) -> list[dict]:
    """Rows of a run's ``metrics.jsonl``."""
    path = Path(run) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_comparison(results: dict, path: str | Path | None = None, k: int = 10):
    """Grouped bars: F1@k per direction (groups) and method (bars). Returns the figure."""
    plt = _plt()
    methods = results["methods"]
    dirs = list(next(iter(methods.values()))["directions"])
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(dirs), 3.6))
    width = 0.8 / len(methods)
    for i, (name, rep) in enumerate(methods.items()):
        vals = [100 * rep["directions"][d][f"F1@{k}"] for d in dirs]
        ax.bar(np.arange(len(dirs)) + i * width - 0.4 + width / 2, vals, width, label=name)
    ax.set_xticks(np.arange(len(dirs)), [d.replace("->", "→").upper() for d in dirs])
    ax.set_ylabel(f"F1@{k} (%)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_loss_curves(runs: dict[str, str | Path], path: str | Path | None = None, terms=("loss",)):
    """Loss against step for several runs (``{label: run folder}``). Returns the figure."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, run in runs.items():
        rows = read_metrics(run)
        for term in terms:
            pts = [(r["step"], r[term]) for r in rows if term in r]
            if pts:
                ax.plot(*zip(*pts), label=f"{label} {term}" if len(terms) > 1 else label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
