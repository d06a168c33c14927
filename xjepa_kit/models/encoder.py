"""A timm ViT per modality, wrapped by composition so masks apply between patch embedding and blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Tokens ``x`` [B, N, D] at indices ``idx`` [B, K] -> [B, K, D]."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class ViTEncoder(nn.Module):
    """Patch embedding + positional embedding -> keep the given tokens -> transformer blocks -> norm.

    Built from timm's ``VisionTransformer`` (no class token, no head; fused scaled-dot-product
    attention). ``forward(x [B, C, H, W], keep [B, K] | None) -> [B, K or N, D]``.
    """

    def __init__(self, in_chans: int, img_size: int = 120, patch_size: int = 15, embed_dim: int = 192,
                 depth: int = 4, num_heads: int = 3, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.vit = VisionTransformer(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=0, global_pool="",
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
            class_token=False, drop_path_rate=drop_path, dynamic_img_size=False)
        self.grid = img_size // patch_size
        self.num_tokens = self.grid * self.grid
        self.embed_dim = embed_dim

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened patches in raster order: x [B, C, H, W] -> [B, N, C*p*p]."""
        b, c, h, w = x.shape
        p = self.vit.patch_embed.proj.kernel_size[0]
        return x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)

    def embed_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Patch embedding as one matrix product: [B, K, C*p*p] -> [B, K, D].

        The same weights and result as timm's strided convolution, and faster on CPU (one GEMM instead
        of a convolution with a kernel as large as its stride).
        """
        proj = self.vit.patch_embed.proj
        return self.vit.patch_embed.norm(F.linear(patches, proj.weight.reshape(proj.out_channels, -1), proj.bias))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding of every patch: x [B, C, H, W] -> tokens [B, N, D]."""
        return self.embed_patches(self.patches(x))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, C, H, W], keep [B, K] | None -> [B, K or N, D]."""
        return self.forward_patches(self.patches(x), keep)

    def forward_patches(self, patches: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Flattened patches [B, N, C*p*p] (:meth:`patches`), keep [B, K] | None -> [B, K or N, D].

        With ``keep`` only the kept patches are embedded (gathered before the projection, which is
        per patch): the context encoders skip the projection of the masked patches and its gradient.
        """
        vit = self.vit
        pos = vit.pos_embed                                                      # [1, N, D]
        if keep is not None:
            patches = gather_tokens(patches, keep)
            pos = gather_tokens(pos.expand(len(keep), -1, -1), keep)
        tokens = vit.pos_drop(self.embed_patches(patches) + pos)
        return vit.norm(vit.blocks(tokens))
