"""Embedding a dataset with a trained model: per-modality L2-normalised vectors with ids, labels, bounds.

``embed(model_or_checkpoint, dataset)`` -> :class:`Embeddings`; under torchrun each rank embeds its
shard (indices ``rank::world``) and rank 0 receives the merged result in dataset order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from xjepa_kit.embedding_store import Embeddings, checkpoint_hash
from xjepa_kit.errors import XJepaError

__all__ = ["Embeddings", "checkpoint_hash", "embed", "load_model"]


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu",
               embed_from: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint from its stored config -> (model in eval mode, meta).

    ``meta["config"]`` holds the training config (a dict), e.g. to open the same kind of dataset.
    ``embed_from`` (target, context, prediction) replaces the run's ``model.embed_from``.
    """
    from xjepa_kit.checkpoint import check_compatible, load_checkpoint
    from xjepa_kit.config import config_from_dict, validate
    from xjepa_kit.models import build_model

    ckpt = load_checkpoint(checkpoint, map_location=device)
    cfg = config_from_dict(ckpt["config"])
    if embed_from is not None:
        cfg.model.embed_from = embed_from
        validate(cfg)  # names the key: an unknown value, or prediction for a method without cross predictors
    model = build_model(cfg)
    check_compatible(ckpt, model, cfg.model.method, checkpoint)
    model.load_state_dict(ckpt["model"])
    meta = {"checkpoint": str(checkpoint), "checkpoint_hash": checkpoint_hash(checkpoint),
            "method": cfg.model.method, "step": int(ckpt["step"]), "modalities": list(cfg.model.modalities),
            "embed_from": cfg.model.embed_from,
            "config": ckpt["config"]}
    return model.to(device).eval(), meta


@torch.no_grad()
def _embed_loader(model: nn.Module, loader: DataLoader, device: torch.device) -> dict:
    cross = model.cross_directions() if hasattr(model, "cross_directions") else []  # embed_from=prediction
    out: dict[str, list] = {"ids": [], "labels": [], "bounds": [], **{m: [] for m in model.modalities},
                            **{f"{s}->{t}": [] for s, t in cross}}
    amp = device.type == "cuda"
    for batch in loader:
        x = {m: batch[m].to(device, non_blocking=True) for m in model.modalities}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for m in model.modalities:
                out[m].append(model.embed(x[m], m).float().cpu().numpy())
            for s, t in cross:
                out[f"{s}->{t}"].append(model.embed_predicted(x[s], s, t).float().cpu().numpy())
        out["ids"] += list(batch["id"])
        out["labels"].append(batch["labels"].numpy() > 0.5)
        b = batch["bounds"]  # a tensor [B, 4], or 4 tensors [B] when a dataset returns tuples
        out["bounds"].append(np.stack([np.asarray(x, np.float64) for x in b], 1) if isinstance(b, (list, tuple))
                             else np.asarray(b, dtype=np.float64))
    return out


def embed(model: nn.Module | str | Path, dataset: Dataset, batch_size: int = 64, num_workers: int = 2,
          device: str | torch.device | None = None) -> Embeddings:
    """Embed every sample of ``dataset`` with each modality's encoder (rank 0 gets all under torchrun)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    meta: dict = {}
    if not isinstance(model, nn.Module):
        model, meta = load_model(model, device)
    model = model.to(device).eval()
    dist = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if dist else (0, 1)
    order = np.arange(rank, len(dataset), world)
    loader = DataLoader(Subset(dataset, order.tolist()), batch_size=batch_size, num_workers=num_workers)
    part = _embed_loader(model, loader, device)
    part["order"] = order
    parts = [part]
    if world > 1:
        gathered = [None] * world if rank == 0 else None
        torch.distributed.gather_object(part, gathered, dst=0)
        if rank != 0:
            return Embeddings({}, np.array([]), np.zeros((0, 0), bool), np.zeros((0, 4)), meta)
        parts = gathered
    order = np.concatenate([p["order"] for p in parts])
    perm = np.argsort(order, kind="stable")
    if not any(p["ids"] for p in parts):
        raise XJepaError("nothing to embed: the dataset is empty")
    cat = lambda key: np.concatenate([a for p in parts for a in p[key]])  # noqa: E731
    vectors = {m: cat(m)[perm].astype(np.float32) for m in model.modalities}
    cross = {d: cat(d)[perm].astype(np.float32) for d in parts[0] if "->" in d}
    ids = np.array(sum((p["ids"] for p in parts), []))[perm]
    dim = next(iter(vectors.values())).shape[-1]
    meta = {**meta, "dim": int(dim), "count": int(len(ids))}
    if hasattr(model, "embed_from"):
        meta["embed_from"] = model.embed_from
    return Embeddings(vectors, ids, cat("labels")[perm].astype(bool), cat("bounds")[perm], meta, cross)
