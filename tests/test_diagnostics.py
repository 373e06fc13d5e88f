"""Diagnostics on inputs whose answers are known."""
import numpy as np
import pandas as pd
import pytest

from zslkit.evaluate import diagnostics


def test_prototypes_are_mean_unit_embeddings_of_positives():
    emb = np.array([[2, 0], [0, 3], [1, 1]], dtype=np.float32)
    labels = np.array([[1, 0], [1, 0], [0, 0]], dtype=bool)
    proto = diagnostics.prototypes(emb, labels)
    np.testing.assert_allclose(proto[0], [0.5, 0.5])
    assert np.isnan(proto[1]).all()  # a tag without positives has no prototype


def test_group_auc_averages_per_group_and_split():
    per_tag = pd.DataFrame({"id": list("abcd"), "group": ["g", "g", "g", "h"], "split": ["X", "X", "Y", "Y"],
                            "AUC-l": [0.6, 0.8, 0.5, 0.9]})
    out = diagnostics.group_auc(per_tag).set_index(["group", "split"])
    assert out.loc[("g", "X"), "AUC-l"] == pytest.approx(0.7) and out.loc[("g", "X"), "n_tags"] == 2
    assert out.loc[("h", "Y"), "AUC-l"] == 0.9


@pytest.mark.parametrize("probe, rho, words", [(0.9, 0.5, ["the audio separates", "agrees with the audio"]),
                                               (0.9, 0.12, ["agrees weakly"]), (0.9, 0.0, ["unrelated"]),
                                               (0.55, -0.15, ["barely separates", "runs against"])])
def test_summary_reads_the_numbers(probe, rho, words):
    d = {"upper_bounds": pd.DataFrame({"probe": [probe], "prototype": [probe - 0.05]}),
         "alignment": {"seen-unseen pairs": rho}}
    line = diagnostics.summary(d)
    assert all(w in line for w in words) and f"{rho:.2f}" in line


def test_summary_says_when_the_data_are_too_small_to_judge():
    """Few positives or no defined bound or rho: the line says so instead of a verdict (small data)."""
    few = {"upper_bounds": pd.DataFrame({"tag": ["a", "b"], "n_pos_fit": [2, 3], "n_pos_test": [3, 1],
                                         "prototype": [0.2, 0.3], "probe": [0.1, 0.2]}),
           "alignment": {"seen-unseen pairs": 0.1}}
    line = diagnostics.summary(few)
    assert "too few positive tracks" in line and "at most 2 positive track(s)" in line and "barely" not in line
    enough = {**few, "upper_bounds": few["upper_bounds"].assign(n_pos_fit=[9, 9], n_pos_test=[9, 9])}
    assert "the audio barely separates" in diagnostics.summary(enough)
    none = {"upper_bounds": few["upper_bounds"].assign(prototype=np.nan, probe=np.nan),
            "alignment": {"seen-unseen pairs": np.nan}}
    line = diagnostics.summary(none)
    assert "cannot be estimated" in line and "too few seen-unseen tag pairs" in line and "nan" not in line
