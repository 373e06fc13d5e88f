"""The shift is measured: stage 05 scores B-X and (B+C)-Y on held-out tracks and on the others, with the
difference and its interval (zslkit.evaluate.protocol.shift_rows); the report page shows it."""
import re

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_dataset, trained_run

from zslkit import config
from zslkit.data.splits import prepare_split
from zslkit.evaluate import metrics
from zslkit.evaluate import protocol as evaluation
from zslkit.evaluate.embeddings import Embeddings
from zslkit.show import report_page


def test_paired_difference_is_the_mean_per_item_difference_with_a_bootstrap_over_pairs():
    a = np.array([0.9, 0.8, np.nan, 0.7, 0.95])
    b = np.array([0.6, 0.7, 0.5, np.nan, 0.65])
    d = metrics.paired_difference(a, b, 500, seed=1)
    assert d["value"] == pytest.approx(np.mean([0.3, 0.1, 0.3])) and (d["n"], d["n_excluded"]) == (3, 2)
    assert 0 < d["ci_low"] <= d["value"] <= d["ci_high"]
    assert metrics.paired_difference(a, b, 500, seed=1) == d  # seeded


def test_difference_of_means_resamples_each_sample():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.6, 0.05, 40), np.r_[rng.normal(0.8, 0.05, 60), np.nan]
    d = metrics.difference_of_means(a, b, 1000, seed=0)
    assert d["value"] == pytest.approx(a.mean() - np.nanmean(b)) and (d["n"], d["n_excluded"]) == (100, 1)
    assert d["ci_low"] < d["value"] < d["ci_high"] < 0
    assert np.isnan(metrics.difference_of_means(a[:1], b, 100)["ci_low"])


def constructed(tmp_path, degrade):
    """A dataset with held-out tracks and hand-made embeddings that score every tag well (a track is
    the sum of its tags' vectors plus noise); ``degrade`` replaces the held-out tracks' vectors by noise."""
    ds = synthetic_dataset(tmp_path / "ds", n_tracks=240, n_tags=12, heldout=0.3)
    P = config.resolve({"split": {"stratify": "none", "seed": 2, "ratio": 0.75}}, root=tmp_path)
    split = prepare_split(ds, P["split"])
    rng = np.random.default_rng(0)
    tags = list(split.seen) + list(split.unseen)
    tag_emb = rng.standard_normal((len(tags), 32)).astype(np.float32)
    ids = ds.tracks.track_id.tolist()
    labels = ds.labels(ids, tags).astype(np.float32)
    tracks = labels @ tag_emb + 0.3 * rng.standard_normal((len(ids), 32)).astype(np.float32)
    held = ds.tracks.heldout.to_numpy() == 1
    if degrade:
        tracks[held] = rng.standard_normal((int(held.sum()), 32))
    seen = np.arange(len(tags)) < len(split.seen)
    emb = Embeddings(ids, tracks.astype(np.float32), tags, tag_emb, seen, tag_emb.copy(), {"sideinfo": "x"})
    return ds, split, P, emb


def test_shift_rows_measure_a_constructed_shift(tmp_path):
    ds, split, P, emb = constructed(tmp_path, degrade=True)
    rows = evaluation.shift_rows(emb, ds, split, "A", P["evaluate"], "embedding x", seed=0)
    t = pd.DataFrame(rows)
    assert (t.task == "shift").all() and (t.train_setting == "A-X").all() and (t.model == "embedding x").all()
    want = {f"{s} {p}" for s in ("B-X", "(B+C)-Y") for p in ("held-out", "others", "held-out minus others")}
    assert set(t.test_setting) == want and set(t.metric) == {"AUC-l", "AUC-i"}
    v = t.set_index(["test_setting", "metric"])
    for s in ("B-X", "(B+C)-Y"):
        for m in ("AUC-l", "AUC-i"):
            held, others, diff = (v.loc[(f"{s} {p}", m)] for p in ("held-out", "others", "held-out minus others"))
            assert others.value > 0.8 and abs(held.value - 0.5) < 0.15
            assert diff.value < 0 and diff.ci_high < 0, (s, m)  # worse on held-out tracks, surely
            assert held.ci_low <= held.value <= held.ci_high
            if m == "AUC-l":  # paired by tag: the difference of the means over the tags paired
                assert diff.n <= min(held.n, others.n)
            else:
                assert diff.n == held.n + others.n
                assert diff.value == pytest.approx(held.value - others.value)
    # the held-out and other tracks are the set's own tracks (A-X: no B track trained)
    n_held = sum(t in set(split.tracks["heldout"]) for t in split.track_set("B"))
    assert v.loc[("B-X held-out", "AUC-i")].n + v.loc[("B-X held-out", "AUC-i")].n_excluded == n_held


def test_no_shift_means_an_interval_around_zero(tmp_path):
    ds, split, P, emb = constructed(tmp_path, degrade=False)
    t = pd.DataFrame(evaluation.shift_rows(emb, ds, split, "A", P["evaluate"], "m", seed=0))
    diff = t[t.test_setting == "(B+C)-Y held-out minus others"].set_index("metric")
    assert diff.loc["AUC-i"].ci_low < 0 < diff.loc["AUC-i"].ci_high


def test_no_heldout_column_no_shift_rows_and_training_tracks_are_not_others(tmp_path):
    ds, split, P, emb = constructed(tmp_path, degrade=True)
    plain = type(ds)(ds.root, ds.meta, ds.tracks.drop(columns="heldout"), ds.tags, ds.annotations)
    assert evaluation.shift_rows(emb, plain, split, "A", P["evaluate"], "m") == []
    t = pd.DataFrame(evaluation.shift_rows(emb, ds, split, "AB", P["evaluate"], "m", seed=0))
    others = t[(t.test_setting == "B-X others") & (t.metric == "AUC-i")].iloc[0]
    trained = set(split.train_tracks("AB"))
    b_others = [x for x in split.track_set("B") if x not in set(split.tracks["heldout"]) and x not in trained]
    assert others.n + others.n_excluded == len(b_others)


def test_report_page_shows_the_shift_beside_the_headline(tmp_path):
    ds, split, P, emb = constructed(tmp_path, degrade=True)
    rows = evaluation.shift_rows(emb, ds, split, "A", P["evaluate"], "embedding x", seed=0)
    rows += evaluation.evaluate_embeddings(emb, ds, split, "A", P["evaluate"], "embedding x", 0,
                                           [("retrieval", "B+C", "Y"), ("seen-label", "B", "X")])[0]
    results = pd.DataFrame(rows).assign(stage="05_evaluate")
    head = report_page.headline(results)
    assert {"B-X AUC-l held-out minus others", "(B+C)-Y AUC-l held-out minus others"} <= set(head.columns)
    cell = head.set_index("model").loc["embedding x", "(B+C)-Y AUC-l held-out minus others"]
    assert cell.startswith("-") and "[" in cell
    shift = report_page.shift_table(results)
    assert list(shift.columns[:3]) == ["model", "test", "metric"]
    assert {"held-out", "others", "held-out minus others"} <= set(shift.columns) and len(shift) == 4
    assert report_page.shift_table(results[results.task != "shift"]).empty
    results[["stage", "model", "train_setting", "test_setting", "task", "labels", "metric", "value", "ci_low",
             "ci_high", "n", "n_excluded"]].to_csv(tmp_path / "results.csv", index=False)
    page = report_page.write_index(tmp_path).read_text()
    text = re.sub(r"<[^>]+>", "", page)  # its terms are links to the glossary
    assert "The held-out condition" in text and "(B+C)-Y AUC-l held-out minus others" in text


@pytest.mark.slow
def test_stage_05_adds_shift_rows_for_every_head(tmp_path):
    from zslkit.evaluate import embed
    ds, split, P, run_dir = trained_run(tmp_path, epochs=3, n_tracks=200, heldout=0.3, baseline=False)
    held = set(split.tracks["heldout"])
    assert held and not held & set(split.train_tracks("A") + split.valid_tracks("A"))
    embed.embed_run(ds, split, P, run_dir)
    t = pd.DataFrame(evaluation.evaluate_run(ds, split, P, run_dir)["rows"])
    shift = t[t.task == "shift"]
    joint = set(t[t.task == "retrieval"].model)
    assert set(shift.model) == joint and len(joint) == 2 * len(P["evaluate"]["heads"])
    assert (shift.groupby("model").size() == 12).all()
