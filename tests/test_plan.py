"""The run plan, the layouts and the Split object: what a run contains and where it lies, in one place."""
import numpy as np
import pytest

from zslkit import config
from zslkit.data.splits import Split, save_split
from zslkit.errors import DataError, ParamError
from zslkit.layout import DatasetLayout, RunLayout
from zslkit.plan import RunPlan, draws_label, setting_name, train_setting_name


@pytest.mark.parametrize("tracks, tags, expected", [
    ("B+C", "X+Y", "(B+C)-(X+Y)"), ("A_valid", "X", "A-valid-X"), ("B", "Y", "B-Y"), ("A+B+C", "Y", "(A+B+C)-Y"),
])
def test_setting_names(tracks, tags, expected):
    assert setting_name(tracks, tags) == expected


@pytest.mark.parametrize("setting, expected", [("A", "A-X"), ("B", "B-X"), ("AB", "(A+B)-X")])
def test_training_setting_has_one_spelling(setting, expected):
    assert train_setting_name(setting) == expected


def test_unknown_training_setting_names_the_key():
    with pytest.raises(ParamError, match=r"train.setting: 'C'"):
        train_setting_name("C")


def resolved(**sections):
    return config.resolve(sections)


def test_plan_of_the_demo_settings():
    P = resolved(model={"sideinfo": "glove"}, train={"also": ["table", "glove"], "baseline": True,
                                                      "controls": ["random"], "setting": "AB"},
                 sideinfo={"kinds": ["glove", "table", "random"], "random": {"draws": 3}})
    plan = RunPlan.from_params(P)
    assert plan.names == ["joint", "joint-table", "classifier", "joint-random", "joint-random@1", "joint-random@2"]
    assert [m.label for m in plan] == ["embedding glove", "embedding table", "classifier", "embedding random",
                                       "embedding random@1", "embedding random@2"]
    assert plan["classifier"].sideinfo is None and not plan["classifier"].is_joint
    assert [m.name for m in plan.joint()] == [n for n in plan.names if n != "classifier"]
    assert {k: [m.name for m in v] for k, v in plan.controls().items()} == {
        "random": ["joint-random", "joint-random@1", "joint-random@2"]}
    assert plan.sideinfo_kinds() == ["glove", "table", "random"]
    assert plan.train_setting == "(A+B)-X"
    assert plan.main.head_label("learned") == "embedding glove"
    assert plan.main.head_label("conse") == "embedding glove conse"
    assert draws_label("random", "ridge", 3) == "embedding random ridge, 3 draws"


def test_plan_seed_follows_train_seed_then_run_seed():
    assert {m.seed for m in RunPlan.from_params(resolved(run={"seed": 7}))} == {7}
    assert {m.seed for m in RunPlan.from_params(resolved(run={"seed": 7}, train={"seed": 3}))} == {3}


def test_plan_names_its_models_when_asked_for_another():
    with pytest.raises(ParamError, match="joint-random"):
        RunPlan.from_params(resolved())["joint-sentence"]


def test_a_control_equal_to_the_main_kind_is_not_trained_twice():
    plan = RunPlan.from_params(resolved(model={"sideinfo": "random"}, train={"controls": ["random"]}))
    assert plan.names == ["joint"]


def test_layouts_own_every_path(tmp_path):
    P = resolved(run={"reports_dir": str(tmp_path / "r"), "data_dir": str(tmp_path / "d"), "name": "x"},
                 data={"name": "ds"})
    run, ds = RunLayout.from_params(P), DatasetLayout.from_params(P)
    assert run.root == tmp_path / "r" / "x" and ds.root == tmp_path / "d" / "ds"
    assert run.checkpoint("joint-random") == run.root / "train" / "joint-random" / "best.pt"
    assert run.embeddings("classifier") == run.root / "embeddings" / "classifier.npz"
    assert ds.sideinfo("s0", "random@1") == ds.root / "splits" / "s0" / "sideinfo" / "random@1.npz"
    assert ds.track_split("s0", 2) == ds.root / "splits" / "s0" / "track_split_trs2.json"
    assert not (tmp_path / "r").exists()  # a layout touches no disk


def tiny_split(root):
    tracks = {"A": ["a1", "a2"], "B": ["b1", "b2"], "C": ["c1", "c2", "c3"], "A_train": ["a1"], "A_valid": ["a2"],
              "B_train": ["b1"], "B_valid": ["b2"], "AB_train": ["a1", "b1"], "AB_valid": ["a2", "b2"],
              "untagged": [], "all_seen": []}
    save_split(root, "s0", {"ratio": 0.5}, ["x1", "x2"], ["y1"], tracks, track_seed=0)
    return Split.load(root, "s0", 0)


def test_split_round_trip_and_named_track_sets(tmp_path):
    s = tiny_split(tmp_path)
    assert (s.name, s.seen, s.unseen, s.warnings) == ("s0", ["x1", "x2"], ["y1"], [])
    assert s.train_tracks("AB") == ["a1", "b1"] and s.valid_tracks("B") == ["b2"]
    assert s.track_set("B+C") == ["b1", "b2", "c1", "c2", "c3"]
    assert s.track_set("AB_valid") == ["a2", "b2"]
    assert s.seen_mask(["y1", "x2", "z"]).tolist() == [False, True, False]
    with pytest.raises(DataError, match="unknown track set 'D'"):
        s.track_set("B+D")
    with pytest.raises(ParamError, match="train.setting"):
        s.train_tracks("C")


def test_split_examples_come_from_c_then_b_seeded(tmp_path):
    s = tiny_split(tmp_path)
    assert s.example_pool() == ["c1", "c2", "c3", "b1", "b2"]
    assert s.example_pool(among={"b2", "c3"}) == ["c3", "b2"]
    picked = s.example_tracks(3, seed=4)
    assert picked == s.example_tracks(3, seed=4) and len(set(picked)) == 3
    rng = np.random.default_rng(4)  # the draw notebooks 04 and 05 made before the pool had one home
    assert picked == list(rng.choice(["c1", "c2", "c3", "b1", "b2"], size=3, replace=False))
    assert s.example_tracks(10, seed=0) and len(s.example_tracks(10, seed=0)) == 5
    assert s.example_tracks(3, seed=0, among=set()) == []


def test_missing_split_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"tag_split.json: split not found; run notebook 02"):
        Split.load(tmp_path, "s9")


def test_a_kind_the_dataset_cannot_give_leaves_its_models_out_with_why():
    P = resolved(model={"sideinfo": "glove"}, train={"also": ["table"], "baseline": True, "controls": ["random"]},
                 sideinfo={"kinds": ["glove", "table", "random"], "random": {"draws": 2}})
    plan = RunPlan.from_params(P, {"table": "the dataset has no knowledge.csv", "random": "like was not built"})
    assert plan.names == ["joint", "classifier"]
    assert [(m.name, why) for m, why in plan.left_out] == [
        ("joint-table", "side information 'table' is left out: the dataset has no knowledge.csv"),
        ("joint-random", "side information 'random' is left out: like was not built"),
        ("joint-random@1", "side information 'random' is left out: like was not built")]
    assert plan.notes()[0].startswith("joint-table (embedding table) is left out: side information 'table'")
    assert RunPlan.from_params(P, {}) == RunPlan.from_params(P) and not RunPlan.from_params(P).left_out
    with pytest.raises(ParamError, match=r"model.sideinfo: 'glove' is left out: no words; or use one of 'table', "
                                         r"which were built"):
        RunPlan.from_params(P, {"glove": "no words"})


def test_plan_of_a_run_reads_what_stage_02_could_not_build(tmp_path):
    from zslkit.plan import left_out_kinds
    P = resolved(run={"data_dir": str(tmp_path)}, data={"name": "ds"}, train={"also": ["table"]},
                 sideinfo={"kinds": ["glove", "table", "random"]})
    assert left_out_kinds(P) == {} and RunPlan.of_run(P) == RunPlan.from_params(P)  # before stage 02
    marker = DatasetLayout.from_params(P).sideinfo_unavailable("s0", "table")
    assert marker == tmp_path / "ds" / "splits" / "s0" / "sideinfo" / "table.unavailable.json"
    marker.parent.mkdir(parents=True)
    marker.write_text('{"kind": "table", "reason": "no knowledge.csv"}')
    assert left_out_kinds(P) == {"table": "no knowledge.csv"}
    assert "joint-table" not in RunPlan.of_run(P) and [m.name for m, _ in RunPlan.of_run(P).left_out] == ["joint-table"]
