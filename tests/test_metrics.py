"""Retrieval metrics (DESIGN 7): hand-computed cases, guards, vectorised == loop reference, chunking."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from xjepa_kit import metrics as M
from xjepa_kit.metrics import per_query_metrics, retrieval_metrics, retrieval_metrics_loop


def hot(sets, c):
    """Label sets -> bool multi-hot [N, c]."""
    out = np.zeros((len(sets), c), dtype=bool)
    for i, s in enumerate(sets):
        out[i, list(s)] = True
    return out


# Archive (C = 4): a0={0,1}  a1={2}  a2={} (empty)  a3={0,1,2,3}  a4={3}
ARCHIVE = hot([{0, 1}, {2}, set(), {0, 1, 2, 3}, {3}], 4)
# q0={0,1} ranks a0 a1 a2 a3; q1={2} ranks a4 a0 a2 a1
QUERIES = hot([{0, 1}, {2}], 4)
RANKED = np.array([[0, 1, 2, 3], [4, 0, 2, 1]])


def test_hand_computed_per_query():
    # q0 @4: |Y_q & Y_r| = 2,0,0,2 ; |Y_r| = 2,1,0,4 (a2 empty: its term is 0)
    #   P = (2/2 + 0 + 0 + 2/4)/4 = 0.375 ; R = (2/2 + 0 + 0 + 2/2)/4 = 0.5
    #   F1 = 2*0.375*0.5/0.875 = 3/7 ; rel = 1,0,0,1 -> AP = (1/1 + 2/4)/2 = 0.75
    # q1 @4: intersections 0,0,0,1 ; |Y_r| = 1,2,0,1
    #   P = (1/1)/4 = 0.25 ; R = (1/1)/4 = 0.25 ; F1 = 0.25 ; AP = (1/4)/1 = 0.25
    pq = per_query_metrics(RANKED, QUERIES, ARCHIVE, k=4)
    np.testing.assert_allclose(pq["P"], [0.375, 0.25])
    np.testing.assert_allclose(pq["R"], [0.5, 0.25])
    np.testing.assert_allclose(pq["F1"], [3 / 7, 0.25])
    np.testing.assert_allclose(pq["AP"], [0.75, 0.25])
    assert "pair" not in pq


def test_k_smaller_than_K_and_nothing_relevant():
    # @2: q0: P = (1 + 0)/2 = 0.5, R = (1 + 0)/2 = 0.5, F1 = 0.5, AP = 1/1 = 1
    #     q1: top-2 = a4={3}, a0={0,1}: nothing relevant -> P = R = F1 = AP = 0
    pq = per_query_metrics(RANKED, QUERIES, ARCHIVE, k=2)
    np.testing.assert_allclose(pq["P"], [0.5, 0.0])
    np.testing.assert_allclose(pq["F1"], [0.5, 0.0])
    np.testing.assert_allclose(pq["AP"], [1.0, 0.0])
    m = retrieval_metrics(RANKED, QUERIES, ARCHIVE, ks=(2, 4))
    # @2 means: P = R = F1 = F1_csmae = 0.25, mAP = 0.5
    assert m["P@2"] == pytest.approx(0.25) and m["R@2"] == pytest.approx(0.25)
    assert m["F1@2"] == pytest.approx(0.25) and m["F1_csmae@2"] == pytest.approx(0.25)
    assert m["mAP@2"] == pytest.approx(0.5)
    # @4 means: P = (0.375+0.25)/2 = 0.3125, R = (0.5+0.25)/2 = 0.375, F1 = (3/7+0.25)/2,
    #           F1_csmae = 2*0.3125*0.375/0.6875 = 0.340909..., mAP = (0.75+0.25)/2 = 0.5
    assert m["P@4"] == pytest.approx(0.3125) and m["R@4"] == pytest.approx(0.375)
    assert m["F1@4"] == pytest.approx((3 / 7 + 0.25) / 2)
    assert m["F1_csmae@4"] == pytest.approx(2 * 0.3125 * 0.375 / 0.6875)
    assert m["mAP@4"] == pytest.approx(0.5)
    assert set(m) == {f"{n}@{k}" for n in ("F1", "F1_csmae", "P", "R", "mAP") for k in (2, 4)}
    assert all(type(v) is float for v in m.values())


def test_empty_query_label_set_scores_zero():
    # q = {} against a0..a3: every intersection is 0 and |Y_q| = 0 -> all terms 0, no NaN
    pq = per_query_metrics(RANKED[:1], hot([set()], 4), ARCHIVE, k=4)
    for name in ("P", "R", "F1", "AP"):
        assert pq[name][0] == 0.0


def test_all_results_identical_labels_score_one():
    # every result has exactly the query's labels -> P = R = F1 = AP = 1
    arch = hot([{1, 3}] * 5, 4)
    m = retrieval_metrics(np.array([[0, 1, 2], [4, 3, 2]]), hot([{1, 3}, {1, 3}], 4), arch, ks=(1, 3))
    assert all(v == pytest.approx(1.0) for v in m.values())


def test_f1_and_f1_csmae_differ():
    # qA={0,1,2,3} retrieves a0={0}: P = 1, R = 1/4, F1 = 2*0.25/1.25 = 0.4
    # qB={0} retrieves a1={0,1,2,3}: P = 1/4, R = 1, F1 = 0.4
    # F1 = mean = 0.4 ; P̄ = R̄ = 0.625 -> F1_csmae = 0.625
    m = retrieval_metrics(np.array([[0], [1]]), hot([{0, 1, 2, 3}, {0}], 4),
                          hot([{0}, {0, 1, 2, 3}], 4), ks=(1,))
    assert m["F1@1"] == pytest.approx(0.4)
    assert m["F1_csmae@1"] == pytest.approx(0.625)
    assert m["mAP@1"] == pytest.approx(1.0)


def test_pair_recall_with_and_without_partner():
    # query x: partner at rank 1; y: partner at rank 3; z: partner (archive 3) not in top 3
    arch = hot([{0}] * 5, 2)
    ranked = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 4]])
    qids, aids = np.array(["x", "y", "z"]), np.array(["x", "q", "y", "z", "w"])
    m = retrieval_metrics(ranked, hot([{0}] * 3, 2), arch, ks=(1, 3), query_ids=qids, archive_ids=aids)
    assert m["pair_recall@1"] == pytest.approx(1 / 3)
    assert m["pair_recall@3"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(
        per_query_metrics(ranked, hot([{0}] * 3, 2), arch, k=3, query_ids=qids, archive_ids=aids)["pair"],
        [1, 1, 0])
    assert "pair_recall@1" not in retrieval_metrics(ranked, hot([{0}] * 3, 2), arch, ks=(1,))


def test_single_label_one_hot():
    # fMoW-style: query class 0, results classes 0,1,0 -> P = R = 2/3, AP = (1/1 + 2/3)/2 = 5/6
    pq = per_query_metrics(np.array([[0, 1, 2]]), np.eye(3)[[0]], np.eye(3)[[0, 1, 0]], k=3)
    np.testing.assert_allclose([pq["P"][0], pq["R"][0], pq["F1"][0], pq["AP"][0]],
                               [2 / 3, 2 / 3, 2 / 3, 5 / 6])


def test_float_labels_accepted_and_bad_input_refused():
    m_bool = retrieval_metrics(RANKED, QUERIES, ARCHIVE, ks=(4,))
    assert retrieval_metrics(RANKED, QUERIES.astype(np.float32), ARCHIVE.astype(float), ks=(4,)) == m_bool
    with pytest.raises(ValueError, match="0/1"):
        retrieval_metrics(RANKED, QUERIES * 0.5, ARCHIVE)
    with pytest.raises(ValueError, match="outside"):
        retrieval_metrics(np.array([[0, -1, 2, 3], [0, 1, 2, 3]]), QUERIES, ARCHIVE, ks=(4,))
    with pytest.raises(ValueError, match="k must be"):
        retrieval_metrics(RANKED, QUERIES, ARCHIVE, ks=(5,))
    with pytest.raises(ValueError, match="both"):
        retrieval_metrics(RANKED, QUERIES, ARCHIVE, ks=(4,), query_ids=[1, 2])


def random_case(seed, q=200, a=500, c=19, k=20, density=0.12):
    rng = np.random.default_rng(seed)
    ql, al = rng.random((q, c)) < density, rng.random((a, c)) < density  # some empty label sets
    ranked = np.stack([rng.choice(a, k, replace=False) for _ in range(q)])
    aids = rng.permutation(a) + 1000
    qids = np.where(rng.random(q) < 0.5, aids[ranked[np.arange(q), rng.integers(0, k, q)]],
                    aids[rng.integers(0, a, q)])
    return ranked, ql, al, qids, aids


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_vectorised_equals_loop_reference(seed):
    ranked, ql, al, qids, aids = random_case(seed)
    ks = (1, 5, 10, 20)
    fast = retrieval_metrics(ranked, ql, al, ks, qids, aids)
    slow = retrieval_metrics_loop(ranked, ql, al, ks, qids, aids)
    assert fast.keys() == slow.keys() and len(fast) == 6 * len(ks)
    for key in fast:
        assert fast[key] == pytest.approx(slow[key], rel=1e-12, abs=1e-15), key
    assert 0 < fast["pair_recall@20"] < 1 and 0 < fast["F1@10"] < 1


def test_more_than_64_classes_and_popcount_fallback(monkeypatch):
    ranked, ql, al, _, _ = random_case(7, c=70, density=0.3)  # two uint64 words per label set
    ks = (3, 20)
    slow = retrieval_metrics_loop(ranked, ql, al, ks)
    assert retrieval_metrics(ranked, ql, al, ks) == pytest.approx(slow, rel=1e-12)
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2.0 path: byte table
    x = np.array([0, 1, 2**64 - 1, 0xF0F0], dtype=np.uint64)
    np.testing.assert_array_equal(M._popcount(x), [0, 1, 64, 8])
    assert retrieval_metrics(ranked, ql, al, ks) == pytest.approx(slow, rel=1e-12)


def test_chunking_gives_identical_results():
    ranked, ql, al, qids, aids = random_case(11, q=333)
    ks = (5, 20)
    whole = retrieval_metrics(ranked, ql, al, ks, qids, aids, chunk_size=4096)
    for chunk in (1, 7, 100):
        assert retrieval_metrics(ranked, ql, al, ks, qids, aids, chunk_size=chunk) == whole
        pq, pq1 = (per_query_metrics(ranked, ql, al, 5, qids, aids, chunk_size=c) for c in (4096, chunk))
        for name in pq:
            np.testing.assert_array_equal(pq[name], pq1[name])


@pytest.mark.parametrize("seed", [0, 5])
def test_every_value_in_unit_interval(seed):
    ranked, ql, al, qids, aids = random_case(seed, density=0.4)
    m = retrieval_metrics(ranked, ql, al, (1, 2, 7, 20), qids, aids)
    assert all(0.0 <= v <= 1.0 for v in m.values()), m
    pq = per_query_metrics(ranked, ql, al, 7, qids, aids)
    assert all(((a >= 0) & (a <= 1)).all() for a in pq.values())
    assert max(pq["AP"]) == 1.0  # reached (some query's first result is relevant)


def test_memory_never_scales_with_queries_times_archive():
    # Q x A would be 2,000 x 200,000 = 400 MB even as bool; the chunked path stays far below
    rng = np.random.default_rng(0)
    q, a = 2_000, 200_000
    ql, al = rng.random((q, 19)) < 0.1, rng.random((a, 19)) < 0.1
    ranked = rng.integers(0, a, (q, 10))
    ids = np.arange(a)
    tracemalloc.start()
    try:
        retrieval_metrics(ranked, ql, al, (10,), ids[:q], ids)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40e6, peak
