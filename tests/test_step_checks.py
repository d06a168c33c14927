"""The training step's finite check: immediate on CPU, deferred on GPU without waiting for the device."""

import collections

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from helpers import SMALL_RUN
from xjepa_kit.config import load_config
from xjepa_kit.masks import sample_masks
from xjepa_kit.models import build_model
from xjepa_kit.train import (NonFiniteLossError, _raise_if_weights_non_finite, build_optimizer, optimisation_step,
                             raise_if_non_finite, train)

# aten ops whose result the host must read: on CUDA each one waits for every queued kernel. lift_fresh is a tensor
# made from Python data (torch.tensor, new_tensor): on CUDA a copy from pageable host memory, which waits as well
# (the H200's sync debug mode found one in PSA's covariance update, sixth session).
HOST_SYNC_OPS = {"_local_scalar_dense", "_linalg_check_errors", "nonzero", "masked_select", "_assert_async",
                 "lift_fresh"}


class HostSyncCounter(TorchDispatchMode):
    """Counts dispatched ops that read a device value on the host (they stall a GPU's queue)."""

    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        if name in HOST_SYNC_OPS:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def _setup(method: str = "xjepa"):
    torch.manual_seed(0)
    cfg = load_config("tiny_cpu", SMALL_RUN + [f"model.method={method}"])
    model = build_model(cfg)
    return cfg, model, build_optimizer(model, cfg)


def _batch(seed: int, s1_value: float | None = None) -> dict:
    g = torch.Generator().manual_seed(seed)
    s1 = torch.randn(4, 2, 120, 120, generator=g)
    if s1_value is not None:
        s1[0, 0, :8, :8] = s1_value
    return {"s1": s1, "s2": torch.randn(4, 10, 120, 120, generator=g),
            "masks": sample_masks(np.random.default_rng(seed), 4, 8)}


def _trained_state(model, opt) -> dict:
    """Copies of the trained parameters and of AdamW's per-parameter state."""
    out = {f"p.{n}": p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for i, p in enumerate(q for g in opt.param_groups for q in g["params"]):
        out.update({f"s{i}.{k}": v.clone() for k, v in opt.state.get(p, {}).items()})
    return out


@pytest.mark.parametrize("method", ["xjepa", "contrastive", "ijepa"])
def test_deferred_step_never_reads_the_device_and_the_checked_step_does(method):
    cfg, model, opt = _setup(method)
    optimisation_step(model, model, opt, _batch(0), cfg, 0, amp=False, check=False)  # AdamW state exists
    batch1, batch2 = _batch(1), _batch(2)  # made outside the counters: the masks are built from Python data
    with HostSyncCounter() as deferred:
        terms, _ = optimisation_step(model, model, opt, batch1, cfg, 1, amp=False, check=False)
    with HostSyncCounter() as checked:
        optimisation_step(model, model, opt, batch2, cfg, 2, amp=False, check=True)
    assert sum(deferred.ops.values()) == 0, deferred.ops  # no finite check, no linalg error check (PSA)
    assert sum(checked.ops.values()) >= 1  # the counter sees the immediate check
    assert float(terms["finite"]) == 1.0


def test_deferred_step_skips_a_non_finite_update_and_the_checked_step_raises():
    cfg, model, opt = _setup()
    before = _trained_state(model, opt)
    terms, _ = optimisation_step(model, model, opt, _batch(0), cfg, 0, amp=False, check=False)
    good = _trained_state(model, opt)
    assert float(terms["finite"]) == 1.0
    assert not torch.equal(before["p.encoders.s1.vit.blocks.0.attn.qkv.weight"], good["p.encoders.s1.vit.blocks.0.attn.qkv.weight"])

    terms, _ = optimisation_step(model, model, opt, _batch(1, s1_value=float("inf")), cfg, 1, amp=False, check=False)
    assert float(terms["finite"]) == 0.0
    after = _trained_state(model, opt)
    assert good.keys() == after.keys() and any(k.startswith("s") for k in good)
    changed = [k for k in good if not torch.equal(good[k], after[k])]
    assert changed == []  # weights, moments and AdamW's step counters untouched by the skipped update
    assert all(torch.isfinite(p).all() for p in model.parameters())

    with pytest.raises(NonFiniteLossError, match="at step 3 .*last.pt"):
        optimisation_step(model, model, opt, _batch(2, s1_value=float("nan")), cfg, 2, amp=False, check=True,
                          last="run/last.pt")
    assert all(torch.equal(p, after[f"p.{n}"]) for n, p in model.named_parameters() if p.requires_grad)


def test_raise_if_non_finite_names_the_first_bad_step_and_the_kept_checkpoint(tmp_path):
    ok, bad = torch.tensor(1.0), torch.tensor(0.0)
    checked = [(4, ok, torch.tensor(0.5)), (5, ok, torch.tensor(0.4))]
    raise_if_non_finite(checked, 1, None)  # all finite: silent, and the checked steps are forgotten
    assert checked == []
    pending = [(4, ok, torch.tensor(0.5)), (5, bad, torch.tensor(float("nan"))), (6, bad, torch.tensor(1.0))]
    last = tmp_path / "last.pt"
    with pytest.raises(NonFiniteLossError, match=r"at step 5 \(loss nan\); stopped at step 6.*no checkpoint had "
                                                 r"been written yet to .*last.pt"):
        raise_if_non_finite(pending, 1, last, 6)
    last.write_bytes(b"checkpoint")
    with pytest.raises(NonFiniteLossError, match=r"the last good checkpoint .*last.pt is kept"):
        raise_if_non_finite(pending, 1, last, 6)
    assert last.read_bytes() == b"checkpoint"


def test_training_with_deferred_checks_stops_without_writing_after_the_bad_step(synth_v1, tmp_path):
    cfg = load_config("tiny_cpu", SMALL_RUN + [f"data.root={synth_v1}", "train.steps=30", "train.ckpt_every=4",
                                               "train.check_finite_every=3", "train.log_every=10", "train.lr=1e30",
                                               "train.warmup_steps=0", "train.clip_grad=0"])
    with pytest.raises(NonFiniteLossError, match=r"at step (\d+) .*stopped at step (\d+)") as err:
        train(cfg, tmp_path / "run", progress=False)
    bad, stopped = _steps(str(err.value))
    assert bad <= stopped < bad + 3  # read at the next check, fewer than check_finite_every steps later
    for path in (tmp_path / "run").glob("*.pt"):
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["step"] < bad  # nothing written at or after the bad step
        assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def _steps(message: str) -> tuple[int, int]:
    import re

    m = re.search(r"at step (\d+) .*stopped at step (\d+)", message)
    return int(m.group(1)), int(m.group(2))


def test_a_checkpoint_of_non_finite_weights_is_refused(tmp_path):
    _, model, _ = _setup()
    _raise_if_weights_non_finite(model, 7, tmp_path / "last.pt")  # finite: silent
    with torch.no_grad():
        model.encoders["s2"].vit.blocks[0].mlp.fc1.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"non-finite by step 7.*without writing .*last.pt"):
        _raise_if_weights_non_finite(model, 7, tmp_path / "last.pt")
