"""Latent-space pictures: a joint UMAP of both modalities and pair vs non-pair cosine distances."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xjepa_kit.errors import XJepaError
from xjepa_kit.viz_images import _plt, _short

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from xjepa_kit.embedding_store import Embeddings

MARKERS = ("o", "^", "s", "D", "v", "P")


def umap_2d(vectors: dict[str, np.ndarray], seed: int = 0, n_neighbors: int = 15,
            min_dist: float = 0.1) -> dict[str, np.ndarray]:
    """One 2-D UMAP (cosine metric) fitted on all modalities' vectors stacked.

    ``vectors[m]`` [N_m, D] -> ``{m: float32 [N_m, 2]}`` in the same order. Seeded, hence single-threaded.
    """
    import umap

    names = list(vectors)
    arrays = [np.asarray(vectors[m], dtype=np.float32) for m in names]
    stacked = np.concatenate(arrays)
    if len(stacked) < 3:
        raise XJepaError(f"umap_2d() needs at least 3 vectors in all, got {len(stacked)}")
    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, min_dist=min_dist,
                        n_neighbors=max(2, min(n_neighbors, len(stacked) - 1)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs.*")  # seeded UMAP runs on one thread
        xy = reducer.fit_transform(stacked).astype(np.float32)
    cuts = np.cumsum([len(a) for a in arrays])[:-1]
    return dict(zip(names, np.split(xy, cuts)))


def dominant_labels(labels: np.ndarray) -> np.ndarray:
    """Per item, the class [N] among its set labels [N, C] that is most frequent in the whole set
    (ties: the lower class index); -1 for an item without labels."""
    lab = np.asarray(labels) > 0.5
    freq = lab.sum(0)
    score = np.where(lab, freq[None, :] * (lab.shape[1] + 1) - np.arange(lab.shape[1])[None, :], -1)
    return np.where(lab.any(1), score.argmax(1), -1)


def _label_names(n_classes: int, label_names: Sequence[str] | None) -> list[str]:
    if label_names is not None:
        return list(label_names)
    from xjepa_kit.data.labels import LABELS

    if n_classes == len(LABELS):
        return list(LABELS)
    from xjepa_kit.data.fmow import FMOW_CATEGORIES

    return list(FMOW_CATEGORIES) if n_classes == len(FMOW_CATEGORIES) else [f"class {i}" for i in range(n_classes)]


def plot_umap(coords: dict[str, np.ndarray], labels: np.ndarray, title: str = "",
              label_names: Sequence[str] | None = None) -> Figure:
    """Two panels of UMAP ``coords`` ({modality: [N, 2]}, items paired across modalities): points
    coloured by each item's dominant label (``labels`` [N, C], see :func:`dominant_labels`) and by
    modality; one marker per modality. Returns the figure."""
    plt = _plt()
    from matplotlib.lines import Line2D

    lab = np.asarray(labels)
    dom = dominant_labels(lab)
    names = _label_names(lab.shape[1], label_names)
    cmap = plt.get_cmap("tab20" if lab.shape[1] <= 20 else "gist_ncar")
    colour = (lambda k: cmap(k % 20)) if lab.shape[1] <= 20 else (lambda k: cmap(k / max(lab.shape[1] - 1, 1)))
    fig, (ax_lab, ax_mod) = plt.subplots(1, 2, figsize=(11.5, 4.6))
    for j, (m, xy) in enumerate(coords.items()):
        xy = np.asarray(xy)
        if len(xy) != len(dom):
            raise XJepaError(f"coords[{m!r}] has {len(xy)} points but labels has {len(dom)} rows")
        cols = [colour(k) if k >= 0 else (0.6, 0.6, 0.6, 1.0) for k in dom]
        ax_lab.scatter(xy[:, 0], xy[:, 1], c=cols, s=12, marker=MARKERS[j % len(MARKERS)], alpha=0.8, linewidths=0)
        ax_mod.scatter(xy[:, 0], xy[:, 1], color=f"C{j}", s=12, marker=MARKERS[j % len(MARKERS)], alpha=0.7,
                       linewidths=0, label=m)
    present = [k for k in np.unique(dom) if k >= 0]
    handles = [Line2D([], [], ls="", marker="o", color=colour(k), label=_short(names[k], 30)) for k in present]
    if (dom < 0).any():
        handles.append(Line2D([], [], ls="", marker="o", color=(0.6, 0.6, 0.6), label="(no label)"))
    ax_lab.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax_lab.set_title("dominant label", fontsize=9)
    ax_mod.legend(fontsize=8, markerscale=1.5)
    ax_mod.set_title("modality", fontsize=9)
    for ax in (ax_lab, ax_mod):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) without fixed points (one random n-cycle); n >= 2."""
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, np.int64)
    out[order] = np.roll(order, -1)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pair_distances(emb: Embeddings, seed: int = 0,
                   modalities: tuple[str, str] | None = None) -> dict[str, np.ndarray]:
    """Cosine distances [N] from each S1 vector to its own S2 partner (``"pairs"``) and to another
    item's S2 vector (``"non_pairs"``, a seeded derangement). ``modalities`` defaults to
    ("s1", "s2"), else the first two of ``emb.vectors``."""
    if modalities is None:
        modalities = ("s1", "s2") if {"s1", "s2"} <= set(emb.vectors) else tuple(list(emb.vectors)[:2])
    if len(modalities) != 2:
        raise XJepaError(f"pair_distances() needs two modalities, embeddings have {list(emb.vectors)}")
    a, b = (_unit(emb.vectors[m]) for m in modalities)
    if len(a) != len(b) or len(a) < 2:
        raise XJepaError(f"pair_distances() needs >= 2 paired vectors, got {len(a)} and {len(b)}")
    pairs = 1.0 - np.sum(a * b, axis=1)
    non_pairs = 1.0 - np.sum(a * b[_derangement(len(a), seed)], axis=1)
    return {"pairs": np.clip(pairs, 0, 2).astype(np.float32), "non_pairs": np.clip(non_pairs, 0, 2).astype(np.float32)}


def plot_pair_distances(before: Embeddings, after: Embeddings, seed: int = 0) -> Figure:
    """Histograms of pair vs non-pair cosine distance, before and after training (two axes)."""
    plt = _plt()
    dists = {"before training": pair_distances(before, seed), "after training": pair_distances(after, seed)}
    top = max(float(max(d["pairs"].max(), d["non_pairs"].max())) for d in dists.values())
    bins = np.linspace(0.0, max(top, 1e-3) * 1.02, 31)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=False)
    for ax, (name, d) in zip(axes, dists.items()):
        ax.hist(d["non_pairs"], bins=bins, alpha=0.6, color="C1", label=f"non-pairs (mean {d['non_pairs'].mean():.3f})")
        ax.hist(d["pairs"], bins=bins, alpha=0.6, color="C0", label=f"pairs (mean {d['pairs'].mean():.3f})")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("cosine distance S1 → S2")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("count")
    fig.tight_layout()
    return fig
