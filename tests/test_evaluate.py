"""Embedding with a checkpoint, the evaluation protocol, `xjepa embed/evaluate`, comparisons and the demo."""

import json
import os

import numpy as np
import pytest
import torch

from helpers import SMALL_RUN, free_port
from xjepa_kit.cli import main
from xjepa_kit.compare import add_prediction_rows
from xjepa_kit.config import load_config
from xjepa_kit.data import BigEarthNetMM
from xjepa_kit.embeddings import Embeddings, embed, load_model
from xjepa_kit.evaluate import drop_self, evaluate_embeddings, markdown_table
from xjepa_kit.train import shutdown_distributed, train



def _evaluate_worker(rank, world, port, checkpoint, root, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      CUDA_VISIBLE_DEVICES="")  # CPU ranks (gloo) on any machine
    assert main(["evaluate", "--checkpoint", checkpoint, "--data", root, "--k", "1", "5", "--workers", "0",
                 "--out", out]) == 0


def test_evaluate_under_two_ranks_writes_one_report_equal_to_one_process(small_checkpoint, synth_v1, tmp_path):
    from xjepa_kit.evaluate import evaluate

    port = free_port()
    torch.multiprocessing.spawn(_evaluate_worker, nprocs=2,
                                args=(2, port, str(small_checkpoint), str(synth_v1), str(tmp_path / "r.json")))
    two = json.loads((tmp_path / "r.json").read_text())
    one = evaluate(small_checkpoint, synth_v1, ks=(1, 5), num_workers=0)
    assert two["queries"] == one["queries"] and two["archive"] == one["archive"]
    for direction, metrics in one["directions"].items():
        assert two["directions"][direction] == pytest.approx(metrics, abs=1e-6)


def test_embed_follows_dataset_order_with_unit_vectors(small_checkpoint, synth_v1):
    ds = BigEarthNetMM(synth_v1, split="val")
    emb = embed(small_checkpoint, ds, batch_size=7, num_workers=0)
    assert list(emb.ids) == list(ds.index["s2_name"])
    assert emb.vectors["s1"].shape == (len(ds), 48) and emb.vectors["s2"].shape == (len(ds), 48)
    assert np.allclose(np.linalg.norm(emb.vectors["s2"], axis=1), 1, atol=1e-5)
    assert np.array_equal(emb.labels, np.stack([ds[i]["labels"].numpy() > 0 for i in range(len(ds))]))
    assert emb.meta["method"] == "xjepa" and len(emb.meta["checkpoint_hash"]) == 16
    model, _ = load_model(small_checkpoint)
    with torch.no_grad():
        direct = model.embed(ds[3]["s1"][None], "s1").numpy()[0]
    assert np.allclose(direct, emb.vectors["s1"][3], atol=1e-5)


def _embed_worker(rank, world, port, checkpoint, root, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.distributed.init_process_group("gloo")
    emb = embed(checkpoint, BigEarthNetMM(root, split="test"), batch_size=5, num_workers=0)
    if rank == 0:
        emb.save(out)
    shutdown_distributed()


def test_embed_under_two_ranks_merges_in_order(small_checkpoint, synth_v1, tmp_path):
    port = free_port()
    torch.multiprocessing.spawn(_embed_worker, nprocs=2,
                                args=(2, port, str(small_checkpoint), str(synth_v1), str(tmp_path / "e.npz")))
    merged = Embeddings.load(tmp_path / "e.npz")
    single = embed(small_checkpoint, BigEarthNetMM(synth_v1, split="test"), batch_size=5, num_workers=0)
    assert list(merged.ids) == list(single.ids)
    assert np.allclose(merged.vectors["s2"], single.vectors["s2"], atol=1e-5)


def test_drop_self():
    ranked = np.array([[0, 5, 6], [7, 1, 8], [9, 3, 4]])
    assert drop_self(ranked).tolist() == [[5, 6], [7, 8], [9, 3]]


def test_protocol_on_known_embeddings():
    # 6 queries, 6 archive items; s1 and s2 of a pair are the same vector, labels in two groups
    v = np.eye(6, 8, dtype=np.float32)
    labels = np.zeros((6, 19), bool)
    labels[:3, 0] = labels[3:, 1] = True
    ids = np.array([f"p{i}" for i in range(6)])
    q = Embeddings({"s1": v, "s2": v}, ids, labels, np.zeros((6, 4)))
    rep = evaluate_embeddings(q, q, ks=(1, 3), same_set=True)
    cross, same = rep["directions"]["s1->s2"], rep["directions"]["s1->s1"]
    assert cross["pair_recall@1"] == 1.0 and cross["F1@1"] == 1.0  # the partner itself is first
    assert "pair_recall@1" not in same
    assert same["P@1"] < 1.0  # the query itself is excluded; all other items score 0 and tie
    assert set(rep["directions"]) == {"s1->s2", "s2->s1", "s1->s1", "s2->s2"}


def test_cli_embed_and_evaluate(small_checkpoint, synth_v1, tmp_path, capsys):
    assert main(["embed", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--split", "test",
                 "--out", str(tmp_path / "emb.npz"), "--workers", "0"]) == 0
    assert len(Embeddings.load(tmp_path / "emb.npz")) == len(BigEarthNetMM(synth_v1, split="test"))
    assert main(["evaluate", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--k", "5", "10",
                 "--out", str(tmp_path / "REPORT.json"), "--workers", "0"]) == 0
    report = json.loads((tmp_path / "REPORT.json").read_text())
    m = report["directions"]["s1->s2"]
    assert {"F1@10", "F1_csmae@10", "P@10", "R@10", "mAP@10", "pair_recall@10", "F1@5"} <= set(m)
    assert all(0 <= v <= 1 for d in report["directions"].values() for v in d.values())
    assert report["query_split"] == "val" and report["archive_split"] == "test"
    assert "| s2->s2 |" in capsys.readouterr().out and (tmp_path / "REPORT.md").exists()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(synth_v1),
                 "--out", str(tmp_path / "R.json")]) == 2
    before = (tmp_path / "emb.npz").read_bytes(), (tmp_path / "REPORT.json").read_text()
    capsys.readouterr()
    assert main(["embed", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--split", "val",
                 "--out", str(tmp_path / "emb.npz"), "--workers", "0"]) == 2
    assert main(["evaluate", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--k", "5",
                 "--out", str(tmp_path / "REPORT.json"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'emb.npz'} exists" in err and "--force" in err and "REPORT.json" in err
    assert ((tmp_path / "emb.npz").read_bytes(), (tmp_path / "REPORT.json").read_text()) == before  # kept
    assert main(["embed", "--checkpoint", str(small_checkpoint), "--data", str(synth_v1), "--split", "val",
                 "--out", str(tmp_path / "emb.npz"), "--workers", "0", "--force"]) == 0
    assert len(Embeddings.load(tmp_path / "emb.npz")) == len(BigEarthNetMM(synth_v1, split="val"))


def test_variants_and_demo_write_their_reports(tmp_path, capsys):
    from xjepa_kit.demo import run_demo

    report = run_demo(tmp_path / "data", tmp_path / "demo", n=80, steps=2, progress=False)
    assert list(report["methods"]) == ["xjepa", "xjepa_prediction", "contrastive", "random"]
    assert report["methods"]["xjepa_prediction"]["steps"] == 2  # the xjepa run re-evaluated, not retrained
    d = report["methods"]["xjepa"]["directions"]["s1->s2"]
    assert 0 <= d["F1@10"] <= 1 and 0 <= d["pair_recall@10"] <= 1
    assert report["methods"]["random"]["steps"] == 0 and report["methods"]["xjepa"]["steps"] == 2
    for f in ("report.json", "report.md", "comparison.png", "loss_curves.png", "comparison.json"):
        assert (tmp_path / "demo" / f).exists(), f
    out = capsys.readouterr().out
    assert "| xjepa |" in out and "| random |" in out and "| xjepa_prediction |" in out and "real sample" in out
    assert "xjepa_prediction" in json.loads((tmp_path / "demo" / "comparison.json").read_text())["methods"]
    run_demo(tmp_path / "data", tmp_path / "demo", n=80, steps=2, progress=False)  # reuses finished runs
    assert out.count(": training") == 3 and "reusing" not in out
    assert capsys.readouterr().out.count(": reusing") == 3


def test_fmow_run_trains_embeds_and_evaluates(tmp_path, capsys):
    from xjepa_kit.data.fmow_fakes import make_fake_fmow
    from xjepa_kit.evaluate import evaluate

    rgb, sentinel = make_fake_fmow(tmp_path / "fmow", locations=2, images=2, splits=("train", "val", "test"))
    cfg = load_config("fmow_vitb", SMALL_RUN + [f"data.root={sentinel}", f"data.fmow_rgb_root={rgb}",
                                            "model.encoder.img_size=48", "model.encoder.patch_size=12",
                                            "data.batch_size=4", "train.steps=2"])
    train(cfg, tmp_path / "run", progress=False)
    report = evaluate(tmp_path / "run" / "last.pt", sentinel, ks=(1, 5), num_workers=0)
    assert set(report["directions"]) == {"rgb->sentinel", "sentinel->rgb", "rgb->rgb", "sentinel->sentinel"}
    assert report["queries"] == 12 and report["archive"] == 12
    assert 0 <= report["directions"]["rgb->sentinel"]["pair_recall@5"] <= 1
    # the data moved: the run's RGB root is gone, and --rgb-root names its new place
    moved = tmp_path / "moved"
    (tmp_path / "fmow").rename(moved)
    args = ["evaluate", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", str(moved / sentinel.name),
            "--k", "1", "--workers", "0", "--out", str(tmp_path / "report.json")]
    assert main(args) == 2 and "data.fmow_rgb_root" in capsys.readouterr().err
    assert main(args + ["--rgb-root", str(moved / rgb.name)]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["queries"] == 12


def test_cli_ablate_runs_the_chosen_variants(synth_v1, tmp_path, capsys):
    args = ["ablate", "--data", str(synth_v1), "--out", str(tmp_path), "--variants", "xjepa_l2", "ijepa",
            "--no-progress", *SMALL_RUN, "train.steps=2"]
    assert main(args) == 0
    results = json.loads((tmp_path / "comparison.json").read_text())
    assert list(results["methods"]) == ["xjepa_l2", "xjepa_l2_prediction", "ijepa"]  # ijepa has no cross predictors
    assert results["methods"]["xjepa_l2"]["overrides"] == ["loss.psa=0", "loss.vicreg=0"]
    assert results["methods"]["xjepa_l2_prediction"]["overrides"] == ["loss.psa=0", "loss.vicreg=0",
                                                                     "model.embed_from=prediction"]
    assert results["methods"]["xjepa_l2_prediction"]["directions"] != results["methods"]["xjepa_l2"]["directions"]
    assert load_config(tmp_path / "xjepa_l2" / "config.yaml").loss.psa == 0
    assert add_prediction_rows(results, tmp_path) == []  # a second call (a notebook cell run twice) adds nothing
    assert list(results["methods"]) == ["xjepa_l2", "xjepa_l2_prediction", "ijepa"]
    assert (tmp_path / "comparison.png").stat().st_size > 1000 and "| ijepa |" in capsys.readouterr().out
    assert main(["ablate", "--data", str(synth_v1), "--out", str(tmp_path), "--variants", "mae"]) == 2


def test_pair_recall_uses_the_query_split_and_labels_the_archive():
    rng = np.random.default_rng(0)
    q_vec = rng.standard_normal((5, 8)).astype(np.float32)
    q_vec /= np.linalg.norm(q_vec, axis=1, keepdims=True)
    a_vec = -q_vec  # archive items point away from every query
    labels = np.eye(5, 19, dtype=bool)
    q = Embeddings({"s1": q_vec, "s2": q_vec}, np.array([f"v{i}" for i in range(5)]), labels, np.zeros((5, 4)))
    a = Embeddings({"s1": a_vec, "s2": a_vec}, np.array([f"t{i}" for i in range(5)]), labels, np.zeros((5, 4)))
    rep = evaluate_embeddings(q, a, ks=(1,))
    cross = rep["directions"]["s1->s2"]
    assert cross["pair_recall@1"] == 1.0  # each query's partner (same id) sits in the query split
    assert cross["P@1"] < 1.0  # label metrics are computed against the other split
    with pytest.raises(Exception, match="at least 1"):
        evaluate_embeddings(q, a, ks=(0,))


def test_rerun_with_another_config_is_refused(synth_v1, tmp_path):
    from xjepa_kit.compare import run_variants
    from xjepa_kit.errors import XJepaError

    run_variants({"xjepa_l2": ["loss.psa=0", "loss.vicreg=0"]}, synth_v1, tmp_path,
                 overrides=SMALL_RUN + ["train.steps=2"], ks=(5,), progress=False)
    with pytest.raises(XJepaError, match="another config"):
        run_variants({"xjepa_l2": ["loss.psa=0", "loss.vicreg=0"]}, synth_v1, tmp_path,
                     overrides=SMALL_RUN + ["train.steps=3"], ks=(5,), progress=False)


def test_evaluating_saved_embeddings_does_not_import_torch():
    """`evaluate_embeddings`, indexes and `Embeddings` need numpy and faiss only (torch is ~0.7 GB of RSS)."""
    import subprocess
    import sys

    code = ("import sys; import xjepa_kit.evaluate, xjepa_kit.retrieval; "
            "from xjepa_kit.embedding_store import Embeddings; print(sorted(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = eval(out.stdout)
    assert "xjepa_kit.evaluate" in modules and "faiss" in modules
    assert "torch" not in modules


def test_runs_saved_before_a_key_existed_still_compare_equal():
    """A checkpoint config without a newer key (e.g. mask.fixed_shapes) reads as that key's default."""
    from xjepa_kit.checkpoint import config_changes
    from xjepa_kit.compare import REUSABLE_KEYS
    from xjepa_kit.config import load_config, to_dict

    now = to_dict(load_config("tiny_cpu"))
    older = json.loads(json.dumps(now))
    del older["mask"]["fixed_shapes"], older["mask"]["context_tokens"], older["train"]["compile_mode"]
    assert config_changes(older, now, REUSABLE_KEYS) == []
    assert config_changes({**now, "train": {**now["train"], "compile": True}}, now, REUSABLE_KEYS) == []  # speed only
    assert config_changes({**now, "mask": {**now["mask"], "fixed_shapes": True}}, now, REUSABLE_KEYS) == \
        ["mask.fixed_shapes: True -> False"]


def test_p_at_1_with_ties_does_not_depend_on_the_other_ks():
    v = np.tile(np.eye(1, 8, dtype=np.float32), (12, 1))  # identical vectors: every score ties
    labels = np.zeros((12, 19), bool)
    labels[0, 0] = True  # only archive item 0 shares the query's label
    query_labels = np.zeros((1, 19), bool)
    query_labels[0, 0] = True
    arch = Embeddings({"s1": v, "s2": v}, np.array([f"a{i}" for i in range(12)]), labels, np.zeros((12, 4)))
    q = Embeddings({"s1": v[:1], "s2": v[:1]}, np.array(["q"]), query_labels, np.zeros((1, 4)))
    alone = evaluate_embeddings(q, arch, ks=(1,))["directions"]["s1->s2"]["P@1"]
    with_more = evaluate_embeddings(q, arch, ks=(1, 10))["directions"]["s1->s2"]["P@1"]
    assert alone == with_more == 1.0  # ties in archive order: item 0 first, as the explorer ranks them


def test_k_beyond_the_archive_is_reported_and_warned_when_asked_for():
    v = np.eye(6, 8, dtype=np.float32)
    q = Embeddings({"s1": v, "s2": v}, np.array([f"p{i}" for i in range(6)]), np.ones((6, 19), bool), np.zeros((6, 4)))
    with pytest.warns(UserWarning, match=r"k=\[10\] exceed the 5 archive items"):
        rep = evaluate_embeddings(q, q, ks=(3, 10), same_set=True)
    assert rep["ks"] == [3] and rep["ks_dropped"] == [10]
    assert "| P@3 |" in markdown_table(rep, k=10)  # the table falls back to k=3
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults (5 ... 100) are dropped quietly for a small archive
        rep = evaluate_embeddings(q, q, same_set=True)
    assert rep["ks"] == [5] and rep["ks_dropped"] == [10, 20, 50, 100]


def test_a_packed_store_needs_no_split_file_and_a_given_one_must_exist(synth_v1, tmp_path):
    from xjepa_kit.data import pack
    from xjepa_kit.errors import XJepaError
    from xjepa_kit.train_data import point_at_data

    store = pack(synth_v1, tmp_path / "store", progress=False, workers=0)
    cfg = load_config("tiny_cpu", ["data.split_file=/gone/ben14k.csv"])  # the run's split file, not on this machine
    point_at_data(cfg, store)  # a store holds its splits: the old path is not read
    with pytest.raises(XJepaError, match=r"the run's data.split_file /gone/ben14k.csv is not there.*--split-file"):
        point_at_data(cfg, synth_v1)
    with pytest.raises(XJepaError, match=r"^--split-file /typo.csv is not there$"):
        point_at_data(cfg, synth_v1, split_file="/typo.csv")
