"""X-JEPA: cross-modal joint-embedding prediction with EMA targets, shared queries and PSA (DESIGN 4-5).

One step, split as in I-JEPA: :meth:`forward_target` (EMA encoders, no grad, once per modality),
:meth:`forward_context` (online encoders on the shared context positions) and :meth:`loss`.
The same class with ``directions=[(a, a), (b, b)]`` is the unimodal ``ijepa`` baseline.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from xjepa_kit.losses import PSAMetric, l2_loss, vicreg_loss
from xjepa_kit.masks import BlockMasks
from xjepa_kit.models.encoder import ViTEncoder, gather_tokens
from xjepa_kit.models.predictor import CrossModalPredictor


def projector(dim: int, out: int) -> nn.Sequential:
    """Small MLP projector for VICReg: [B, dim] -> [B, out].

    Batch norm always uses batch statistics (no running buffers): the projector only serves the
    training loss, and DDP ranks then hold identical state.
    """
    return nn.Sequential(nn.Linear(dim, out), nn.BatchNorm1d(out, track_running_stats=False), nn.ReLU(inplace=True),
                         nn.Linear(out, out))


class XJEPA(nn.Module):
    """Two modality encoders, their EMA targets, predictors per direction, PSA metric, VICReg projector."""

    uses_masks = True

    def __init__(self, modalities: tuple[str, str], in_chans: tuple[int, int], encoder: dict, predictor: dict,
                 directions: list[tuple[str, str]] | None = None, shared_queries: bool = True,
                 num_queries: int = 16, psa: dict | None = None, weights: dict | None = None,
                 vicreg_weights: tuple[float, float, float] = (1.0, 1.0, 0.04), projector_dim: int = 256,
                 embed_from: str = "target") -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        a, b = self.modalities
        self.directions = directions or [(a, b), (b, a)]
        self.encoders = nn.ModuleDict({m: ViTEncoder(c, **encoder) for m, c in zip(modalities, in_chans)})
        self.targets = copy.deepcopy(self.encoders)
        for p in self.targets.parameters():
            p.requires_grad_(False)
        dim, grid = self.encoders[a].embed_dim, self.encoders[a].grid
        self.predictors = nn.ModuleDict({f"{s}->{t}": CrossModalPredictor(dim, grid, **predictor)
                                         for s, t in self.directions})
        width = predictor.get("embed_dim", 96)
        self.shared_queries = shared_queries and num_queries > 0
        if self.shared_queries:  # the same anchors in every predictor
            self.queries = nn.Parameter(torch.randn(num_queries, width) * 0.02)
        elif num_queries > 0:
            self.direction_queries = nn.ParameterDict({
                f"{s}->{t}".replace(">", "_"): nn.Parameter(torch.randn(num_queries, width) * 0.02)
                for s, t in self.directions})
        self.psa = PSAMetric(dim, **(psa or {}))
        self.weights = {"l2": 1.0, "psa": 1.0, "vicreg": 1.0, **(weights or {})}
        self.vicreg_weights = tuple(vicreg_weights)
        self.projector = projector(dim, projector_dim) if self.weights["vicreg"] > 0 else None
        self.embed_from = embed_from

    def train(self, mode: bool = True) -> XJEPA:
        """Training mode for everything but the EMA targets, which stay deterministic (no drop-path)."""
        super().train(mode)
        self.targets.eval()
        return self

    def _queries(self, direction: str) -> torch.Tensor | None:
        if self.shared_queries:
            return self.queries
        if hasattr(self, "direction_queries"):
            return self.direction_queries[direction.replace(">", "_")]
        return None

    def patches(self, batch: dict) -> dict[str, torch.Tensor]:
        """Flattened patches per modality [B, N, C*p*p], extracted once for the target and context encoders."""
        return {m: self.encoders[m].patches(batch[m]) for m in self.modalities}

    @torch.no_grad()
    def forward_target(self, batch: dict, patches: dict | None = None) -> dict[str, torch.Tensor]:
        """Layer-normalised EMA-encoder tokens per modality [B, N, D], computed once each."""
        patches = patches or self.patches(batch)
        out = {}
        for m in self.modalities:
            h = self.targets[m].forward_patches(patches[m])
            out[m] = F.layer_norm(h, h.shape[-1:])
        return out

    def forward_context(self, batch: dict, masks: BlockMasks, patches: dict | None = None) -> dict[str, torch.Tensor]:
        """Online-encoder tokens at the shared context positions, per modality [B, Kc, D]."""
        patches = patches or self.patches(batch)
        return {m: self.encoders[m].forward_patches(patches[m], masks.context) for m in self.modalities}

    def loss(self, ctx: dict, tgt: dict, masks: BlockMasks) -> dict[str, torch.Tensor]:
        """Weighted L2 + PSA over every direction, plus VICReg on pooled context embeddings."""
        b, m, kt = masks.targets.shape
        terms: dict[str, torch.Tensor] = {}
        if self.training and self.psa.mode == "covariance" and self.weights["psa"] > 0:
            self.psa.update(torch.cat([tgt[x].reshape(-1, tgt[x].shape[-1]) for x in self.modalities]))
        l2 = psa = 0.0
        metric = self.psa.matrix() if self.weights["psa"] > 0 else None  # [D, D], once for every direction
        for s, t in self.directions:
            key = f"{s}->{t}"
            target_ctx = ctx[t] if self.predictors[key].cross is not None else None
            pred = self.predictors[key](ctx[s], masks.context, masks.targets, self._queries(key), target_ctx)
            target = gather_tokens(tgt[t], masks.targets.reshape(b, m * kt)).reshape(b * m, kt, -1)
            l2 = l2 + l2_loss(pred, target) / len(self.directions)
            if self.weights["psa"] > 0:
                psa = psa + self.psa(pred, target, metric) / len(self.directions)
        terms["l2"] = torch.as_tensor(l2)
        total = self.weights["l2"] * terms["l2"]
        if self.weights["psa"] > 0:
            terms["psa"] = psa
            total = total + self.weights["psa"] * psa
        if self.projector is not None:
            a, bm = self.modalities
            za, zb = self.projector(ctx[a].mean(1)), self.projector(ctx[bm].mean(1))
            terms.update(vicreg_loss(za, zb, self.vicreg_weights))
            total = total + self.weights["vicreg"] * terms["vicreg"]
        terms["loss"] = total
        return terms

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """One training step's loss terms for a collated batch with ``batch["masks"]``."""
        masks = batch["masks"]
        patches = self.patches(batch)  # shared: the patch layout is the same for targets and encoders
        tgt = self.forward_target(batch, patches)
        return self.loss(self.forward_context(batch, masks, patches), tgt, masks)

    @torch.no_grad()
    def ema_update(self, momentum: float) -> None:
        """targets <- momentum * targets + (1 - momentum) * encoders (one pass: lerp towards the encoders)."""
        torch._foreach_lerp_(list(self.targets.parameters()), list(self.encoders.parameters()), 1.0 - momentum)

    @torch.no_grad()
    def embed(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Retrieval embedding: mean-pooled final tokens, L2-normalised. x [B, C, H, W] -> [B, D].

        ``embed_from``: ``target`` (EMA encoder), ``context`` (online encoder) or ``prediction``: the
        layer-normalised EMA tokens, the space the predictors regress into (cross-modal queries then come
        from :meth:`embed_predicted`).
        """
        if self.embed_from == "prediction":
            h = self.targets[modality](x)
            return F.normalize(F.layer_norm(h, h.shape[-1:]).mean(1).float(), dim=-1)
        enc = self.targets if self.embed_from == "target" else self.encoders
        return F.normalize(enc[modality](x).mean(1).float(), dim=-1)

    def cross_directions(self) -> list[tuple[str, str]]:
        """The (source, target) pairs whose queries are embedded through a predictor (``embed_from=prediction``)."""
        if self.embed_from != "prediction":
            return []
        return [(s, t) for s, t in self.directions if s != t]

    @torch.no_grad()
    def embed_predicted(self, x: torch.Tensor, source: str, target: str) -> torch.Tensor:
        """A ``source`` image as a query for ``target`` items: x [B, C, H, W] -> [B, D], L2-normalised.

        P(source->target) sees every online-encoder token of ``x`` as context and predicts the target
        modality's layer-normalised EMA tokens at every position; their mean is compared with the
        target items' :meth:`embed` vectors. A predictor with cross-attention gets no target-modality
        context here (a query has only its own sensor).
        """
        key = f"{source}->{target}"
        tokens = self.encoders[source](x)                                        # [B, N, D]
        b, n = tokens.shape[:2]
        everywhere = torch.arange(n, device=x.device).expand(b, n)
        pred = self.predictors[key](tokens, everywhere, everywhere.unsqueeze(1), self._queries(key))  # [B, N, D]
        return F.normalize(pred.mean(1).float(), dim=-1)
