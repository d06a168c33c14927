"""Write docs/explorer.png (the explorer's gallery and map page, rendered by headless Chromium) and
docs/umap.png, from a checkpoint and a dataset (default: the FAST notebook run, created if needed):

    python scripts/make_readme_figures.py [--checkpoint runs/x/last.pt --data data/synthetic.packed]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from xjepa_kit import data, viz
from xjepa_kit.embeddings import embed
from xjepa_kit.explorer import RetrievalExplorer
from xjepa_kit.notebook import ensure_trained, settings

DOCS = Path(__file__).resolve().parents[1] / "docs"
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def shot(html: Path, png: Path, size: str, profile: str) -> np.ndarray:
    subprocess.run(CHROMIUM + [f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={png}",
                               html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(png).convert("RGB"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--query", type=int, default=0)
    args = p.parse_args()
    if args.checkpoint is None:
        s = settings(root=Path(__file__).resolve().parents[1])
        args.checkpoint, args.data = ensure_trained(s, "xjepa", progress=False), s.store
    val = data.open_dataset(args.data, split="val")
    emb = embed(args.checkpoint, val, num_workers=0)
    fig = viz.plot_umap(viz.umap_2d(emb.vectors), emb.labels, title="X-JEPA embeddings of the validation split")
    fig.savefig(DOCS / "umap.png", dpi=80)
    raw = data.open_dataset(args.data, split="val", normalize=False)
    ex = RetrievalExplorer(emb, raw, k=5, direction="s1->s2")
    ex.select(query=args.query)
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Path(tmp) / "gallery.html"
        gallery.write_text(f"<html><body style='margin:8px;font-family:sans-serif'>{ex.gallery.value}</body></html>")
        top = shot(gallery, Path(tmp) / "g.png", "1100,330", f"{tmp}/p1")
        bottom = shot(ex.to_html(Path(tmp) / "map.html"), Path(tmp) / "m.png", "1100,420", f"{tmp}/p2")
        Image.fromarray(np.concatenate([top, bottom])).save(DOCS / "explorer.png", optimize=True)
    print("wrote", DOCS / "umap.png", DOCS / "explorer.png")


if __name__ == "__main__":
    main()
