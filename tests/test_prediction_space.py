"""``model.embed_from=prediction``: cross-modal queries through the X-JEPA predictors, saved and used everywhere."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xjepa_kit.cli import main
from xjepa_kit.config import ConfigError, load_config
from xjepa_kit.data import BigEarthNetMM
from xjepa_kit.embeddings import Embeddings, embed, load_model
from xjepa_kit.evaluate import evaluate_embeddings
from xjepa_kit.explorer_logic import search_results
from xjepa_kit.retrieval import RetrievalIndex


def test_prediction_embeddings_hold_predicted_queries(small_checkpoint, synth_v1, tmp_path):
    ds = BigEarthNetMM(synth_v1, split="val")
    model, _ = load_model(small_checkpoint, embed_from="prediction")
    emb = embed(model, ds, batch_size=5, num_workers=0)
    assert sorted(emb.cross) == ["s1->s2", "s2->s1"] and emb.meta["embed_from"] == "prediction"
    assert emb.cross["s1->s2"].shape == (len(ds), 48)
    assert np.allclose(np.linalg.norm(emb.cross["s2->s1"], axis=1), 1, atol=1e-5)
    x1, x2 = ds[2]["s1"][None], ds[2]["s2"][None]
    with torch.no_grad():  # archive side: the layer-normalised EMA tokens the predictors regress to, pooled
        h = model.targets["s2"](x2)
        native = F.normalize(F.layer_norm(h, h.shape[-1:]).mean(1), dim=-1)[0].numpy()
        predicted = model.embed_predicted(x1, "s1", "s2")[0].numpy()
    assert np.allclose(emb.vectors["s2"][2], native, atol=1e-5)
    assert np.allclose(emb.cross["s1->s2"][2], predicted, atol=1e-5)
    assert not np.allclose(emb.cross["s1->s2"], emb.vectors["s1"], atol=1e-2)  # not the S1 vectors again
    loaded = Embeddings.load(emb.save(tmp_path / "e.npz"))
    assert sorted(loaded.cross) == sorted(emb.cross) and np.array_equal(loaded.cross["s2->s1"], emb.cross["s2->s1"])
    assert sorted(loaded.vectors) == ["s1", "s2"]  # the predicted queries are not a modality
    assert embed(small_checkpoint, ds, batch_size=5, num_workers=0).cross == {}  # the run's default: target


def _paired(n: int = 12) -> Embeddings:
    """S2 vectors one-hot per pair; S1 vectors random, but S1's predicted queries equal their S2 partner."""
    rng = np.random.default_rng(0)
    s2 = np.eye(n, 16, dtype=np.float32)
    s1 = rng.normal(size=(n, 16)).astype(np.float32)
    s1 /= np.linalg.norm(s1, axis=1, keepdims=True)
    labels = np.zeros((n, 19), bool)
    labels[np.arange(n), np.arange(n) % 19] = True
    return Embeddings({"s1": s1, "s2": s2}, np.array([f"p{i}" for i in range(n)]), labels, np.zeros((n, 4)),
                      {"checkpoint_hash": "h"}, {"s1->s2": s2.copy()})


def test_evaluation_explorer_and_index_search_with_the_predicted_queries():
    emb = _paired()
    rep = evaluate_embeddings(emb, emb, ks=(1,))["directions"]
    assert rep["s1->s2"]["pair_recall@1"] == 1.0 and rep["s1->s2"]["F1@1"] == 1.0
    assert rep["s2->s1"]["pair_recall@1"] < 0.5  # no predicted queries that way: the random S1 vectors
    hits = search_results(emb, 5, "s1->s2", k=1)
    assert hits[0]["is_partner"] and hits[0]["id"] == "p5"
    _, ranked = RetrievalIndex.from_embeddings(emb, "s2").search_embeddings(emb, "s1", 1)
    assert ranked[:, 0].tolist() == list(range(12))


@pytest.mark.parametrize("method", ["contrastive", "ijepa"])
def test_prediction_space_needs_cross_modal_predictors(method):
    with pytest.raises(ConfigError, match=r"'model\.embed_from'.*" + method):
        load_config("tiny_cpu", [f"model.method={method}", "model.embed_from=prediction"])


def test_cli_evaluate_with_embed_from(small_checkpoint, synth_v1, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--k", "5",
                 "--out", str(tmp_path / "R.json"), "--workers", "0", "--embed-from", "prediction"]) == 0
    report = json.loads((tmp_path / "R.json").read_text())
    assert report["model"]["embed_from"] == "prediction" and "pair_recall@5" in report["directions"]["s1->s2"]
    assert main(["embed", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--split", "test",
                 "--out", str(tmp_path / "e.npz"), "--workers", "0", "--embed-from", "prediction"]) == 0
    assert sorted(Embeddings.load(tmp_path / "e.npz").cross) == ["s1->s2", "s2->s1"]
