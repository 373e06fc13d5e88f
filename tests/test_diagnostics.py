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
