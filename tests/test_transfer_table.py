"""zslkit transfer with attribute tables whose columns differ between source and target (the bug of an m21
target built without the rare tag `quintet`: no `size:5` column), and one model's failure skipping only
that model."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_dataset

from zslkit import DataError, ParamError, config, transfer
from zslkit.data.sideinfo import prepare_sideinfo
from zslkit.data.sideinfo.csvtable import align_columns
from zslkit.data.splits import prepare_split
from zslkit.evaluate.embed import embed_joint
from zslkit.layout import DatasetLayout, RunLayout
from zslkit.model.checkpoints import build_model, save_checkpoint
from zslkit.run.report import RESULT_COLUMNS
from zslkit.show import report_page

SOURCE_COLUMNS = ["family:strings", "family:wind", "size:1", "size:5", "register:low"]


def knowledge(tags, columns, seed):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.integers(0, 2, (len(tags), len(columns))), columns=columns)
    table.iloc[:, 0] = 1  # no all-zero row
    return table.assign(tag=tags)[["tag", *columns]]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A source run on the `table` side information of its dataset's knowledge.csv: split, table, an
    (untrained) joint checkpoint, params.yaml and stage 04's embeddings, laid out as a real run."""
    tmp = tmp_path_factory.mktemp("transfer_table")
    ds = synthetic_dataset(tmp / "src_ds", n_tracks=40, n_tags=8)
    knowledge(ds.tag_texts, SOURCE_COLUMNS, 0).to_csv(ds.root / "knowledge.csv", index=False)
    P = config.resolve({"run": {"name": "src", "reports_dir": str(tmp / "reports"), "data_dir": str(tmp),
                                "progress": False},
                        "data": {"name": "src_ds"}, "split": {"stratify": "none", "ratio": 0.75},
                        "sideinfo": {"kinds": ["table"]}, "model": {"sideinfo": "table"},
                        "train": {"device": "cpu", "baseline": False, "controls": []}}, root=tmp)
    split = prepare_split(ds, P["split"])
    prepare_sideinfo(ds, P["sideinfo"], split)
    run = RunLayout.from_params(P)
    arch = {"encoder": P["model"]["encoder"], "encoder_params": dict(P["model"][P["model"]["encoder"]]),
            "segment_frames": P["audio"]["segment_frames"], "hidden": P["heads"]["learned"]["hidden"],
            "sideinfo": "table", "n_mels": 128, "side_dim": len(SOURCE_COLUMNS)}
    net = build_model("joint", arch, len(split.seen))
    run.checkpoint("joint").parent.mkdir(parents=True)
    save_checkpoint(run.checkpoint("joint"), net, "joint", arch, split.seen, 0.4, 0.5, 1, "test")
    run.params.write_text(config.dump(P))
    embed_joint(ds, split, P, run.root, "joint")
    return tmp, run.root, transfer.source_params(run.root)


def target(tmp, name, columns=None, models=("joint",), table_path=None):
    ds = synthetic_dataset(tmp / name, n_tracks=24, n_tags=8, seed=1)
    if columns is not None:
        knowledge(ds.tag_texts, columns, 1).to_csv(ds.root / "knowledge.csv", index=False)
    P = config.resolve({"run": {"name": name, "reports_dir": str(tmp / "reports"), "data_dir": str(tmp),
                                "progress": False},
                        "data": {"name": name}, "train": {"device": "cpu"},
                        "sideinfo": {"table": {"path": table_path}},
                        "evaluate": {"bootstrap": 20, "permutations": 20}}, root=tmp)
    P["transfer"]["models"] = list(models)
    return ds, P


def test_align_columns_by_name():
    table = pd.DataFrame({"b": [1.0, 0.0], "x": [1.0, 1.0], "a": [0.0, 1.0]}, index=["t1", "t2"])
    out, report = align_columns(table, ["a", "b", "c"])
    assert list(out.columns) == ["a", "b", "c"] and out.to_numpy().tolist() == [[0, 1, 0], [1, 0, 0]]
    assert report == {"missing_columns": ["c"], "extra_columns": ["x"]}


def test_stage_04_records_the_source_columns(source):
    tmp, run, src = source
    meta = json.loads(str(np.load(RunLayout.at(run).embeddings("joint"))["meta"]))
    assert meta["side_columns"] == SOURCE_COLUMNS
    cols, where = transfer.source_side_columns(run, src, "joint", "table", 5)
    assert cols == SOURCE_COLUMNS and where.endswith("joint.npz")


def test_a_target_table_with_other_columns_is_aligned_by_name(source):
    tmp, run, src = source
    cols = ["register:low", "size:1", "family:wind", "family:strings", "extra:x"]  # no size:5, one extra, reordered
    ds, P = target(tmp, "tgt_cols", cols)
    emb = transfer.embed_target(run, src, ds, "joint", "cpu", target_sideinfo=P["sideinfo"])
    assert emb.side.shape == (8, 5) and emb.tag_emb.shape[0] == 8 and np.isfinite(emb.tag_emb).all()
    a = emb.meta["side_alignment"]
    assert a["missing_columns"] == ["size:5"] and a["extra_columns"] == ["extra:x"]
    raw = pd.read_csv(ds.root / "knowledge.csv").set_index("tag").reindex(columns=SOURCE_COLUMNS, fill_value=0)
    want = raw.loc[ds.tag_texts].to_numpy(float)
    want /= np.linalg.norm(want, axis=1, keepdims=True)  # normalised after alignment (sideinfo.table.normalise)
    np.testing.assert_allclose(emb.side, want, rtol=1e-6)
    assert (emb.side[:, SOURCE_COLUMNS.index("size:5")] == 0).all()
    rows = pd.DataFrame(transfer.evaluate_transfer(emb, ds, P["evaluate"], "src"))
    got = rows[rows.task == "tags"].set_index("metric").value
    assert got["source side-information columns missing from the target (zero)"] == 1
    assert got["target side-information columns unknown to the source (dropped)"] == 1


def test_one_failing_model_is_skipped_with_its_reason(source):
    tmp, run, src = source
    ds, P = target(tmp, "tgt_skip", SOURCE_COLUMNS[:4], models=("joint-nothere", "joint"))
    rows, embedded, skipped = transfer.transfer_models(run, src, ds, P, save_to=tmp / "reports" / "tgt_skip")
    assert list(embedded) == ["joint"] and list(skipped) == ["joint-nothere"]
    assert skipped["joint-nothere"].startswith("ParamError: transfer.models: 'joint-nothere'")
    t = pd.DataFrame(rows)
    assert set(t.columns) <= set(RESULT_COLUMNS)
    skip = t[t.metric == "skipped"]
    assert len(skip) == 1 and skip.iloc[0].task == "transfer" and skip.iloc[0].model == "transfer joint-nothere"
    assert skip.iloc[0].test_setting == skipped["joint-nothere"]
    assert ((t.model == "transfer joint (table)") & (t.metric == "AUC-l")).any()
    assert (tmp / "reports" / "tgt_skip" / "embeddings" / "transfer-joint.npz").is_file()
    head = report_page.headline(pd.DataFrame(rows, columns=RESULT_COLUMNS).assign(stage="07_transfer"))
    assert head.set_index("model").loc["transfer joint-nothere", "skipped"] == skipped["joint-nothere"]
    assert "transfer joint (table), target-T" in set(head.model)


def test_a_target_without_knowledge_csv_is_skipped_naming_the_target_or_uses_its_own_path(source, tmp_path):
    tmp, run, src = source
    ds, P = target(tmp, "tgt_none")
    rows, embedded, skipped = transfer.transfer_models(run, src, ds, P)
    assert not embedded and "has no knowledge.csv" in skipped["joint"] and str(ds.root) in skipped["joint"]
    assert "target's parameters" in skipped["joint"]
    csv = tmp_path / "mine.csv"
    knowledge(ds.tag_texts, SOURCE_COLUMNS[1:], 2).to_csv(csv, index=False)
    ds, P = target(tmp, "tgt_path", table_path=str(csv))
    rows, embedded, skipped = transfer.transfer_models(run, src, ds, P)
    assert not skipped and embedded["joint"].meta["side_alignment"]["missing_columns"] == ["family:strings"]


def test_source_columns_fall_back_to_the_saved_table_then_the_csv(source, tmp_path):
    tmp, run, src = source
    other = tmp_path / "run_without_embeddings"  # a run folder whose stage 04 predates the recorded columns
    cols, where = transfer.source_side_columns(other, src, "joint", "table", 5)
    assert cols == SOURCE_COLUMNS and where == str(DatasetLayout.from_params(src).sideinfo("s0", "table"))
    moved = {**src, "split": {**src["split"], "name": "elsewhere"}}
    cols, where = transfer.source_side_columns(other, moved, "joint", "table", 5)
    assert cols == SOURCE_COLUMNS and where.endswith("knowledge.csv")
    cols, where = transfer.source_side_columns(other, moved, "joint", "table", 6)  # nothing of that width
    assert cols is None and "looked in" in where
    assert transfer.source_side_columns(other, moved, "joint", "glove", 300)[0] is None


def test_without_the_source_columns_a_width_mismatch_is_a_clear_error(source, tmp_path, monkeypatch):
    tmp, run, src = source
    ds, P = target(tmp, "tgt_blind", SOURCE_COLUMNS[:4])
    monkeypatch.setattr(transfer, "source_side_columns", lambda *a: (None, "looked in nowhere"))
    with pytest.raises(DataError, match="has 4 columns, the source model 'joint' takes 5"):
        transfer.embed_target(run, src, ds, "joint", "cpu", target_sideinfo=P["sideinfo"])
    with pytest.raises(ParamError):
        transfer.target_side_table("table", ds.tag_texts, synthetic_dataset(tmp_path / "bare", 10, 4), src["sideinfo"])
