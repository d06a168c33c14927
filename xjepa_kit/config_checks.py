"""Checks of a resolved config beyond key names and types: choices, ranges, list lengths, cross-field rules.

Each failure is one :class:`~xjepa_kit.config.ConfigError` that names the key and what to give instead.
"""

from __future__ import annotations

from xjepa_kit.config import Config, ConfigError

# key -> smallest allowed value (the bound itself is allowed)
_AT_LEAST = {
    "data.batch_size": 1, "data.num_workers": 0,
    "model.encoder.img_size": 1, "model.encoder.patch_size": 1, "model.encoder.embed_dim": 1,
    "model.encoder.depth": 1, "model.encoder.num_heads": 1, "model.predictor.embed_dim": 1,
    "model.predictor.depth": 1, "model.predictor.num_heads": 1, "model.predictor.num_queries": 0,
    "model.projector_dim": 1, "mask.num_targets": 1, "mask.min_keep": 1,
    "train.steps": 1, "train.warmup_steps": 0, "train.seed": 0, "train.threads": 0, "train.lr": 0.0,
    "train.min_lr": 0.0, "train.clip_grad": 0.0, "train.time_limit_s": 0.0, "train.log_every": 1,
    "train.ckpt_every": 0, "loss.l2": 0.0, "loss.psa": 0.0, "loss.vicreg": 0.0,
    "loss.psa_gamma": 0.0, "loss.infonce_temperature": 1e-4,
}
# list keys that hold exactly two numbers (start -> end, or low - high), with the range each number must lie in
_PAIRS = {
    "train.ema": (0.0, 1.0, "[0.996, 1.0]"), "train.weight_decay": (0.0, None, "[0.04, 0.4]"),
    "mask.target_scale": (0.0, 1.0, "[0.15, 0.2]"), "mask.context_scale": (0.0, 1.0, "[0.85, 1.0]"),
    "mask.target_aspect": (0.0, None, "[0.75, 1.5]"),
}
_ORDERED = ("mask.target_scale", "mask.context_scale", "mask.target_aspect")  # low <= high


def _get(cfg: Config, key: str):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def check_ranges(cfg: Config) -> None:
    """Numbers in range and two-number lists of length two (train.ema=[0.9] would fail mid-run otherwise)."""
    for key, least in _AT_LEAST.items():
        if _get(cfg, key) < least:
            raise ConfigError(f"config key {key!r} must be at least {least}, got {_get(cfg, key)!r}")
    for key, (low, high, example) in _PAIRS.items():
        value = _get(cfg, key)
        if len(value) != 2:
            raise ConfigError(f"config key {key!r} needs two numbers, e.g. {key}={example} (the default), got {value!r}")
        if any(v < low or (high is not None and v > high) for v in value):
            raise ConfigError(f"config key {key!r} values must lie in [{low}, {high if high is not None else 'inf'}], "
                              f"got {value!r}")
        if key in _ORDERED and value[0] > value[1]:
            raise ConfigError(f"config key {key!r} is [low, high]; got {value!r}")
    if len(cfg.loss.vicreg_weights) != 3:
        raise ConfigError("config key 'loss.vicreg_weights' needs three numbers (invariance, variance, covariance)")
    if cfg.data.s2_bands not in (10, 12):
        raise ConfigError(f"config key 'data.s2_bands' must be 10 or 12, got {cfg.data.s2_bands}")


_CHOICES = {
    ("model", "method"): ("xjepa", "contrastive", "ijepa", "random"),
    ("model", "embed_from"): ("target", "context", "prediction"),
    ("loss", "psa_metric"): ("covariance", "learned", "identity"),
    ("data", "on_error"): ("raise", "skip"),
    ("data", "dataset"): ("bigearthnet", "fmow"),
    ("train", "precision"): ("auto", "bf16", "fp32"),
    ("train", "compile_mode"): ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
}


def check_config(cfg: Config) -> None:
    """Cross-field and range checks with messages that name the key."""
    check_ranges(cfg)
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in choices:
            raise ConfigError(f"config key '{section}.{key}' must be one of {choices}, got {value!r}")
    if cfg.train.check_finite_every < 0:
        raise ConfigError("config key 'train.check_finite_every' must be 0 (automatic) or a number of steps")
    m = cfg.model
    if len(m.modalities) != 2 or len(m.in_chans) != 2:
        raise ConfigError("config keys 'model.modalities' and 'model.in_chans' need exactly two entries")
    bands = {"bigearthnet": {"s1": 2, "s2": cfg.data.s2_bands}, "fmow": {"rgb": 3, "sentinel": 10}}[cfg.data.dataset]
    if sorted(m.modalities) != sorted(bands):
        raise ConfigError(f"config key 'model.modalities' {list(m.modalities)} does not match data.dataset="
                          f"{cfg.data.dataset}, whose modalities are {sorted(bands)}")
    wanted = [bands[x] for x in m.modalities]
    if list(m.in_chans) != wanted:
        raise ConfigError(f"config keys 'model.in_chans' {list(m.in_chans)} and 'model.modalities' {list(m.modalities)} "
                          f"disagree (data.s2_bands={cfg.data.s2_bands}): use model.in_chans={wanted}")
    if m.encoder.img_size % m.encoder.patch_size:
        raise ConfigError("config key 'model.encoder.patch_size' must divide 'model.encoder.img_size'")
    for key, dim, heads in (("encoder", m.encoder.embed_dim, m.encoder.num_heads),
                            ("predictor", m.predictor.embed_dim, m.predictor.num_heads)):
        if dim % heads:
            raise ConfigError(f"config key 'model.{key}.embed_dim' must be a multiple of 'num_heads'")
    if m.embed_from == "prediction" and m.method not in ("xjepa", "random"):
        raise ConfigError(f"config key 'model.embed_from' is 'prediction', which needs the cross-modal predictors of "
                          f"model.method=xjepa (or random), but the method is {m.method!r}; use target or context")
    grid = m.encoder.img_size // m.encoder.patch_size
    tokens = grid * grid
    if cfg.train.compile and m.method in ("xjepa", "ijepa") and not cfg.mask.fixed_shapes:
        raise ConfigError("config key 'train.compile' is true but 'mask.fixed_shapes' is false: I-JEPA masks change "
                          "the token counts every batch, so the compiled step would recompile; add "
                          "mask.fixed_shapes=true")
    mk = cfg.mask
    if mk.context_tokens and not mk.fixed_shapes:
        raise ConfigError("config key 'mask.context_tokens' applies to fixed-shape masks only; add "
                          "mask.fixed_shapes=true or leave it at 0")
    if mk.context_tokens:
        from xjepa_kit.masks import fixed_target_shapes  # imports torch: only when the key is set

        h, w = fixed_target_shapes(grid, tuple(mk.target_scale), tuple(mk.target_aspect))[0]
        if not 0 < mk.context_tokens <= tokens - h * w:
            raise ConfigError(f"config key 'mask.context_tokens' must be 0 (automatic) or 1-{tokens - h * w} "
                              f"({tokens} tokens, target blocks of {h * w}), got {mk.context_tokens}")
