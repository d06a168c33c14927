"""Embeddings and faiss indexes: exact search, save/load with metadata, refusal of foreign queries."""

import numpy as np
import pytest

from xjepa_kit.embeddings import Embeddings
from xjepa_kit.errors import XJepaError
from xjepa_kit.retrieval import IndexMismatchError, RetrievalIndex


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_is_exact_and_round_trips(tmp_path):
    archive, queries = _unit(500, 32), _unit(20, 32, seed=1)
    index = RetrievalIndex.build(archive, ids=[f"p{i}" for i in range(500)], meta={"modality": "s2",
                                                                                  "checkpoint_hash": "abc"})
    scores, ranked = index.search(queries, 10)
    expected = np.argsort(-(queries @ archive.T), axis=1)[:, :10]
    assert np.array_equal(ranked, expected)
    assert np.allclose(scores, np.take_along_axis(queries @ archive.T, expected, 1), atol=1e-5)
    path = index.save(tmp_path / "archive.npz")
    again = RetrievalIndex.load(path)
    assert again.meta == index.meta and again.meta["dim"] == 32 and list(again.ids[:2]) == ["p0", "p1"]
    assert np.array_equal(again.search(queries, 10)[1], ranked)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_hnsw_and_ivfpq_find_near_duplicates():
    archive = _unit(3000, 64)
    queries = archive[:50] + 0.01 * _unit(50, 64, seed=2)
    for kind in ("hnsw", "ivfpq"):
        _, ranked = RetrievalIndex.build(archive, kind=kind).search(queries, 5)
        hits = (ranked == np.arange(50)[:, None]).any(1).mean()
        assert hits >= 0.9, kind


def test_foreign_queries_are_refused():
    index = RetrievalIndex.build(_unit(50, 16), meta={"modality": "s2", "checkpoint_hash": "abc"})
    with pytest.raises(IndexMismatchError, match="dimension 8"):
        index.search(_unit(3, 8), 5)
    with pytest.raises(IndexMismatchError, match="checkpoint_hash"):
        index.search(_unit(3, 16), 5, expect={"checkpoint_hash": "zzz"})
    with pytest.raises(IndexMismatchError, match="modality"):
        index.search(_unit(3, 16), 5, expect={"modality": "s1"})
    assert index.search(_unit(3, 16), 5, expect={"modality": "s2", "checkpoint_hash": "abc"})[1].shape == (3, 5)


def test_bad_inputs(tmp_path):
    with pytest.raises(XJepaError, match="ivfpq index needs at least"):
        RetrievalIndex.build(_unit(100, 16), kind="ivfpq")
    bad = _unit(10, 4)
    bad[3, 1] = np.nan
    with pytest.raises(XJepaError, match="NaN"):
        RetrievalIndex.build(bad)
    with pytest.raises(XJepaError, match="unknown index kind"):
        RetrievalIndex.build(_unit(10, 4), kind="lsh")
    with pytest.raises(XJepaError, match=r"must be L2-normalised \(DESIGN 7\): row 0 has norm 2"):
        RetrievalIndex.build(2 * _unit(10, 4))
    (tmp_path / "x.npz").write_bytes(b"junk")
    with pytest.raises(XJepaError, match="not an xjepa index"):
        RetrievalIndex.load(tmp_path / "x.npz")
    index = RetrievalIndex.build(_unit(300, 16))
    whole = index.save(tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    with pytest.raises(XJepaError, match="cut.npz: not an xjepa index"):
        RetrievalIndex.load(tmp_path / "cut.npz")
    with pytest.raises(XJepaError, match="k must be at least 1"):
        index.search(_unit(2, 16), 0)
    queries = _unit(4, 16)
    queries[2, 5] = np.inf
    with pytest.raises(XJepaError, match=r"1 query vector\(s\) hold NaN or inf \(first: row 2\)"):
        index.search(queries, 3)


def test_embeddings_save_load(tmp_path):
    emb = Embeddings({"s1": _unit(4, 8), "s2": _unit(4, 8, 1)}, np.array(["a", "b", "c", "d"]),
                     np.eye(4, 19, dtype=bool), np.zeros((4, 4)), {"checkpoint_hash": "h", "dim": 8})
    again = Embeddings.load(emb.save(tmp_path / "e.npz"))
    assert again.meta == emb.meta and list(again.ids) == ["a", "b", "c", "d"]
    assert np.array_equal(again.vectors["s2"], emb.vectors["s2"]) and again.labels.dtype == bool
    with pytest.raises(XJepaError, match="not found"):
        Embeddings.load(tmp_path / "missing.npz")
    whole = (tmp_path / "e.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[:-200])
    with pytest.raises(XJepaError, match="cut.npz: not an xjepa embeddings"):
        Embeddings.load(tmp_path / "cut.npz")


def test_index_from_embeddings_refuses_queries_of_another_checkpoint(tmp_path):
    labels = np.zeros((40, 19), bool)
    make = lambda h, seed: Embeddings({"s1": _unit(40, 16, seed), "s2": _unit(40, 16, seed + 1)},  # noqa: E731
                                      np.array([f"p{i}" for i in range(40)]), labels, np.zeros((40, 4)),
                                      {"checkpoint_hash": h, "method": "xjepa"})
    archive = make("aaa", 0)
    index = RetrievalIndex.load(RetrievalIndex.from_embeddings(archive, "s2").save(tmp_path / "i.npz"))
    assert index.meta["modality"] == "s2" and index.meta["checkpoint_hash"] == "aaa"
    _, ranked = index.search_embeddings(make("aaa", 0), "s2", 1)
    assert ranked[:, 0].tolist() == list(range(40))  # each vector finds itself
    with pytest.raises(IndexMismatchError, match="checkpoint_hash"):
        index.search_embeddings(make("bbb", 0), "s1", 5)
    with pytest.raises(XJepaError, match="no 'rgb' vectors"):
        RetrievalIndex.from_embeddings(archive, "rgb")


def test_tied_scores_come_in_archive_row_order_for_every_k():
    archive = np.tile(_unit(1, 8), (12, 1))  # 12 identical items: every score ties
    archive[7] = -archive[7]  # one item scores lower
    index = RetrievalIndex.build(archive)
    for k in (1, 4, 11, 12):
        scores, rows = index.search(archive[:1], k)
        assert rows[0].tolist() == ([r for r in range(12) if r != 7] + [7])[:k]
        assert np.all(np.diff(scores[0]) <= 0)


def test_embeddings_of_another_run_or_dataset_are_refused_by_evaluation_and_explorer(tmp_path):
    from xjepa_kit.evaluate import evaluate_embeddings
    from xjepa_kit.explorer_logic import search_results

    def emb(hash_: str, dim: int = 8, classes: int = 19, mods=("s1", "s2")) -> Embeddings:
        return Embeddings({m: _unit(5, dim) for m in mods}, np.array([f"p{i}" for i in range(5)]),
                          np.ones((5, classes), bool), np.zeros((5, 4)), {"checkpoint_hash": hash_})

    queries = Embeddings.load(emb("a" * 64).save(tmp_path / "queries.npz"))
    for archive, match in [(emb("b" * 64), "different checkpoints"), (emb("a" * 64, dim=4), "dimension 8 and 4"),
                           (emb("a" * 64, classes=62), "19 and 62 classes"),
                           (emb("a" * 64, mods=("sentinel", "rgb")), r"no \['s1', 's2'\] vectors")]:
        with pytest.raises(XJepaError, match=match) as err:
            evaluate_embeddings(queries, archive, ks=(1,))
        assert "queries.npz" in str(err.value)  # the file is named
        if "vectors" not in match:  # search_results names the missing modality itself
            with pytest.raises(XJepaError, match=match):
                search_results(queries, 0, "s1->s2", 3, archive=archive)
    assert evaluate_embeddings(queries, emb("a" * 64), ks=(1,))["directions"]  # the same run's archive is fine


def test_atomic_writes_keep_the_usual_file_mode(tmp_path):
    import stat

    from xjepa_kit.atomic import atomic_savez, atomic_write_text

    (tmp_path / "plain.txt").write_text("x")  # what open(path, "w") gives under this umask
    usual = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    for path in (atomic_write_text(tmp_path / "report.json", "{}"), atomic_savez(tmp_path / "e.npz", ids=np.arange(2))):
        assert stat.S_IMODE(path.stat().st_mode) == usual  # mkstemp alone would leave 0600


def test_leftovers_of_killed_writes_are_removed_by_the_next_write(tmp_path):
    import os
    import time

    from xjepa_kit.atomic import STALE_TEMP_S, atomic_savez
    from xjepa_kit.checkpoint import save_checkpoint

    for target, leftover in (("e.npz", ".e.npz.k1ll3d.npz"), ("last.pt", ".last.pt.k1ll3d")):
        old, fresh = tmp_path / leftover, tmp_path / (leftover + "2")  # a killed write; one maybe still running
        old.write_bytes(b"x" * 100)
        fresh.write_bytes(b"x")
        then = time.time() - STALE_TEMP_S - 60
        os.utime(old, (then, then))
        other = tmp_path / ".other.npz.k1ll3d.npz"  # a leftover of another target is not touched
        other.write_bytes(b"x")
        os.utime(other, (then, then))
        if target.endswith(".npz"):
            atomic_savez(tmp_path / target, ids=np.arange(2))
        else:
            save_checkpoint(tmp_path / target, {"step": 1})
        assert not old.exists() and fresh.exists() and other.exists() and (tmp_path / target).exists()
