import re

import numpy as np
import pytest
import torch
from conftest import synthetic_dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zslkit import DataError, ParamError, RunError, config
from zslkit.data.melstore import MelStore
from zslkit.data.splits import prepare_split
from zslkit.evaluate.metrics import roc_auc
from zslkit.model.encoders import PaperEncoder, make_encoder
from zslkit.model.inference import classifier_logits, cosine_scores, segments, track_embeddings
from zslkit.model.losses import contrastive_loss, hinge_loss
from zslkit.model.networks import Classifier, JointModel, TagBranch, count_parameters
from zslkit.model.sampling import TrackSet, sample_batch
from zslkit.model.train import seen_vectors
from zslkit.model.trainer import Trainer


def test_paper_encoder_parameter_count_and_shapes():
    enc = PaperEncoder()
    assert count_parameters(enc) == 242_788
    x = torch.randn(3, 130, 128)
    assert enc(x).shape == (3, 100)
    joint = JointModel(enc, TagBranch(50))
    assert count_parameters(joint.tag) == 5_100
    assert joint.scores(x, torch.randn(7, 50)).shape == (3, 7)
    s = joint.pair_scores(x, torch.randn(7, 50), torch.tensor([[0, 1], [2, 3], [4, 6]]))
    assert s.shape == (3, 2) and s.abs().max() <= 1 + 1e-6
    assert Classifier(PaperEncoder(), 9)(x).shape == (3, 9)


def test_batch_norm_option_adds_only_norm_layers():
    paper, bn = make_encoder("paper"), make_encoder("paper_bn")
    assert count_parameters(bn) - count_parameters(paper) == 4 * 2 * 128  # gamma, beta per channel
    assert set(paper.state_dict()) <= set(bn.state_dict())  # paper checkpoints keep their keys
    assert not any("norms" in k for k in paper.state_dict())
    assert bn(torch.randn(3, 130, 128)).shape == (3, 100)


def test_paper_bn_channels_and_input_norm():
    wide = make_encoder("paper_bn", params={"channels": 32})
    assert wide.convs[1].weight.shape == (32, 32, 4)
    band = make_encoder("paper_bn", params={"input_norm": "band"})
    assert count_parameters(band) - count_parameters(make_encoder("paper_bn")) == 2 * 128  # one batch norm of the input
    with pytest.raises(ParamError, match="input_norm: 'mean' is not one of none, band, segment"):
        make_encoder("paper_bn", params={"input_norm": "mean"})


@pytest.mark.parametrize("input_norm, invariant", [("segment", True), ("none", False)])
def test_segment_norm_cancels_a_static_colouring(input_norm, invariant):
    """Removing each band's mean over the segment makes the embedding blind to a fixed EQ curve (a per-band
    offset of the log-mels); without it the embedding moves."""
    torch.manual_seed(0)
    enc = make_encoder("paper_bn", params={"input_norm": input_norm}).eval()
    x = torch.randn(2, 130, 128)
    colouring = torch.linspace(-6.0, 3.0, 128)  # a tilt in dB-like log-mel units, the same in every frame
    moved = (enc(x + colouring) - enc(x)).abs().max().item()
    assert (moved < 1e-4) is invariant, moved


def test_hinge_loss_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.8], [0.2, 0.5, -0.3]])
    # row 0: max(0, .4-.9+.1)=0, max(0, .4-.9+.8)=.3; row 1: max(0,.4-.2+.5)=.7, max(0,.4-.2-.3)=0
    assert hinge_loss(scores, 0.4).item() == pytest.approx(1.0)


def test_contrastive_loss_masks_other_positives():
    scores = torch.tensor([[0.5, 0.4, -0.2]])
    positives = torch.tensor([[True, True, False]])
    loss = contrastive_loss(scores, torch.tensor([0]), positives, temperature=1.0)
    expected = -np.log(np.exp(0.5) / (np.exp(0.5) + np.exp(-0.2)))  # tag 1 is masked out
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.integers(5, 20).flatmap(lambda n: arrays(bool, st.tuples(st.integers(1, 30), st.just(n)))),
       st.integers(0, 2**31 - 1), st.integers(1, 3))
def test_sampling_draws_positives_and_true_negatives(pos, seed, k):
    pos[:, -k:] = False              # at least k negatives
    pos[:, 0] = True                 # and a positive
    tracks = TrackSet([f"t{i}" for i in range(len(pos))], MelStore(),
                      np.full(len(pos), 200), pos)
    idx = np.arange(len(pos))
    starts, p, n = sample_batch(tracks, idx, np.random.default_rng(seed), k, 130)
    assert pos[idx, p].all()
    assert n.shape == (len(pos), k) and not pos[idx[:, None], n].any()
    assert all(len(set(row)) == k for row in n)
    assert ((starts >= 0) & (starts <= 200 - 130)).all()
    assert (n < pos.shape[1]).all() and (p < pos.shape[1]).all()  # X indices only


def test_segments_and_track_embedding_average():
    mel = np.arange(300 * 2, dtype=np.float32).reshape(300, 2)
    seg = segments(mel, 130)
    assert seg.shape == (2, 130, 2) and seg[1, 0, 0] == 260
    assert segments(mel[:50], 130).shape == (1, 130, 2)  # short clip tiled

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=1)
    store = {"a": mel}
    emb = track_embeddings(Mean(), store, ["a"], mean=0.0, std=1.0, segment_frames=130)
    np.testing.assert_allclose(emb[0], mel[:260].mean(axis=0), rtol=1e-6)


# -- a small learnable dataset -------------------------------------------------------------------

@pytest.fixture
def syn(tmp_path):
    ds = synthetic_dataset(tmp_path / "ds")
    P = config.resolve({"split": {"stratify": "none", "seed": 2}, "model": {"sideinfo": "random"},
                        "train": {"batch_size": 16, "workers": 0, "max_epochs": 3, "optimizer": "adam",
                                  "negatives": 2}}, root=tmp_path)
    return ds, prepare_split(ds, P["split"]), P


def make_trainer(ds, split, P, out, kind="joint", audio=None, **train):
    vectors = seen_vectors(ds, split, "random") if kind == "joint" else None
    P = {**P, "train": {**P["train"], **train}, "audio": {**P["audio"], **(audio or {})}}
    return Trainer(ds, split, vectors, P, out, seed=0, kind=kind, sideinfo="random")


def test_no_unseen_tag_reaches_training(syn, tmp_path):
    ds, split, P = syn
    tr = make_trainer(ds, split, P, tmp_path / "t")
    assert tr.seen == split.seen and tr.vectors.shape[0] == len(split.seen)
    assert not set(tr.seen) & set(split.unseen)
    for b in range(len(tr.train_src)):
        _, pos, neg, positives = tr.train_src[b]
        assert positives.shape[1] == len(split.seen) and int(neg.max()) < len(split.seen)
    broken = type(split)(split.name, split.seen + split.unseen[:1], split.unseen, split.tracks, [])
    with pytest.raises(DataError, match="unseen tag .* is also listed as seen"):
        make_trainer(ds, broken, P, tmp_path / "u")


@pytest.mark.slow
def test_same_seed_same_first_epoch_loss(syn, tmp_path):
    ds, split, P = syn
    a = make_trainer(ds, split, P, tmp_path / "a").run_epoch(progress=False)["train_loss"]
    b = make_trainer(ds, split, P, tmp_path / "b", workers=2).run_epoch(progress=False)["train_loss"]
    assert a == pytest.approx(b, rel=1e-6)


@pytest.mark.slow
def test_resume_equals_uninterrupted(syn, tmp_path):
    ds, split, P = syn
    full = make_trainer(ds, split, P, tmp_path / "full")
    full.fit(progress=False, max_epochs=3)
    part = make_trainer(ds, split, P, tmp_path / "part")
    part.fit(progress=False, max_epochs=2)           # "killed" after two epochs
    resumed = make_trainer(ds, split, P, tmp_path / "part")
    resumed.fit(progress=False, max_epochs=3)
    assert resumed.state["epoch"] == 3 and len(resumed.curves()) == 3
    for (k, v), (_, w) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)
    other = make_trainer(ds, split, P, tmp_path / "part", lr=0.5)
    with pytest.raises(ParamError, match=r"other parameters:\n  train.lr: 0.001 in the checkpoint, 0.5 now"):
        other.fit(progress=False, max_epochs=4)


@pytest.mark.slow
@pytest.mark.parametrize("kind, loss", [("joint", "hinge"), ("joint", "contrastive"), ("classifier", "hinge")])
def test_training_lowers_the_loss_and_learns(syn, tmp_path, kind, loss):
    ds, split, P = syn
    tr = make_trainer(ds, split, P, tmp_path / kind, kind=kind, loss=loss, max_epochs=12, lr=3e-3)
    curves = tr.fit(progress=False)
    assert curves.train_loss.iloc[-1] < 0.7 * curves.train_loss.iloc[0]
    tr.load_best()
    ids = split.tracks["A"] + split.tracks["B"]
    emb = track_embeddings(tr.net.audio, ds.mels, ids, tr.mean, tr.std, tr.segment)
    if kind == "joint":
        with torch.no_grad():
            scores = cosine_scores(emb, tr.net.embed_tags(tr.vectors).numpy())
    else:
        scores = classifier_logits(tr.net, emb)
    auc = np.nanmean(roc_auc(scores, ds.labels(ids, split.seen), axis=0))
    assert auc > 0.8  # the tags are audible by construction
    assert (tmp_path / kind / "best.pt").is_file() and (tmp_path / kind / "curves.csv").is_file()
    blob = torch.load(tmp_path / kind / "best.pt", weights_only=True)
    assert blob["seen"] == split.seen


@pytest.mark.slow
def test_an_mlp_tag_branch_trains_and_reloads_as_it_was(syn, tmp_path):
    from zslkit.model.checkpoints import load_checkpoint
    ds, split, P = syn
    P = {**P, "heads": {**P["heads"], "learned": {"hidden": 32}}}
    tr = make_trainer(ds, split, P, tmp_path / "mlp", max_epochs=2)
    assert [type(m).__name__ for m in tr.net.tag.net] == ["Linear", "ReLU", "Linear"]
    assert tr.net.tag.net[0].out_features == 32 and tr.arch["hidden"] == 32
    tr.fit(progress=False)
    tr.load_best()
    net, info = load_checkpoint(tmp_path / "mlp" / "best.pt")
    assert info["arch"]["hidden"] == 32
    with torch.no_grad():
        torch.testing.assert_close(net.embed_tags(tr.vectors), tr.net.eval().embed_tags(tr.vectors))


@pytest.mark.slow
def test_segment_frames_drive_training_and_are_stored(syn, tmp_path):
    ds, split, P = syn
    tr = make_trainer(ds, split, P, tmp_path / "seg", audio={"segment_frames": 200}, max_epochs=1)
    x, *_ = tr.train_src[0]
    assert x.shape[1] == 200
    tr.fit(progress=False)
    blob = torch.load(tmp_path / "seg" / "best.pt", weights_only=True)
    assert blob["arch"]["segment_frames"] == 200 and blob["arch"]["sideinfo"] == "random"
    with pytest.raises(ParamError, match="shorter than encoder 'paper' accepts"):
        make_trainer(ds, split, P, tmp_path / "short", audio={"segment_frames": 64})


@pytest.mark.slow
def test_divergence_is_an_error_not_a_silent_nan(syn, tmp_path):
    ds, split, P = syn
    tr = make_trainer(ds, split, P, tmp_path / "nan", kind="classifier", optimizer="sgd", lr=1e9)
    with pytest.raises(RunError, match="diverged in epoch 1"):
        tr.fit(progress=False)


def test_last_epochs_shows_small_learning_rates():
    import pandas as pd

    from zslkit.model.train import last_epochs
    curves = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.234567, 1.1], "lr": [1e-3, 7.98e-6]})
    table = last_epochs(curves)
    assert table.lr.tolist() == ["1.00e-03", "7.98e-06"] and table.train_loss.iloc[0] == 1.2346


def test_a_checkpoint_that_does_not_fit_names_the_parameters():
    from zslkit.model.checkpoints import check_fits
    P = config.resolve({"model": {"encoder": "paper"}})
    arch = {"encoder": "paper_bn", "encoder_params": {}, "segment_frames": 96, "hidden": 256, "sideinfo": "glove"}
    with pytest.raises(ParamError) as err:
        check_fits("reports/demo/train/joint/best.pt", arch, P, "glove", "reports/demo/params.yaml")
    message = str(err.value)
    assert "model.encoder: 'paper_bn' in the checkpoint, 'paper' in these parameters" in message
    assert "audio.segment_frames: 96 in the checkpoint, 130" in message and "reports/demo/params.yaml" in message
    assert "model.sideinfo" not in message
    fitting = {**arch, "encoder": "paper", "encoder_params": dict(P["model"]["paper"]), "segment_frames": 130,
               "hidden": P["heads"]["learned"]["hidden"]}
    check_fits("best.pt", fitting, P, "glove")


def test_a_batch_larger_than_the_training_set_is_fitted_to_it(syn, tmp_path):
    ds, split, P = syn
    n_train = len(split.train_tracks("A"))
    tr = make_trainer(ds, split, P, tmp_path / "t", batch_size=n_train + 50)
    assert tr.batch_size == n_train and len(tr.train_src) == 1
    assert tr.run_epoch(progress=False)["train_loss"] > 0
    same = make_trainer(ds, split, P, tmp_path / "s", batch_size=16)
    assert same.batch_size == 16  # a batch the data fills is left as it is
    from zslkit.model.train import adaptations
    notes = adaptations({"joint": {"trainer": tr}, "other": {"trainer": same}})
    assert notes == [f"joint: train.batch_size {n_train + 50} is more than the setting's {n_train} training tracks: "
                     f"batches of {n_train}, the largest they fill"]


@pytest.mark.parametrize("a_tracks, tracks_mode, expected", [
    (["a1"], "random", r"no train tracks in split 's0' \(1 track\(s\) in A\); a setting needs at least 2 tracks"),
    (["a1", "a2", "a3"], "random", r"split.train_ratio 0.2 puts floor\(0.2 x 3\) = 0 of them in training: use "
                                   r"split.train_ratio between 0.34 and 0.99, or train.setting 'B' or 'AB'"),
    (["a1", "a2"], "dataset", r"split.tracks is 'dataset' .* use split.tracks: random"),
])
def test_an_empty_training_part_names_the_setting_to_change(a_tracks, tracks_mode, expected):
    from zslkit.data.splits import Split
    from zslkit.model.train import empty_part_message
    tracks = {"A": a_tracks, "B": ["b1", "b2"], "C": [], "A_train": [], "A_valid": a_tracks, "B_train": ["b1"],
              "B_valid": ["b2"], "AB_train": ["b1"], "AB_valid": a_tracks + ["b2"]}
    msg = empty_part_message(Split("s0", ["x"], ["y"], tracks), "A", "train",
                             {"train_ratio": 0.2, "tracks": tracks_mode})
    assert re.search(expected, msg), msg


def test_models_left_out_by_the_plan_are_said_and_recorded():
    """Stage 03 on a dataset without what a kind needs: the plan's left-out models are notes and
    results.csv rows (metric 'skipped', the reason in test_setting)."""
    from zslkit.model.train import adaptations, results_rows
    from zslkit.plan import RunPlan
    P = config.resolve({"train": {"also": ["table"]}, "sideinfo": {"kinds": ["glove", "table", "random"]}})
    plan = RunPlan.from_params(P, {"table": "no knowledge.csv"})
    assert adaptations({}, plan) == ["joint-table (embedding table) is left out: side information 'table' is left "
                                     "out: no knowledge.csv"]
    assert results_rows({}, "A", plan) == [{"model": "embedding table", "train_setting": "A-X", "task": "training",
                                            "metric": "skipped", "test_setting": "side information 'table' is left "
                                            "out: no knowledge.csv"}]
    assert adaptations({}) == [] and results_rows({}, "A") == []
