"""Typed configuration: dataclasses with commented defaults, YAML presets, ``key=value`` overrides.

``load_config("tiny_cpu", overrides=["train.steps=30"])`` starts from these defaults, applies the
preset (a name in ``xjepa_kit/configs/`` or a path), then the overrides. Unknown keys and values of
the wrong type raise :class:`ConfigError` naming the key. Builders read the config; modules take
explicit arguments.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xjepa_kit.atomic import atomic_write_text
from xjepa_kit.errors import XJepaError

PRESET_DIR = Path(__file__).parent / "configs"


class ConfigError(XJepaError):
    """A config key that does not exist or a value of the wrong type."""


@dataclass
class DataConfig:
    root: str = "data/synthetic"        # GeoTIFF root (v1/v2/BEN-14K) or packed store
    dataset: str = "bigearthnet"        # bigearthnet | fmow
    split: str = "train"
    split_file: str | None = None       # s2_name,s1_name,split CSV (e.g. BEN-14K)
    s2_bands: int = 10                  # 10 or 12
    fmow_rgb_root: str | None = None    # fMoW only
    fmow_pairing: str = "exact"         # exact | location
    batch_size: int = 32                # per process
    num_workers: int = 2
    pin_memory: bool = True
    persistent_workers: bool = True
    on_error: str = "raise"             # raise | skip (log and skip bad samples)


@dataclass
class EncoderConfig:
    img_size: int = 120                 # BigEarthNet patches are 120 x 120 px
    patch_size: int = 15                # 8 x 8 = 64 tokens at 120 px
    embed_dim: int = 192
    depth: int = 4
    num_heads: int = 3
    mlp_ratio: float = 4.0
    drop_path: float = 0.0


@dataclass
class PredictorConfig:
    embed_dim: int = 96                 # paper scale: 384
    depth: int = 2                      # paper scale: 12
    num_heads: int = 3
    num_queries: int = 16               # learnable queries
    shared_queries: bool = True         # same query parameters in P(a->b) and P(b->a)
    cross_attention: bool = False       # mask tokens also attend to the target modality's context
    per_block: bool = False             # one predictor sequence per target block (I-JEPA) vs all at once


@dataclass
class ModelConfig:
    method: str = "xjepa"               # xjepa | contrastive | ijepa | random
    modalities: list[str] = field(default_factory=lambda: ["s1", "s2"])
    in_chans: list[int] = field(default_factory=lambda: [2, 10])
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    embed_from: str = "target"          # target (EMA) | context encoder | prediction (cross-modal queries
                                        # through the predictors; xjepa, random) for retrieval embeddings
    projector_dim: int = 256            # VICReg / InfoNCE projector width


@dataclass
class MaskConfig:
    num_targets: int = 4                # target blocks per sample (I-JEPA)
    target_scale: list[float] = field(default_factory=lambda: [0.15, 0.2])
    target_aspect: list[float] = field(default_factory=lambda: [0.75, 1.5])
    context_scale: list[float] = field(default_factory=lambda: [0.85, 1.0])
    min_keep: int = 4                   # fewest context tokens
    fixed_shapes: bool = False          # same token counts every batch (needed by train.compile)
    context_tokens: int = 0             # context tokens per sample with fixed_shapes (0: automatic)


@dataclass
class LossConfig:
    l2: float = 1.0                     # weight of the token L2 loss (0 switches it off)
    psa: float = 1.0                    # lambda_psa
    psa_metric: str = "covariance"      # covariance | learned | identity
    psa_gamma: float = 0.1              # ridge added to the covariance before inversion
    psa_momentum: float = 0.99          # EMA of the target-token covariance
    psa_eps: float = 1e-6
    vicreg: float = 1.0                 # weight of the whole VICReg term
    vicreg_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.04])  # inv, var, cov (25:25:1)
    infonce_temperature: float = 0.07   # initial temperature of the contrastive baseline


@dataclass
class TrainConfig:
    steps: int = 300
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 30
    weight_decay: list[float] = field(default_factory=lambda: [0.04, 0.4])  # cosine start -> end
    clip_grad: float = 1.0              # max gradient norm (0: off)
    ema: list[float] = field(default_factory=lambda: [0.996, 1.0])  # momentum start -> end
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    precision: str = "auto"             # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    threads: int = 0                    # torch CPU threads (0: torch's default)
    compile: bool = False               # torch.compile the model (xjepa / ijepa: with mask.fixed_shapes=true)
    compile_mode: str = "default"       # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    time_limit_s: float = 0.0           # stop (and checkpoint) after this many seconds; 0: no limit
    check_finite_every: int = 0         # read the finite flags on the host every N steps (and at log steps
                                        # and checkpoints); 0: every step on CPU, every log step on GPU
    tensorboard: bool = False


@dataclass
class Config:
    name: str = "xjepa"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config (for YAML and checkpoints)."""
    return dataclasses.asdict(cfg)


def _check_type(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _check_type(key, value, inner[0])
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "5e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ConfigError(f"config key {key!r} expects {hint.__name__}, got {value!r}")
    return value


def _merge(obj: Any, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(f"{prefix}{k}" for k in hints)
            raise ConfigError(f"unknown config key {full!r}; known keys here: {known}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {full!r} is a section; give its keys ({full}.KEY=...)")
            _merge(current, value, f"{full}.")
        else:
            setattr(obj, key, _check_type(full, value, hints[key]))


def parse_override(text: str) -> dict:
    """``"train.steps=30"`` -> ``{"train": {"steps": 30}}`` (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"override {text!r}: the value is not valid YAML; quote lists as one shell word, e.g. "
                          f"'{key}=[2, 12]'") from None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def resolve_preset(name_or_path: str | Path) -> Path:
    """A preset name (``tiny_cpu``) or a YAML path -> the file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ConfigError(f"config file {p} not found")
        if p.is_dir():
            raise ConfigError(f"config {p} is a folder; give a preset name or a YAML file (a run's is RUN/config.yaml)")
        return p
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if not preset.exists():
        names = ", ".join(sorted(x.stem for x in PRESET_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown config {name_or_path!r}; presets: {names}, or give a YAML path")
    return preset


def load_config(name_or_path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the preset or YAML file, then ``key=value`` overrides, with key and type checks."""
    cfg = Config()
    if name_or_path is not None:
        path = resolve_preset(name_or_path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML ({err})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of sections")
        _merge(cfg, values)
    for text in overrides:
        _merge(cfg, parse_override(text))
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field and range checks with messages that name the key (:mod:`xjepa_kit.config_checks`)."""
    from xjepa_kit.config_checks import check_config

    check_config(cfg)


def config_from_dict(values: dict) -> Config:
    """Rebuild a Config from :func:`to_dict` output (e.g. stored in a checkpoint)."""
    cfg = Config()
    _merge(cfg, values)
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
