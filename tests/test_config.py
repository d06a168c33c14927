"""Config: presets, overrides, unknown keys and wrong types named, round trip."""

import pytest

from xjepa_kit.config import ConfigError, config_from_dict, load_config, parse_override, save_config, to_dict


def test_presets_load_and_differ():
    tiny, vitb, fmow = load_config("tiny_cpu"), load_config("ben14k_vitb"), load_config("fmow_vitb")
    assert tiny.model.encoder.embed_dim == 192 and vitb.model.encoder.embed_dim == 768
    assert vitb.model.encoder.patch_size == 15 and vitb.model.encoder.img_size == 120
    assert vitb.model.predictor.embed_dim == 384 and vitb.model.predictor.depth == 12
    assert fmow.model.modalities == ["rgb", "sentinel"] and fmow.model.in_chans == [3, 10]
    assert fmow.data.dataset == "fmow"


def test_overrides_apply_with_types():
    cfg = load_config("tiny_cpu", ["train.steps=30", "loss.psa_metric=learned", "train.lr=5e-4",
                                   "mask.target_scale=[0.1, 0.2]", "data.split_file=null"])
    assert cfg.train.steps == 30 and cfg.loss.psa_metric == "learned" and cfg.train.lr == 5e-4
    assert cfg.mask.target_scale == [0.1, 0.2] and cfg.data.split_file is None
    assert parse_override("a.b.c=1") == {"a": {"b": {"c": 1}}}


@pytest.mark.parametrize("override,pattern", [
    ("train.stepz=3", r"unknown config key 'train\.stepz'"),
    ("trainer.steps=3", r"unknown config key 'trainer'"),
    ("train.steps=many", r"'train\.steps' expects int"),
    ("train.steps=true", r"'train\.steps' expects int"),
    ("loss.psa_metric=cosine", r"'loss\.psa_metric' must be one of"),
    ("model.encoder=3", r"'model\.encoder' is a section"),
    ("mask.target_scale=0.2", r"'mask\.target_scale' expects a list"),
    ("steps", r"section\.key=value"),
    ("data.s2_bands=12", r"'model\.in_chans' \[2, 10\] and 'model\.modalities' \['s1', 's2'\] disagree "
                         r"\(data\.s2_bands=12\): use model\.in_chans=\[2, 12\]"),
    ("model.modalities=[s2, s1]", r"use model\.in_chans=\[10, 2\]"),
    ("model.modalities=[s1, rgb]", r"'model\.modalities' \['s1', 'rgb'\] does not match data\.dataset=bigearthnet"),
    ("train.ema=[0.9]", r"'train\.ema' needs two numbers"),
    ("train.weight_decay=[0.1]", r"'train\.weight_decay' needs two numbers"),
    ("train.ema=[0.9, 1.5]", r"'train\.ema' values must lie in \[0\.0, 1\.0\]"),
    ("mask.target_scale=[0.9, 0.5]", r"'mask\.target_scale' is \[low, high\]"),
    ("data.batch_size=0", r"'data\.batch_size' must be at least 1, got 0"),
    ("data.num_workers=-1", r"'data\.num_workers' must be at least 0"),
    ("train.steps=-5", r"'train\.steps' must be at least 1"),
    ("train.lr=-1", r"'train\.lr' must be at least 0"),
    ("train.seed=-1", r"'train\.seed' must be at least 0"),
    ("model.encoder.patch_size=0", r"'model\.encoder\.patch_size' must be at least 1"),
    ("mask.num_targets=0", r"'mask\.num_targets' must be at least 1"),
    ("model.in_chans=[2,", r"override 'model\.in_chans=\[2,': the value is not valid YAML; quote lists"),
    ("train.compile=true", r"'train\.compile' is true but 'mask\.fixed_shapes' is false.*mask\.fixed_shapes=true"),
    ("mask.context_tokens=20", r"'mask\.context_tokens' applies to fixed-shape masks only"),
    ("train.compile_mode=fast", r"'train\.compile_mode' must be one of"),
    ("train.check_finite_every=-1", r"'train\.check_finite_every' must be 0 \(automatic\)"),
    ("train.log_every=0", r"'train\.log_every' must be at least 1"),
])
def test_bad_keys_and_types_name_the_key(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config("tiny_cpu", [override])


def test_context_count_is_checked_against_the_grid():
    assert load_config("tiny_cpu", ["mask.fixed_shapes=true", "mask.context_tokens=52"]).mask.context_tokens == 52
    with pytest.raises(ConfigError, match=r"'mask\.context_tokens' must be 0 \(automatic\) or 1-52 \(64 tokens"):
        load_config("tiny_cpu", ["mask.fixed_shapes=true", "mask.context_tokens=53"])


def test_unknown_preset_and_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match="presets: ben14k_vitb, fmow_vitb, tiny_cpu"):
        load_config("huge_gpu")
    with pytest.raises(ConfigError, match="is a folder; give a preset name or a YAML file"):
        load_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  warmup: 3\n")
    with pytest.raises(ConfigError, match="train.warmup"):
        load_config(bad)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("tiny_cpu", ["train.steps=7", "model.method=contrastive"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert to_dict(again) == to_dict(cfg) == to_dict(config_from_dict(to_dict(cfg)))
