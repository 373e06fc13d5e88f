"""Stage 05 on synthetic runs whose answers are known: zero-shot works with informative side
information, sits at chance with random vectors, and the protocol's bookkeeping holds."""
import pandas as pd
import pytest
from conftest import trained_run

from zslkit.evaluate import embed
from zslkit.evaluate import protocol as evaluation
from zslkit.show import tables

pytestmark = pytest.mark.slow  # trains small models (fixtures)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for kind in ("attributes", "random"):
        ds, split, P, run_dir = trained_run(tmp_path_factory.mktemp(kind), sideinfo=kind, epochs=12,
                                            n_tracks=300, n_tags=15, baseline=kind == "attributes")
        emb = embed.embed_run(ds, split, P, run_dir)["joint"]
        out[kind] = (ds, split, P, run_dir, emb)
    return out


def table(rows):
    return pd.DataFrame(rows)


def test_every_paper_setting_is_reported(runs):
    ds, split, P, run_dir, emb = runs["attributes"]
    rows, per_item = evaluation.evaluate_embeddings(emb, ds, split, "A", P["evaluate"], "embedding attributes")
    t = table(rows)
    assert split.tracks["C"] and split.tracks["B"], "the fixture must have B and C tracks"
    ann = set(t[t.task == "annotation"].test_setting)
    assert ann == {"B-Y", "C-Y", "(B+C)-Y", "B-(X+Y)", "C-(X+Y)", "(B+C)-(X+Y)"}
    assert set(t[t.task == "retrieval"].test_setting) == {"(B+C)-Y", "(A+B+C)-Y", "(B+C)-(X+Y)"}
    assert set(t[t.task == "seen-label"].test_setting) == {"A-valid-X", "B-X"}
    assert {"AUC-i", "MAP-i", "hit@1-i", "P@10-i", "AP@5-i"} <= set(t[t.task == "annotation"].metric)
    assert (t.train_setting == "A-X").all()
    auc = t[t.metric.isin(["AUC-i", "AUC-l"])]
    assert auc.value.between(0, 1).all() and (auc.ci_low <= auc.value).all() and (auc.value <= auc.ci_high).all()
    # per-tag retrieval table marks seen and unseen tags
    per_tag = per_item[("retrieval", "(B+C)-(X+Y)", "annotation")]
    assert set(per_tag.split) == {"X", "Y"} and len(per_tag) == ds.n_tags


def test_zero_shot_works_with_informative_side_information(runs):
    ds, split, P, run_dir, emb = runs["attributes"]
    rows, per_item = evaluation.evaluate_embeddings(emb, ds, split, "A", P["evaluate"], "embedding attributes")
    t = table(rows).set_index(["task", "test_setting", "metric"]).value.sort_index()
    assert t["annotation", "(B+C)-Y", "AUC-i"] > 0.75
    assert t["retrieval", "(B+C)-Y", "AUC-l"] > 0.75
    assert evaluation.chance_rows(per_item, "m", "A")[1]["value"] < 0.05  # the chance test rejects
    perm = t["permutation test", "(B+C)-Y"]
    # each unseen tag's own attributes beat the other unseen tags' (few tags: p >= 1 / n_Y!)
    assert perm["mean AUC-l (own side information)"] == pytest.approx(t["retrieval", "(B+C)-Y", "AUC-l"])
    assert perm["mean AUC-l (own side information)"] - perm["mean AUC-l (permuted side information)"] > 0.15
    assert perm["permutation p-value (H1: own > permuted)"] < 0.1


def test_random_side_information_sits_at_chance_on_unseen_tags(runs):
    ds, split, P, run_dir, emb = runs["random"]
    rows, per_item = evaluation.evaluate_embeddings(emb, ds, split, "A", P["evaluate"], "embedding random")
    mean, p = evaluation.chance_rows(per_item, "embedding random", "A")
    assert p["value"] > 0.01, f"random side information scored {mean['value']:.3f} AUC-l on Y"
    t = table(rows).set_index(["task", "test_setting", "metric"]).value
    assert t["seen-label", "B-X", "AUC-l"] > 0.65  # it did learn the seen tags


def test_annotation_of_b_plus_c_is_the_track_weighted_mean(runs):
    ds, split, P, run_dir, emb = runs["attributes"]
    rows, _ = evaluation.evaluate_embeddings(emb, ds, split, "A", P["evaluate"], "m")
    checks = evaluation.consistency_rows(rows)
    assert len(checks) >= 2
    for row in checks:
        assert abs(row["value"]) < 1e-12, row


def test_evaluate_run_reads_embeddings_only_and_adds_classifier_control_and_tables(runs, tmp_path):
    ds, split, P, run_dir, emb = runs["attributes"]
    (run_dir / "train").rename(tmp_path / "train")  # stage 05 needs no checkpoint and trains nothing
    try:
        result = evaluation.evaluate_run(ds, split, P, run_dir)
    finally:
        (tmp_path / "train").rename(run_dir / "train")
    t = table(result["rows"])
    heads = P["evaluate"]["heads"]
    assert heads == ["learned", "conse", "ridge", "eszsl"]
    labels = {f"embedding {k}{'' if h == 'learned' else ' ' + h}" for k in ("attributes", "random") for h in heads}
    assert set(t.model) == labels | {"classifier"}
    assert set(result["per_item"]) == labels
    assert set(t[t.task == "chance test"].model) == {m for m in labels if m.startswith("embedding random")}
    assert set(t[(t.model == "classifier")].test_setting) == {"A-valid-X", "B-X"}
    diag = t[t.task == "diagnostic"]
    assert set(diag.model) == {"embedding attributes", "embedding random"}
    assert not diag.metric.isin(["AUC-i", "AUC-l"]).any()  # diagnostics are never protocol results
    t["stage"] = "05_evaluate"
    ann = tables.paper_table(t, "annotation")
    assert {"ours AUC-i", "ours MAP-i", "paper FMA AUC-i", "paper MSD MAP-i"} <= set(ann.columns)
    assert ann.loc[ann.test == "B-Y", "paper MSD AUC-i"].iloc[0] == 0.8559
    seen = tables.paper_table(t, "seen-label")
    assert set(seen.model) >= {"classifier", "embedding attributes"}
    b_x = seen[seen.test == "B-X"].set_index("model")
    assert b_x.loc["classifier", "paper FMA AUC-l"] == 0.7250
    assert len(seen[seen.test == "A-valid-X"]) == 1 + len(labels)
    top = tables.top_annotations(emb, ds, emb.track_ids[:2], k=5)
    assert top.shape == (5, 2)
    few = tables.top_annotations(emb, ds, emb.track_ids[:2], k=len(emb.tags) + 5)  # k beyond a small tag set
    assert few.shape == (int(emb.scorable.sum()), 2) and list(few.index) == list(range(1, len(few) + 1))


def test_every_head_transfers_on_the_zero_shot_solvable_data(runs):
    """Unseen tags are new pairs of seen atoms: every head must rank their tracks well."""
    ds, split, P, run_dir, emb = runs["attributes"]
    result = evaluation.evaluate_run(ds, split, P, run_dir)
    t = table(result["rows"])
    auc = t[(t.task == "retrieval") & (t.test_setting == "(B+C)-Y") & (t.metric == "AUC-l")
            & (t.labels == "annotation")].set_index("model").value
    for head in ("", " conse", " ridge", " eszsl"):
        assert auc[f"embedding attributes{head}"] > 0.7, head


def test_diagnostics_separate_audio_from_side_information(runs):
    """On the atoms data the audio separates the unseen tags and the attribute vectors agree with
    it; random vectors do not agree with anything."""
    ds, split, P, run_dir, emb = runs["attributes"]
    result = evaluation.evaluate_run(ds, split, P, run_dir)
    good, rand = result["diagnostics"]["embedding attributes"], result["diagnostics"]["embedding random"]
    assert good["upper_bounds"].probe.mean() > 0.7 and good["upper_bounds"].prototype.mean() > 0.65
    assert good["alignment"]["seen-unseen pairs"] > 0.3
    assert abs(rand["alignment"]["seen-unseen pairs"]) < good["alignment"]["seen-unseen pairs"] - 0.2
    assert set(good["nearest"].columns) == {"unseen", "nearest seen (side information)", "nearest seen (audio)"}
    assert len(good["nearest"]) == len(split.unseen)
    assert set(good["groups"].split) == {"X", "Y"}

