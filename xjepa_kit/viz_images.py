"""Image pictures: S2 RGB / false-colour / SWIR and S1 SAR composites, sample rows, mask overlays.

Composites use a per-channel percentile stretch, so S2 composites (and SAR's VV and VH channels) look
the same for physical units and band-normalised inputs; SAR's VV-VH channel needs dB.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

from xjepa_kit.data.bands import S2_BANDS_10, S2_BANDS_12
from xjepa_kit.data.labels import names_from_multihot
from xjepa_kit.errors import XJepaError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from xjepa_kit.masks import BlockMasks

COMPOSITES: dict[str, tuple[str, str, str]] = {
    "rgb": ("B04", "B03", "B02"),  # true colour
    "false": ("B08", "B04", "B03"),  # NIR false colour: vegetation red
    "swir": ("B12", "B8A", "B04"),  # short-wave infrared: soil / moisture
}
CONTEXT_COLOUR = (0.25, 0.45, 1.0)
TARGET_COLOURS = ((1.0, 0.2, 0.2), (1.0, 0.65, 0.0), (1.0, 1.0, 0.2), (0.9, 0.25, 0.9),
                  (0.2, 0.9, 0.35), (0.2, 0.9, 0.9), (0.6, 0.35, 0.15), (1.0, 1.0, 1.0))
_INTERACTIVE = ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl",
                "module://ipympl.backend_nbagg")


def _plt():
    """``matplotlib.pyplot``, imported lazily; Agg unless an inline / widget backend is active."""
    import matplotlib

    if matplotlib.get_backend().lower() not in _INTERACTIVE:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _np(x) -> np.ndarray:
    """A numpy array from a numpy array or a torch tensor (any device)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def stretch(x: np.ndarray, pct: tuple[float, float] = (2, 98)) -> np.ndarray:
    """Percentile stretch of one channel [H, W] to float32 [0, 1]; a constant channel gives 0."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, np.float32)
    lo, hi = np.percentile(x[finite], pct)
    if not hi > lo:
        return np.zeros(x.shape, np.float32)
    out = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return np.where(finite, out, 0.0).astype(np.float32)


def rgb(s2, bands: tuple[str, ...] = S2_BANDS_10, kind: str = "rgb",
        pct: tuple[float, float] = (2, 98)) -> np.ndarray:
    """S2 composite [H, W, 3] float32 in [0, 1] from ``s2`` [C, H, W] (numpy or torch).

    ``kind``: "rgb" (B04 B03 B02), "false" (B08 B04 B03) or "swir" (B12 B8A B04); ``bands`` names
    the channels of ``s2`` in order (a 12-channel array with the default is read as S2_BANDS_12).
    """
    arr = _np(s2)
    if arr.ndim != 3:
        raise XJepaError(f"rgb() needs s2 as [C, H, W], got shape {arr.shape}")
    if kind not in COMPOSITES:
        raise XJepaError(f"unknown composite kind {kind!r}: use one of {sorted(COMPOSITES)}")
    bands = tuple(bands)
    if len(bands) != arr.shape[0] and bands == S2_BANDS_10 and arr.shape[0] == 12:
        bands = S2_BANDS_12
    if len(bands) != arr.shape[0]:
        raise XJepaError(f"s2 has {arr.shape[0]} channels but {len(bands)} band names were given")
    return np.stack([stretch(arr[bands.index(b)], pct) for b in COMPOSITES[kind]], axis=-1)


def sar(s1, pct: tuple[float, float] = (2, 98)) -> np.ndarray:
    """S1 composite [H, W, 3] float32 in [0, 1] from ``s1`` [2, H, W] dB (VV, VH): R=VV, G=VH, B=VV-VH."""
    arr = _np(s1).astype(np.float64)
    if arr.ndim != 3 or arr.shape[0] != 2:
        raise XJepaError(f"sar() needs s1 as [2, H, W] (VV, VH), got shape {arr.shape}")
    vv, vh = arr
    return np.stack([stretch(vv, pct), stretch(vh, pct), stretch(vv - vh, pct)], axis=-1)


def _short(name: str, n: int = 26) -> str:
    return name if len(name) <= n else name[: n - 1].rstrip(" ,") + "…"


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_pairs(samples: list[dict], titles: list[str] | None = None, bands: tuple[str, ...] = S2_BANDS_10) -> Figure:
    """One row per sample (``"s1"`` [2, H, W], ``"s2"`` [C, H, W], optional ``"labels"`` [19]):
    RGB, false colour and SAR, with the row's label names as caption. Returns the figure."""
    plt = _plt()
    n = len(samples)
    if n == 0:
        raise XJepaError("plot_pairs() needs at least one sample")
    fig, axes = plt.subplots(n, 3, figsize=(6.3, 2.25 * n), squeeze=False)
    heads = ("RGB (B04 B03 B02)", "False colour (B08 B04 B03)", "SAR (VV, VH, VV−VH)")
    for r, sample in enumerate(samples):
        pics = (rgb(sample["s2"], bands), rgb(sample["s2"], bands, kind="false"), sar(sample["s1"]))
        for c, pic in enumerate(pics):
            ax = axes[r, c]
            ax.imshow(pic, interpolation="nearest")
            _bare(ax)
            if r == 0:
                ax.set_title(heads[c], fontsize=9)
        if titles is not None and r < len(titles):
            axes[r, 0].set_ylabel(titles[r], fontsize=8)
        if sample.get("labels") is not None:
            names = [_short(x) for x in names_from_multihot(_np(sample["labels"]))] or ["(no label)"]
            axes[r, 1].set_xlabel(textwrap.fill("; ".join(names), 70), fontsize=7)
    fig.tight_layout()
    return fig


def _cell_edges(size: int, grid: int) -> np.ndarray:
    return np.round(np.linspace(0, size, grid + 1)).astype(int)


def mask_overlay(image: np.ndarray, context, targets, grid: int, alpha: float = 0.5) -> np.ndarray:
    """Tint token cells on ``image`` [H, W, 3]: ``context`` [Kc] in one colour, each block of
    ``targets`` [M, Kt] in its own. Token t covers row t // grid, column t % grid of a grid x grid
    partition of the image. Returns a new float32 [H, W, 3] array; other pixels are unchanged."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise XJepaError(f"mask_overlay() needs an image [H, W, 3], got shape {img.shape}")
    out = img.copy()
    ys, xs = _cell_edges(img.shape[0], grid), _cell_edges(img.shape[1], grid)
    ctx = _np(context).reshape(-1)
    tgt = np.atleast_2d(_np(targets))
    layers = [(ctx, CONTEXT_COLOUR)] + [(blk, TARGET_COLOURS[j % len(TARGET_COLOURS)]) for j, blk in enumerate(tgt)]
    for tokens, colour in layers:  # targets drawn after the context: they win where both overlap
        tint = np.zeros(grid * grid, bool)
        tint[np.asarray(tokens, dtype=np.int64)] = True
        for t in np.flatnonzero(tint):
            r, c = divmod(int(t), grid)
            sl = (slice(ys[r], ys[r + 1]), slice(xs[c], xs[c + 1]))
            out[sl] = (1 - alpha) * img[sl] + alpha * np.asarray(colour, np.float32)
    return out


def plot_masks(s1, s2, masks: BlockMasks, index: int = 0, grid: int = 8,
               bands: tuple[str, ...] = S2_BANDS_10) -> Figure:
    """S2 RGB and S1 SAR of one sample with the same context / target overlay (:class:`BlockMasks`).

    ``s1`` / ``s2`` are [C, H, W] or a batch [B, C, H, W] (then sample ``index`` is drawn); masks
    give ``context`` [B, Kc] and ``targets`` [B, M, Kt]. Returns the figure (two axes)."""
    from matplotlib.patches import Patch

    plt = _plt()
    s1, s2 = _np(s1), _np(s2)
    if s1.ndim == 4:
        s1, s2 = s1[index], s2[index]
    context, targets = _np(masks.context)[index], _np(masks.targets)[index]
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 4.0))
    for ax, pic, name in zip(axes, (rgb(s2, bands), sar(s1)), ("S2 RGB", "S1 SAR (VV, VH, VV−VH)")):
        ax.imshow(mask_overlay(pic, context, targets, grid), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        _bare(ax)
    handles = [Patch(color=CONTEXT_COLOUR, label=f"context ({len(context)} tokens)")]
    handles += [Patch(color=TARGET_COLOURS[j % len(TARGET_COLOURS)], label=f"target {j + 1}")
                for j in range(len(targets))]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return fig
