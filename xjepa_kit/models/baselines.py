"""The contrastive baseline: symmetric InfoNCE between pooled S1 and S2 embeddings (CROMA/DeCUR family).

Same encoders, data and budget as X-JEPA, for ablation tables; never a claim about published methods.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xjepa_kit.losses import info_nce
from xjepa_kit.models.encoder import ViTEncoder


class ContrastiveModel(nn.Module):
    """Per-modality encoder + linear projection, InfoNCE with a learnable temperature."""

    uses_masks = False

    def __init__(self, modalities: tuple[str, str], in_chans: tuple[int, int], encoder: dict,
                 projector_dim: int = 256, temperature: float = 0.07) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.encoders = nn.ModuleDict({m: ViTEncoder(c, **encoder) for m, c in zip(modalities, in_chans)})
        dim = self.encoders[self.modalities[0]].embed_dim
        self.heads = nn.ModuleDict({m: nn.Linear(dim, projector_dim) for m in self.modalities})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def project(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Mean-pooled tokens through the modality's head: x [B, C, H, W] -> [B, P] (the shared space)."""
        return self.heads[modality](self.encoders[modality](x).mean(1))

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        a, b = self.modalities
        za, zb = self.project(batch[a], a), self.project(batch[b], b)
        loss = info_nce(za, zb, self.logit_scale)
        return {"loss": loss, "infonce": loss.detach(), "temperature": (-self.logit_scale.detach()).exp()}

    def ema_update(self, momentum: float) -> None:
        """No EMA targets in this baseline."""

    @torch.no_grad()
    def embed(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Retrieval embedding in the space InfoNCE aligned, L2-normalised: x [B, C, H, W] -> [B, P].

        The heads are per modality, so the pooled encoder tokens of S1 and S2 live in different
        spaces; only after the heads are they comparable across modalities (as in CLIP).
        """
        return F.normalize(self.project(x, modality).float(), dim=-1)
