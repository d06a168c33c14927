"""Model registry: ``build_model(cfg)`` picks a model by ``cfg.model.method``.

Add a method by writing a builder ``fn(cfg) -> nn.Module`` in a new file and decorating it with
``@register_model("name")``; the module must be imported in :func:`_load_builtin`.
Every model has ``forward(batch) -> dict`` (with ``"loss"``), ``embed(x, modality) -> [B, D]``,
``ema_update(momentum)``, ``modalities`` and ``uses_masks``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

MODEL_BUILDERS: dict[str, Callable] = {}


def register_model(name: str) -> Callable:
    """Decorator adding a builder to the registry under ``name``."""
    def wrap(fn: Callable) -> Callable:
        MODEL_BUILDERS[name] = fn
        return fn
    return wrap


def _load_builtin() -> None:
    from xjepa_kit.models import builders  # noqa: F401  (registers the built-in methods)


def build_model(cfg) -> nn.Module:
    """The model named by ``cfg.model.method``, built from the config."""
    _load_builtin()
    from xjepa_kit.config import ConfigError

    method = cfg.model.method
    if method not in MODEL_BUILDERS:
        raise ConfigError(f"config key 'model.method' is {method!r}; known methods: {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[method](cfg)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level part (``encoders.s1``, ``predictors.s1->s2``, ...), trainable or not."""
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] in ("encoders", "targets", "predictors", "heads") else parts[0]
        counts[key] = counts.get(key, 0) + p.numel()
    return counts
