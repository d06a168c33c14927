"""Losses: PSA identity = mean Euclidean distance, PD fixed-trace metrics, VICReg and InfoNCE sanity."""

import pytest
import torch

from xjepa_kit.losses import PSAMetric, info_nce, l2_loss, vicreg_loss


def test_psa_identity_is_mean_euclidean_distance():
    torch.manual_seed(0)
    pred, target = torch.randn(4, 5, 16), torch.randn(4, 5, 16)
    psa = PSAMetric(16, "identity", eps=0.0)
    assert psa(pred, target).item() == pytest.approx((pred - target).norm(dim=-1).mean().item(), rel=1e-6)
    assert l2_loss(pred, target).item() == pytest.approx(((pred - target) ** 2).mean().item(), rel=1e-6)


@pytest.mark.parametrize("mode", ["covariance", "learned"])
def test_metric_stays_positive_definite_with_trace_d_while_training(mode):
    torch.manual_seed(0)
    dim = 8
    psa = PSAMetric(dim, mode, gamma=0.1, momentum=0.5)
    pred = torch.nn.Parameter(torch.randn(64, dim))
    target = torch.randn(64, dim) * torch.linspace(0.1, 3, dim)  # anisotropic targets
    opt = torch.optim.SGD(list(psa.parameters()) + [pred], lr=0.5)
    for _ in range(50):
        psa.update(target)
        loss = psa(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m = psa.matrix().detach()
    assert torch.allclose(m, m.T, atol=1e-5)
    assert torch.linalg.eigvalsh(m).min() > 0
    assert torch.trace(m).item() == pytest.approx(dim, rel=1e-5)
    if mode == "covariance":  # Mahalanobis: high-variance directions weigh less
        assert m[0, 0] > m[-1, -1]


def test_psa_with_a_precomputed_metric_equals_the_metric_it_computes():
    torch.manual_seed(0)
    psa = PSAMetric(8, "covariance", momentum=0.0)
    psa.update(torch.randn(256, 8) * torch.linspace(0.1, 3, 8))  # anisotropic: M is far from I
    pred, target = torch.randn(10, 8), torch.randn(10, 8)
    once = psa(pred, target, psa.matrix()).item()
    assert once == pytest.approx(psa(pred, target).item(), rel=1e-6)
    assert once != pytest.approx(PSAMetric(8, "identity")(pred, target).item(), rel=1e-2)


def test_learned_metric_cannot_collapse_the_loss():
    torch.manual_seed(1)
    psa = PSAMetric(6, "learned")
    delta_pred, target = torch.randn(32, 6), torch.zeros(32, 6)
    start = psa(delta_pred, target).item()
    opt = torch.optim.Adam(psa.parameters(), lr=0.1)
    for _ in range(200):  # only M may move: it can reweight directions, never shrink to zero
        loss = psa(delta_pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert psa(delta_pred, target).item() > 0.3 * start


def test_vicreg_terms():
    torch.manual_seed(0)
    z = torch.randn(64, 8)
    same = vicreg_loss(z, z)
    assert same["vic_inv"].item() == 0
    collapsed = vicreg_loss(torch.zeros(64, 8), torch.zeros(64, 8))
    assert collapsed["vic_var"].item() == pytest.approx(1.0, abs=0.02)  # std 0 -> hinge at 1
    correlated = torch.randn(64, 1).repeat(1, 8)
    assert vicreg_loss(correlated, correlated)["vic_cov"] > same["vic_cov"]


def test_info_nce_prefers_matched_pairs():
    torch.manual_seed(0)
    za = torch.randn(16, 8)
    scale = torch.tensor(2.0)
    assert info_nce(za, za, scale) < info_nce(za, torch.randn(16, 8), scale)
