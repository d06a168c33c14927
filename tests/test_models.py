"""Models: gradients go where they should, shared queries, switches, baselines, any modality pair."""

import numpy as np
import pytest
import torch

from xjepa_kit.config import ConfigError, load_config
from xjepa_kit.masks import sample_masks
from xjepa_kit.models import build_model, count_parameters

SMALL = ["model.encoder.embed_dim=48", "model.encoder.depth=2", "model.encoder.num_heads=2",
         "model.predictor.embed_dim=32", "model.predictor.depth=1", "model.predictor.num_heads=2",
         "model.projector_dim=32"]


def _batch(cfg, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = cfg.model.encoder.img_size
    grid = size // cfg.model.encoder.patch_size
    batch = {m: torch.randn(b, c, size, size, generator=g) for m, c in zip(cfg.model.modalities, cfg.model.in_chans)}
    batch["masks"] = sample_masks(np.random.default_rng(seed), b, grid)
    return batch


def _grads(model):
    return {n: (p.grad is not None and p.grad.abs().sum().item() > 0) for n, p in model.named_parameters()}


def test_gradients_reach_encoders_predictors_and_never_targets():
    cfg = load_config("tiny_cpu", SMALL)
    model = build_model(cfg)
    out = model(_batch(cfg))
    assert set(out) >= {"loss", "l2", "psa", "vicreg"}
    out["loss"].backward()
    g = _grads(model)
    for part in ("encoders.s1.", "encoders.s2.", "predictors.s1->s2.", "predictors.s2->s1.", "projector."):
        assert any(v for k, v in g.items() if k.startswith(part)), part
    assert all(p.grad is None and not p.requires_grad for p in model.targets.parameters())
    assert g["queries"]


def test_shared_queries_are_one_parameter_used_by_both_predictors():
    cfg = load_config("tiny_cpu", SMALL + ["loss.vicreg=0", "loss.psa=0"])
    model = build_model(cfg)
    batch = _batch(cfg)
    masks = batch["masks"]
    ctx = model.forward_context(batch, masks)
    grads = []
    for key in ("s1->s2", "s2->s1"):
        model.zero_grad()
        model.predictors[key](ctx[key[:2]], masks.context, masks.targets, model.queries).sum().backward(
            retain_graph=True)
        grads.append(model.queries.grad.clone())
    assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0  # both directions use the same anchors
    separate = build_model(load_config("tiny_cpu", SMALL + ["model.predictor.shared_queries=false"]))
    assert not hasattr(separate, "queries") and len(separate.direction_queries) == 2


def test_ema_update_moves_targets_toward_encoders():
    cfg = load_config("tiny_cpu", SMALL)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.encoders.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.targets.parameters()]
    model.ema_update(0.9)
    for b, t, e in zip(before, model.targets.parameters(), model.encoders.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * e, atol=1e-6)


@pytest.mark.parametrize("overrides", [
    ["model.method=ijepa"], ["model.method=contrastive"], ["model.predictor.cross_attention=true"],
    ["loss.psa_metric=learned"], ["loss.psa_metric=identity", "loss.vicreg=0"], ["model.predictor.num_queries=0"],
    ["model.embed_from=context"], ["model.predictor.per_block=true"],
])
def test_variants_train_a_step_and_embed(overrides):
    cfg = load_config("tiny_cpu", SMALL + overrides)
    model = build_model(cfg)
    batch = _batch(cfg, b=6)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(3):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.ema_update(0.5)
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    emb = model.embed(batch["s2"], "s2")
    dim = cfg.model.projector_dim if cfg.model.method == "contrastive" else 48  # contrastive: the head's space
    assert emb.shape == (6, dim) and torch.allclose(emb.norm(dim=-1), torch.ones(6), atol=1e-5)


def test_ijepa_predicts_within_each_modality():
    model = build_model(load_config("tiny_cpu", SMALL + ["model.method=ijepa"]))
    assert sorted(model.predictors) == ["s1->s1", "s2->s2"] and model.weights["psa"] == 0


def test_other_modality_pair_rgb_sentinel():
    cfg = load_config("fmow_vitb", SMALL)
    model = build_model(cfg)
    batch = _batch(cfg)
    assert batch["rgb"].shape[1] == 3 and batch["sentinel"].shape[1] == 10
    model(batch)["loss"].backward()
    assert model.embed(batch["rgb"], "rgb").shape == (4, 48)


def test_unknown_method_names_the_key():
    cfg = load_config("tiny_cpu")
    cfg.model.method = "mae"
    with pytest.raises(ConfigError, match="model.method"):
        build_model(cfg)


def test_paper_scale_encoders_match_the_paper_parameter_count():
    counts = count_parameters(build_model(load_config("ben14k_vitb")))
    encoders = counts["encoders.s1"] + counts["encoders.s2"]
    assert abs(encoders / 1e6 - 172.86) / 172.86 < 0.01  # the paper reports 172.86 M
    assert counts["targets.s1"] == counts["encoders.s1"]


def test_joint_and_per_block_prediction_agree_for_one_block():
    from xjepa_kit.models.predictor import CrossModalPredictor

    torch.manual_seed(0)
    joint = CrossModalPredictor(48, grid=8, embed_dim=32, depth=1, num_heads=2, cross_attention=True)
    per_block = CrossModalPredictor(48, grid=8, embed_dim=32, depth=1, num_heads=2, cross_attention=True,
                                    per_block=True)
    per_block.load_state_dict(joint.state_dict())
    masks = sample_masks(np.random.default_rng(0), 3, 8, num_targets=1)
    ctx, queries = torch.randn(3, masks.context.shape[1], 48), torch.randn(16, 32)
    a = joint(ctx, masks.context, masks.targets, queries, ctx)
    b = per_block(ctx, masks.context, masks.targets, queries, ctx)
    assert torch.allclose(a, b, atol=1e-5)
    four = sample_masks(np.random.default_rng(1), 3, 8, num_targets=4)
    ctx4 = torch.randn(3, four.context.shape[1], 48)
    out_joint = joint(ctx4, four.context, four.targets, queries)
    out_block = per_block(ctx4, four.context, four.targets, queries)
    assert out_joint.shape == out_block.shape == (12, four.targets.shape[2], 48)
    assert not torch.allclose(out_joint, out_block)  # blocks see each other's positions only when joint


def test_patchify_matches_timm_patch_embedding():
    from xjepa_kit.models.encoder import ViTEncoder

    enc = ViTEncoder(10, img_size=120, patch_size=15, embed_dim=48, depth=1, num_heads=2)
    x = torch.randn(2, 10, 120, 120)
    assert torch.allclose(enc.patchify(x), enc.vit.patch_embed(x), atol=1e-5)


def test_fixed_shape_masks_compile_once_and_match_eager():
    """With mask.fixed_shapes the step is captured once: new masks do not recompile (aot_eager backend:
    graph capture and autograd as in train.compile, without inductor's C++ build)."""
    cfg = load_config("tiny_cpu", SMALL + ["model.encoder.depth=1", "mask.fixed_shapes=true"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()  # eval: the PSA covariance is not updated between calls
    batches = [_fixed_batch(cfg, seed) for seed in range(3)]
    assert len({tuple(b["masks"].context.shape) for b in batches}) == 1
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", dynamic=False)
    first = compiled(batches[0])["loss"]
    first.backward()
    try:
        torch.compiler.set_stance("fail_on_recompile")
        for b in batches[1:]:  # other masks, same shapes: raises if dynamo had to recompile
            assert torch.allclose(compiled(b)["loss"], model(b)["loss"], rtol=1e-5, atol=1e-6)
    finally:
        torch.compiler.set_stance("default")
    assert torch.allclose(first, model(batches[0])["loss"], rtol=1e-5, atol=1e-6)
    assert not torch.equal(batches[0]["masks"].targets, batches[1]["masks"].targets)


def _fixed_batch(cfg, seed):
    batch = _batch(cfg, seed=seed)
    grid = cfg.model.encoder.img_size // cfg.model.encoder.patch_size
    batch["masks"] = sample_masks(np.random.default_rng(seed), 4, grid, fixed_shapes=True)
    return batch


@pytest.mark.slow
def test_torch_compile_gives_the_same_loss():
    """The inductor-compiled model (train.compile's default backend) gives the eager loss (~1 min on CPU)."""
    cfg = load_config("tiny_cpu", SMALL + ["model.encoder.depth=1", "mask.fixed_shapes=true"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()  # eval: the PSA covariance is not updated between the two calls
    batch = _fixed_batch(cfg, 0)
    eager = model(batch)["loss"]
    compiled = torch.compile(model, dynamic=False)(batch)["loss"]
    assert torch.allclose(eager, compiled, rtol=1e-4, atol=1e-5)


def test_targets_are_deterministic_layer_normed_and_used_for_embedding():
    cfg = load_config("tiny_cpu", SMALL + ["model.encoder.drop_path=0.5"])
    model = build_model(cfg).train()
    batch = _batch(cfg)
    a, b = model.forward_target(batch), model.forward_target(batch)
    assert torch.equal(a["s1"], b["s1"])  # no drop-path in the EMA targets
    assert torch.allclose(a["s2"].mean(-1), torch.zeros(1), atol=1e-5)  # layer-normalised tokens
    assert torch.allclose(a["s2"].std(-1, unbiased=False), torch.ones(1), atol=1e-3)
    with torch.no_grad():
        for p in model.encoders.parameters():
            p.add_(0.5)  # online encoders now differ from the targets
    model.eval()
    expected = torch.nn.functional.normalize(model.targets["s1"](batch["s1"]).mean(1), dim=-1)
    assert torch.allclose(model.embed(batch["s1"], "s1"), expected, atol=1e-6)


def test_contrastive_embeddings_live_in_the_space_infonce_aligns():
    """Overfit 12 random pairs with InfoNCE: the retrieval embeddings must then match each S1 to its S2.

    Embedding from the pooled encoder tokens (before the per-modality heads) leaves S1 and S2 in
    unrelated spaces, and cross-modal matching stays at chance.
    """
    from xjepa_kit.train import param_groups

    cfg = load_config("tiny_cpu", SMALL + ["model.method=contrastive", "model.encoder.depth=1"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batch = _batch(cfg, b=12)
    opt = torch.optim.AdamW(param_groups(model), lr=3e-3)
    for _ in range(40):
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
    model.eval()
    za, zb = model.embed(batch["s1"], "s1"), model.embed(batch["s2"], "s2")
    assert za.shape == (12, cfg.model.projector_dim)
    matched = (za @ zb.T).argmax(1) == torch.arange(12)
    assert matched.float().mean() >= 0.9, matched


def test_masked_encoder_equals_timm_path_with_tokens_dropped_after_embedding():
    """Embedding only the kept patches gives what timm's own patch + position embedding then a gather give."""
    from xjepa_kit.models.encoder import ViTEncoder, gather_tokens

    torch.manual_seed(0)
    enc = ViTEncoder(10, img_size=120, patch_size=15, embed_dim=48, depth=2, num_heads=2).eval()
    with torch.no_grad():
        enc.vit.pos_embed.normal_()  # non-zero positions, so a misplaced gather would show
    x = torch.randn(3, 10, 120, 120)
    keep = torch.stack([torch.randperm(64)[:20].sort().values for _ in range(3)])
    vit = enc.vit
    ref_tokens = gather_tokens(vit._pos_embed(vit.patch_embed(x)), keep)
    ref = vit.norm(vit.blocks(ref_tokens))
    assert torch.allclose(enc(x, keep), ref, atol=1e-5)
    assert torch.allclose(enc(x), vit.norm(vit.blocks(vit._pos_embed(vit.patch_embed(x)))), atol=1e-5)
