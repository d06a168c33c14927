"""Losses (DESIGN 5): token L2, PSA with a fixed-trace positive-definite metric, VICReg, InfoNCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fp32(x: torch.Tensor):
    """A context without autocast on ``x``'s device: covariances and metrics need float32."""
    return torch.autocast(x.device.type, enabled=False)


def l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all target tokens: pred, target [B, K, D] -> scalar."""
    return F.mse_loss(pred.float(), target.float())


class PSAMetric(nn.Module):
    """Prediction Space Alignment: ``mean_i sqrt(delta_i^T M delta_i + eps)`` with M positive definite.

    Modes: ``covariance`` M = (Sigma + gamma I)^-1 with Sigma the EMA covariance of target tokens of
    both modalities; ``learned`` M = L L^T + eps I; ``identity`` M = I (Euclidean). Non-identity M
    is rescaled to trace D, so the loss cannot be lowered by shrinking M.
    """

    def __init__(self, dim: int, mode: str = "covariance", gamma: float = 0.1, momentum: float = 0.99,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if mode not in ("covariance", "learned", "identity"):
            raise ValueError(f"unknown PSA metric {mode!r}")
        self.dim, self.mode, self.gamma, self.momentum, self.eps = dim, mode, gamma, momentum, eps
        if mode == "covariance":
            self.register_buffer("cov", torch.eye(dim))
        elif mode == "learned":
            self.chol = nn.Parameter(torch.eye(dim))

    def matrix(self) -> torch.Tensor:
        """The metric M [D, D] (float32)."""
        if self.mode == "identity":
            return torch.eye(self.dim, device=self._device())
        eye = torch.eye(self.dim, device=self._device())
        if self.mode == "covariance":
            # inv_ex without its error check: Sigma + gamma*I is positive definite, and the check would make
            # the host wait for the GPU once per step.
            m = torch.linalg.inv_ex(self.cov.float() + self.gamma * eye).inverse
            m = 0.5 * (m + m.T)
        else:
            m = self.chol.float() @ self.chol.float().T + self.eps * eye
        return m * (self.dim / torch.diagonal(m).sum())

    def _device(self) -> torch.device:
        return self.cov.device if self.mode == "covariance" else (
            self.chol.device if self.mode == "learned" else torch.device("cpu"))

    @torch.no_grad()
    def update(self, tokens: torch.Tensor) -> None:
        """EMA update of the covariance from target tokens [T, D] (covariance mode only)."""
        if self.mode != "covariance":
            return
        t = tokens.reshape(-1, self.dim).float()
        with fp32(t):
            # new_full fills on the device; new_tensor([n]) was a host-to-device copy, one wait per step
            stats = torch.cat([t.new_full((1,), t.shape[0]), t.sum(0), (t.T @ t).reshape(-1)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)  # global statistics: every DDP rank keeps the same M
        n, total, gram = stats[0], stats[1:1 + self.dim], stats[1 + self.dim:].reshape(self.dim, self.dim)
        mean = total / n
        batch_cov = (gram - n * torch.outer(mean, mean)) / (n - 1).clamp_min(1)
        self.cov.mul_(self.momentum).add_(batch_cov, alpha=1 - self.momentum)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, metric: torch.Tensor | None = None) -> torch.Tensor:
        """pred, target [..., D] -> scalar mean Mahalanobis distance (computed in float32).

        ``metric``: :meth:`matrix`, when the caller already computed it for this step (one inverse per step).
        """
        delta = (pred.float() - target.float()).reshape(-1, self.dim)
        with fp32(delta):
            if self.mode == "identity":
                q = (delta * delta).sum(-1)
            else:
                q = ((delta @ (self.matrix() if metric is None else metric)) * delta).sum(-1)
            return torch.sqrt(q.clamp_min(0) + self.eps).mean()


def vicreg_loss(za: torch.Tensor, zb: torch.Tensor, weights: tuple[float, float, float] = (1.0, 1.0, 0.04),
                eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """VICReg between paired embeddings za, zb [B, P]: invariance, variance, covariance and weighted sum."""
    za, zb = za.float(), zb.float()
    with fp32(za):
        return _vicreg_fp32(za, zb, weights, eps)


def _vicreg_fp32(za: torch.Tensor, zb: torch.Tensor, weights: tuple[float, float, float],
                 eps: float) -> dict[str, torch.Tensor]:
    inv = F.mse_loss(za, zb)
    var = cov = za.new_zeros(())
    for z in (za, zb):
        std = torch.sqrt(z.var(dim=0) + eps)
        var = var + F.relu(1 - std).mean() / 2
        zc = z - z.mean(0)
        c = zc.T @ zc / max(z.shape[0] - 1, 1)
        off = c - torch.diag(torch.diagonal(c))
        cov = cov + off.pow(2).sum() / z.shape[1]
    total = weights[0] * inv + weights[1] * var + weights[2] * cov
    return {"vicreg": total, "vic_inv": inv, "vic_var": var, "vic_cov": cov}


def info_nce(za: torch.Tensor, zb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of paired embeddings za, zb [B, P]; ``logit_scale`` = log(1 / temperature)."""
    za, zb = F.normalize(za.float(), dim=-1), F.normalize(zb.float(), dim=-1)
    logits = logit_scale.exp().clamp(max=100) * za @ zb.T
    labels = torch.arange(len(za), device=za.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
