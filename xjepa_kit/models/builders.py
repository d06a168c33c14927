"""Built-in methods: ``xjepa``, ``ijepa`` (unimodal + VICReg), ``contrastive`` and ``random`` (untrained)."""

from __future__ import annotations

import dataclasses

from xjepa_kit.models import register_model
from xjepa_kit.models.baselines import ContrastiveModel
from xjepa_kit.models.xjepa import XJEPA


def _common(cfg) -> dict:
    m = cfg.model
    return {"modalities": tuple(m.modalities), "in_chans": tuple(m.in_chans),
            "encoder": dataclasses.asdict(m.encoder)}


def _jepa(cfg, directions=None, psa_weight=None) -> XJEPA:
    m, lc = cfg.model, cfg.loss
    pred = dataclasses.asdict(m.predictor)
    shared, num_queries = pred.pop("shared_queries"), pred.pop("num_queries")
    return XJEPA(**_common(cfg), predictor=pred, directions=directions, shared_queries=shared,
                 num_queries=num_queries,
                 psa={"mode": lc.psa_metric, "gamma": lc.psa_gamma, "momentum": lc.psa_momentum, "eps": lc.psa_eps},
                 weights={"l2": lc.l2, "psa": lc.psa if psa_weight is None else psa_weight, "vicreg": lc.vicreg},
                 vicreg_weights=tuple(lc.vicreg_weights), projector_dim=m.projector_dim, embed_from=m.embed_from)


@register_model("xjepa")
def build_xjepa(cfg) -> XJEPA:
    """Cross-modal prediction a->b and b->a, L2 + PSA + VICReg (weights from ``cfg.loss``)."""
    return _jepa(cfg)


@register_model("random")
def build_random(cfg) -> XJEPA:
    """Untrained encoders (X-JEPA architecture); ``xjepa pretrain`` saves it without training."""
    return _jepa(cfg)


@register_model("ijepa")
def build_ijepa(cfg) -> XJEPA:
    """Unimodal I-JEPA per modality (a->a, b->b) + VICReg between modalities; PSA is not used."""
    a, b = cfg.model.modalities
    return _jepa(cfg, directions=[(a, a), (b, b)], psa_weight=0.0)


@register_model("contrastive")
def build_contrastive(cfg) -> ContrastiveModel:
    """Symmetric InfoNCE between pooled embeddings, learnable temperature."""
    return ContrastiveModel(**_common(cfg), projector_dim=cfg.model.projector_dim,
                            temperature=cfg.loss.infonce_temperature)
