"""Metrics against scikit-learn and hand computations (mir_eval style: known answers)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from zslkit import DataError
from zslkit.evaluate.metrics import (
    bootstrap_ci,
    chance_test,
    cross_auc,
    evaluate,
    metric_names,
    per_item,
    permutation_test,
    roc_auc,
)


def apk_reference(actual, predicted, k):
    """Kaggle ml_metrics.apk, as the original eval.py used it."""
    predicted = predicted[:k]
    score, hits = 0.0, 0.0
    for i, p in enumerate(predicted):
        if p in actual and p not in predicted[:i]:
            hits += 1.0
            score += hits / (i + 1.0)
    return score / min(len(actual), k) if actual else 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.sampled_from([3, 6, 1000]), axis=st.sampled_from([0, 1]),
       shape=st.tuples(st.integers(2, 30), st.integers(2, 30)))
def test_auc_and_ap_equal_sklearn_per_row_with_ties(seed, levels, axis, shape):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, shape).astype(np.float32)  # few levels: many ties
    labels = rng.random(shape) < 0.35
    got = per_item(scores, labels, axis=axis, chunk_elements=7)  # tiny chunks: many passes
    s, y = (scores, labels) if axis == 1 else (scores.T, labels.T)
    for i in range(len(s)):
        if 0 < y[i].sum() < len(y[i]):
            assert got["AUC"][i] == pytest.approx(roc_auc_score(y[i], s[i]), abs=1e-12)
            assert got["AP"][i] == pytest.approx(average_precision_score(y[i], s[i]), abs=1e-12)
        else:
            assert np.isnan(got["AUC"][i]) and np.isnan(got["AP"][i]) and not got["valid"][i]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.sampled_from([1, 3, 5, 50]))
def test_top_k_metrics_by_hand(seed, k):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((12, 20))  # continuous: no ties
    labels = rng.random((12, 20)) < 0.3
    labels[:, 0] = True
    labels[:, 1] = False
    got = per_item(scores, labels, axis=1, ks=(k,))
    for i in range(12):
        ranked = list(np.argsort(-scores[i]))
        top = labels[i, ranked[:k]]
        assert got[f"hit@{k}"][i] == float(top.any())
        assert got[f"P@{k}"][i] == pytest.approx(top.sum() / k)
        actual = set(np.flatnonzero(labels[i]))
        assert got[f"AP@{k}"][i] == pytest.approx(apk_reference(actual, ranked, k))
    if k == 1:
        np.testing.assert_array_equal(got["AP@1"], got["hit@1"])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.sampled_from([2, 5, 0]), axis=st.sampled_from([0, 1]),
       shape=st.tuples(st.integers(1, 40), st.integers(1, 40)), dtype=st.sampled_from([np.float32, np.float64]))
def test_the_torch_backend_gives_the_numpy_numbers(seed, levels, axis, shape, dtype):
    """Many ties (levels 2 and 5) or none (0: continuous scores): every metric agrees, the top-k ones
    included, because both backends let tied items keep the table's order."""
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, levels, shape) / levels if levels else rng.standard_normal(shape)).astype(dtype)
    labels = rng.random(shape) < 0.3
    a = per_item(scores, labels, axis=axis, ks=(1, 3, 10), chunk_elements=50)
    b = per_item(scores, labels, axis=axis, ks=(1, 3, 10), chunk_elements=50, backend="torch", device="cpu")
    assert set(a) == set(b)
    for name in a:
        if name.startswith("AP"):  # float sums in another order
            np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(b[name], a[name], err_msg=name)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_tied_items_keep_the_table_order_in_a_top_k_list(backend):
    # row 0: all four tie, the positive is last in the table -> not in the top 1..3;
    # row 1: the same scores, the positive first -> hit@1
    scores = np.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]], dtype=np.float32)
    labels = np.array([[0, 0, 0, 1], [1, 0, 0, 0]], dtype=bool)
    got = per_item(scores, labels, axis=1, ks=(1, 3), backend=backend)
    np.testing.assert_array_equal(got["hit@1"], [0.0, 1.0])
    np.testing.assert_array_equal(got["hit@3"], [0.0, 1.0])
    np.testing.assert_array_equal(got["AUC"], [0.5, 0.5])  # AUC and AP see the tie as a tie
    np.testing.assert_array_equal(got["AP"], [0.25, 0.25])
    # long rows of three levels (where a plain sort scrambles ties), against a stable-sort reference
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((20, 1000)) * 2).astype(np.float32)
    labels = rng.random((20, 1000)) < 0.05
    got = per_item(scores, labels, axis=1, ks=(10, 100), backend=backend)
    top = np.take_along_axis(labels, np.argsort(-scores, axis=1, kind="stable"), axis=1)
    np.testing.assert_array_equal(got["P@10"], top[:, :10].sum(axis=1) / 10)
    np.testing.assert_array_equal(got["P@100"], top[:, :100].sum(axis=1) / 100)


def test_an_unknown_backend_is_named():
    with pytest.raises(DataError, match="metric backend 'jax'"):
        per_item(np.zeros((2, 2)), np.eye(2), backend="jax")


def test_known_answers():
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    labels = np.array([[1, 0, 1, 0]], dtype=bool)
    got = evaluate(scores, labels, axis=1, ks=(1, 2))
    assert got["AUC"]["value"] == pytest.approx(0.75)          # 3 of 4 pairs ordered
    assert got["AP"]["value"] == pytest.approx((1 + 2 / 3) / 2)
    assert got["P@2"]["value"] == 0.5 and got["hit@1"]["value"] == 1.0
    assert got["AP@2"]["value"] == pytest.approx(0.5)            # (1/1) / min(2, 2)
    tied = per_item(np.array([[0.5, 0.5, 0.5, 0.5]]), labels)
    assert tied["AUC"][0] == 0.5 and tied["AP"][0] == 0.5          # all tied: chance


def test_degenerate_rows_are_excluded_from_every_metric_and_counted():
    scores = np.random.default_rng(0).random((5, 6))
    labels = np.zeros((5, 6), dtype=bool)
    labels[0, :2] = True
    labels[1, :] = True       # no negative
    labels[3, 3] = True       # row 2 and 4: no positive
    got = evaluate(scores, labels, axis=1)
    for name in metric_names():
        assert got[name]["n"] == 2 and got[name]["n_excluded"] == 3, name
    assert got["per_item"]["valid"].tolist() == [True, False, False, True, False]


def test_validate_names_the_problem():
    with pytest.raises(DataError, match="same shape"):
        per_item(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(DataError, match="row 1, column 2: nan"):
        per_item(np.array([[0, 1, 2.0], [0, 1, np.nan]]), np.ones((2, 3)))
    with pytest.raises(DataError, match="0/1"):
        per_item(np.zeros((2, 2)), np.full((2, 2), 2))


def test_bootstrap_interval():
    values = np.random.default_rng(1).normal(0.7, 0.1, 400)
    lo, hi = bootstrap_ci(values, 500, seed=0)
    assert lo < values.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * values.std() / 20, rel=0.15)
    assert bootstrap_ci(values, 500, seed=0) == (lo, hi)
    assert np.isnan(bootstrap_ci(values, 0)[0])


def test_chance_test_separates_chance_from_signal():
    rng = np.random.default_rng(2)
    assert chance_test(rng.normal(0.5, 0.05, 40))["p"] > 0.01
    assert chance_test(rng.normal(0.6, 0.05, 40))["p"] < 1e-6


def test_cross_auc_diagonal_is_per_tag_auc_and_off_diagonal_swaps_tags():
    rng = np.random.default_rng(3)
    labels = rng.random((60, 5)) < 0.3
    labels[:, 4] = False                                   # degenerate column: NaN row and column
    scores = np.round(rng.random((60, 5)), 1)              # ties on purpose
    m = cross_auc(scores, labels)
    np.testing.assert_allclose(np.diag(m)[:4], roc_auc(scores, labels, axis=0)[:4], atol=1e-12)
    assert roc_auc_score(labels[:, 1], scores[:, 0]) == pytest.approx(m[0, 1])
    assert np.isnan(m[4]).all() and np.isnan(m[:, 4]).all()


def test_permutation_test_needs_tag_specific_scores():
    rng = np.random.default_rng(0)
    labels = rng.random((400, 12)) < 0.2
    richness = labels.sum(axis=1, keepdims=True)           # what every tag shares
    specific = labels + rng.normal(0, 0.8, labels.shape)
    shared = richness + rng.normal(0, 0.8, labels.shape)
    good, common = permutation_test(specific, labels), permutation_test(shared, labels)
    assert good["own"] > 0.7 and good["p"] < 0.001
    # above 0.5 for every tag, so the t-test against chance rejects; but no tag-specific signal
    assert common["own"] > 0.6 and chance_test(np.diag(cross_auc(shared, labels)))["p"] < 1e-3
    assert common["p"] > 0.05 and abs(common["own"] - common["permuted"]) < 0.03


def test_permutation_test_is_exact_with_few_tags():
    """Small data: with n! <= n_permutations every permutation is enumerated once; 2 tags give p in {0.5, 1}."""
    rng = np.random.default_rng(1)
    labels = rng.random((80, 2)) < 0.4
    labels[:2] = [[True, False], [False, True]]
    perfect = labels + rng.normal(0, 0.01, labels.shape)
    t = permutation_test(perfect, labels, 10_000)
    assert t["exact"] and t["min_p"] == 0.5 and t["p"] == 0.5 and t["n"] == 2
    assert permutation_test(perfect, labels, 10_000, seed=5) == t  # exact: no seed dependence
    labels3 = rng.random((120, 4)) < 0.3
    t3 = permutation_test(labels3 + rng.normal(0, 0.3, labels3.shape), labels3, 10_000)
    assert t3["exact"] and t3["min_p"] == pytest.approx(1 / 24) and t3["p"] == pytest.approx(1 / 24)
    big = permutation_test(labels3 + rng.normal(0, 0.3, labels3.shape), labels3, 10)  # 4! > 10: drawn
    assert not big["exact"] and big["min_p"] == pytest.approx(1 / 11)
