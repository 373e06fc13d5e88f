"""The real-recordings importer (zslkit/data/datasets/realmusic.py) on a constructed package tree, AdaBN, and the
transfer's seen / group / concentration rows."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from zslkit import DataError, ParamError
from zslkit.data.datasets.realmusic import PACKAGES, import_realmusic, missing_packages, vorbis_comments, windows
from zslkit.evaluate.embeddings import Embeddings
from zslkit.model.inference import adapt_batch_norm, segments, standardise
from zslkit.transfer import concentration_rows

SR = 22050
ALL = list(PACKAGES)


def ogg(path, seconds, genre=None, amp=0.1, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    y = (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * amp).astype(np.float32)
    with sf.SoundFile(str(path), "w", SR, 1, format="OGG", subtype="VORBIS") as f:
        if genre:
            f.genre = genre
        f.write(y)


def make_share(root):
    """Two Wesnoth-like tracks (one with a genre that proves nothing), a Muldjord song with its readme, a Sectoid
    song without one, and a Sectoid song whose guitar is silent, under ``root`` as Debian lays them out."""
    music = root / PACKAGES["wesnoth-1.16-music"].folder
    ogg(music / "hymn.ogg", 30, "Romantic Classical")
    ogg(music / "menu.ogg", 30, "Game")
    mul = root / PACKAGES["fretsonfire-songs-muldjord"].folder / "chaos_god"
    ogg(mul / "guitar.ogg", 30, seed=1)
    ogg(mul / "song.ogg", 30, seed=2)
    (mul / "readme.txt").write_text("This song was composed by El Senator of the danish Metal Band Muldjord.")
    sec = root / PACKAGES["fretsonfire-songs-sectoid"].folder
    ogg(sec / "Feelings" / "guitar.ogg", 30, seed=3)
    ogg(sec / "Feelings" / "song.ogg", 30, seed=4)
    ogg(sec / "Quiet" / "guitar.ogg", 30, amp=1e-4, seed=5)
    ogg(sec / "Quiet" / "song.ogg", 30, seed=6)
    return root


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    return make_share(tmp_path_factory.mktemp("share"))


@pytest.fixture(scope="module")
def built(share, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "realmusic"
    return out, *import_realmusic(out, ALL, share, clips_per_track=2, clip_seconds=4.0)


def positives(ds):
    m = ds.annotations.toarray().astype(bool)
    return {t: set(ds.tracks.track_id[m[:, j]]) for j, t in enumerate(ds.tags.tag)}


def test_vorbis_comments_reads_the_genre_and_refuses_a_file_without_a_header(share, tmp_path):
    path = share / PACKAGES["wesnoth-1.16-music"].folder / "hymn.ogg"
    assert vorbis_comments(path)["GENRE"] == "Romantic Classical"
    sf.write(tmp_path / "x.wav", np.zeros(100, np.float32), SR)
    with pytest.raises(DataError, match="x.wav: no Vorbis comment header"):
        vorbis_comments(tmp_path / "x.wav")


def test_windows_spread_over_the_middle_and_fit_the_track():
    assert windows(100.0, 3, 10.0) == [10.0, 45.0, 80.0]
    assert windows(9.0, 3, 10.0) == []
    starts = windows(30.0, 5, 10.0)        # room for two windows that do not overlap in 3..27 s
    assert starts == [3.0, 17.0]


def test_tags_are_only_what_the_packages_prove(built):
    out, ds, report = built
    assert dict(zip(ds.tags.tag, ds.tags.group)) == {"romantic": "era", "guitar": "instrument", "classical": "style",
                                                     "metal": "style"}   # no family or excitation inferred
    pos = positives(ds)
    wes = {t for t in ds.tracks.track_id if t.startswith("wesnoth")}
    assert pos["classical"] == pos["romantic"] == wes and len(wes) == 2      # hymn only: menu's genre proves nothing
    assert all(t.startswith("fretsonfire-songs-muldjord") for t in pos["metal"])   # its readme says so
    stems = dict(zip(ds.tracks.track_id, ds.tracks.stem))
    assert {stems[t] for t in pos["guitar"]} == {"guitar", "mix"}
    band = [t for t, s in stems.items() if s == "band without guitar"]
    assert band and not any(t in pos["guitar"] for t in band)
    left = {r["track_id"]: r["issue"] for r in report["left_out"]}
    assert left["wesnoth-1.16-music/menu.ogg"] == "its GENRE field (Game) proves no tag"
    assert any("Quiet" in t.lower() or "quiet" in t for t in left) and not any("quiet" in t for t in stems)
    prov = pd.read_csv(out / "provenance.csv")
    m = ds.annotations.toarray()
    assert len(prov) == int(m.sum())                      # every positive has its evidence, nothing else
    assert prov[prov.tag == "metal"].evidence.str.contains("readme.txt says 'metal band'").all()
    assert set(pd.read_csv(out / "knowledge.csv").tag) == {"guitar"}


def test_the_mix_is_the_guitar_and_the_band_together(built, share):
    out, ds, _ = built
    row = ds.tracks[(ds.tracks.stem == "mix") & ds.tracks.package.str.endswith("muldjord")].iloc[0]
    mix, sr = sf.read(out / row.path)
    song = share / PACKAGES["fretsonfire-songs-muldjord"].folder / "chaos_god"
    g, _ = sf.read(song / "guitar.ogg", start=int(row.taken_at * SR), frames=len(mix))
    b, _ = sf.read(song / "song.ogg", start=int(row.taken_at * SR), frames=len(mix))
    assert sr == SR and np.abs(mix - (g + b)).max() < 2e-3   # 16-bit PCM of the sum


def test_missing_and_unknown_packages_are_said(share, tmp_path):
    p = {"packages": ALL, "share_root": str(tmp_path)}
    assert "none of wesnoth-1.16-music" in missing_packages(p) and "make realmusic" in missing_packages(p)
    assert missing_packages({**p, "share_root": str(share)}) is None
    with pytest.raises(DataError, match="make realmusic"):
        import_realmusic(tmp_path / "x", ALL, tmp_path, 2, 4.0)
    with pytest.raises(ParamError, match="unknown package 'sonic-pi'"):
        import_realmusic(tmp_path / "x", ["sonic-pi"], share, 2, 4.0)
    _, report = import_realmusic(tmp_path / "y", ["wesnoth-1.16-music", "fretsonfire-songs-sectoid"],
                                 share, 1, 4.0)
    assert set(report["clips"]) == {"wesnoth-1.16-music", "fretsonfire-songs-sectoid"}


class _Tiny(torch.nn.Module):
    def __init__(self, frames, mels):
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(frames * mels)

    def forward(self, x):
        return self.norm(x.flatten(1))


def test_adabn_sets_the_running_statistics_to_the_targets_and_keeps_the_weights():
    rng = np.random.default_rng(0)
    store = {f"t{i}": (rng.standard_normal((12, 3)) * 2 + 5).astype(np.float32) for i in range(5)}
    enc = _Tiny(4, 3)
    with torch.no_grad():
        enc.norm.weight.fill_(2.0)
    assert adapt_batch_norm(enc, store, list(store), 1.0, 2.0, 4, batch_segments=1000) == 1
    x = standardise(torch.from_numpy(np.concatenate([segments(store[t], 4) for t in store])), 1.0, 2.0).flatten(1)
    assert torch.allclose(enc.norm.running_mean, x.mean(0), atol=1e-5)
    assert torch.allclose(enc.norm.running_var, x.var(0, unbiased=True), atol=1e-4)
    assert not enc.training and enc.norm.momentum == 0.1 and (enc.norm.weight == 2.0).all()
    assert adapt_batch_norm(torch.nn.Linear(2, 2), store, list(store), 0.0, 1.0, 4) == 0
    with pytest.raises(ParamError, match="adabn needs at least two segments"):
        adapt_batch_norm(_Tiny(12, 3), {"a": store["t0"]}, ["a"], 0.0, 1.0, 12)


def test_concentration_names_the_tag_that_tops_every_track():
    tags = [f"tag{i}" for i in range(8)]
    tag_emb = np.eye(8, dtype=np.float32)
    tracks = np.full((6, 8), 0.1, np.float32)
    tracks[:, 3] = 1.0                      # tag3 first for every track
    tracks[np.arange(6), np.arange(6) % 2 + 5] = 0.5   # then tag5 or tag6
    emb = Embeddings([f"t{i}" for i in range(6)], tracks, tags, tag_emb, np.zeros(8, bool), tag_emb, {})
    rows = {r["metric"]: r for r in concentration_rows(emb, "m", "src")}
    top = rows["largest share of tracks with one tag in their top 2"]
    assert top["value"] == 1.0 and top["labels"] == "tag3" and top["n"] == 6
    assert rows["tags in any track's top 2"]["value"] == 3


def test_auc_interval_over_tracks_brackets_the_auc_and_is_nan_without_resamples():
    from zslkit.evaluate.metrics import auc_ci_over_tracks, per_item
    rng = np.random.default_rng(1)
    labels = rng.random((80, 1)) < 0.4
    scores = 2 * labels + rng.standard_normal((80, 1))    # one tag, AUC well above 0.5
    auc = float(per_item(scores, labels, 0)["AUC"][0])
    lo, hi = auc_ci_over_tracks(scores, labels, 500, 0)
    assert 0.5 < lo < auc < hi <= 1.0
    assert np.isnan(auc_ci_over_tracks(scores, labels, 0, 0)[0])
    perfect = auc_ci_over_tracks(labels.astype(float), labels, 200, 0)
    assert perfect == (1.0, 1.0)
    ties = auc_ci_over_tracks(np.zeros((80, 1)), labels, 200, 0)   # every score tied: AUC 0.5 exactly
    assert ties == (0.5, 0.5)


# ----------------------------------------------------------------------------- train.adapt: CORAL on real audio

def test_coral_loss_known_answers():
    from zslkit.model.adapt import coral_loss
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    assert coral_loss(x, x).item() == 0.0
    c = torch.cov(x.T)
    expected = (9 * (c ** 2).sum() / (4 * 25)).item()     # doubling the features quadruples the covariance
    assert coral_loss(x, 2 * x).item() == pytest.approx(expected, rel=1e-5)
    assert coral_loss(x, x + 3.0).item() == pytest.approx(0.0, abs=1e-6)   # a shift of the mean costs nothing


def test_real_audio_crops_are_seeded_and_leave_batch_norm_statistics_alone():
    from zslkit.model.adapt import RealAudio
    rng = np.random.default_rng(0)
    store = {f"r{i}": rng.standard_normal((n, 3)).astype(np.float32) for i, n in enumerate((20, 3, 9))}

    class Store(dict):
        track_ids = property(lambda self: list(self))

    real = RealAudio(Store(store), 8, 6, seed=1, rank=0, weight=0.5)
    a, b = real.batch_at(7), real.batch_at(7)
    assert a.shape == (6, 8, 3) and np.array_equal(a, b) and not np.array_equal(a, real.batch_at(8))
    enc = _Tiny(8, 3)
    enc.train()
    before = enc.norm.running_mean.clone(), enc.norm.running_var.clone()
    x = torch.randn(6, 8, 3)
    task = enc(x).sum()                       # the task step's forward, then the adaptation's, then one backward
    after_task = enc.norm.running_mean.clone(), enc.norm.running_var.clone(), enc.norm.num_batches_tracked.item()
    loss = real.loss(enc, x, torch.from_numpy(a))
    (task + loss).backward()
    assert loss.item() > 0 and enc.norm.weight.grad is not None
    assert not torch.equal(after_task[0], before[0])
    assert torch.equal(enc.norm.running_mean, after_task[0]) and torch.equal(enc.norm.running_var, after_task[1])
    assert enc.norm.num_batches_tracked.item() == after_task[2] and enc.norm.momentum == 0.1
    with pytest.raises(DataError, match="needs at least two"):
        RealAudio(Store({"r0": store["r0"]}), 8, 6, 1, 0, 1.0)


def test_training_with_coral_reads_stage_01s_unlabelled_mels_and_changes_only_the_training_loss(tmp_path):
    import shutil

    from conftest import synthetic_trainer, synthetic_training
    syn = synthetic_training(tmp_path, max_epochs=2)
    ds, split, P = syn
    with pytest.raises(ParamError, match="set data.unlabelled"):
        synthetic_trainer(syn, tmp_path / "no", adapt="coral")
    P = {**P, "data": {**P["data"], "unlabelled": ["supertux-data"]},
         "model": {**P["model"], "encoder": "paper_bn"}}       # batch norm: its statistics meet the extra passes
    with pytest.raises(DataError, match="unlabelled/mels not found"):
        synthetic_trainer((ds, split, P), tmp_path / "no", adapt="coral")
    shutil.copytree(ds.root / "mels", tmp_path / "data" / "unlabelled" / "mels")
    plain = synthetic_trainer((ds, split, P), tmp_path / "plain").fit(progress=False)
    coral = synthetic_trainer((ds, split, P), tmp_path / "coral", adapt="coral")
    curves = coral.fit(progress=False)
    assert coral.real is not None and np.isfinite(curves.valid_loss).all()
    assert not np.allclose(curves.train_loss, plain.train_loss)
    # validation is the task loss alone: the same model scored without the real crops
    coral.net.eval()
    batch = next(iter(coral._loader(coral.valid_src)))
    assert coral.loss(batch).item() == coral._task_loss(coral.net, *_prepared(coral, batch)).item()


def _prepared(trainer, batch):
    from zslkit.model.inference import standardise
    x, pos, neg, positives = batch
    return standardise(x, trainer.mean, trainer.std), pos, neg, positives


# ----------------------------------------------------------------------------- the check on the run's page

def _rows(model, seen, unseen, style_ci, top=("classical", 0.9)):
    common = {"stage": "07_transfer", "model": model, "train_setting": "demo", "labels": "annotation"}
    return [
        {**common, "test_setting": "target-T", "task": "annotation", "metric": "AUC-i", "value": 0.5, "n": 150,
         "n_excluded": 20},
        {**common, "test_setting": "target-T seen by source", "task": "retrieval", "metric": "AUC-l", "value": seen,
         "ci_low": np.nan, "ci_high": np.nan, "n": 1},
        {**common, "test_setting": "target-T group instrument", "task": "retrieval", "metric": "AUC-l",
         "value": seen, "ci_low": seen - 0.05, "ci_high": seen + 0.05, "n": 1},
        {**common, "test_setting": "target-T unseen by source", "task": "retrieval", "metric": "AUC-l",
         "value": unseen, "ci_low": unseen - 0.1, "ci_high": unseen + 0.1, "n": 3},
        {**common, "test_setting": "target-T group style", "task": "retrieval", "metric": "AUC-l",
         "value": sum(style_ci) / 2, "ci_low": style_ci[0], "ci_high": style_ci[1], "n": 2},
        {**common, "test_setting": "target-T", "task": "concentration", "metric": "largest share of tracks with "
         "one tag in their top 1", "value": top[1], "labels": top[0], "n": 170},
    ]


def test_the_page_says_each_model_against_the_control_and_names_groups_at_or_under_chance(tmp_path):
    from zslkit.show.real_check import real_check_lines, real_check_shown
    real = tmp_path / "real"
    real.mkdir()
    rows = (_rows("transfer joint (glove)", 0.79, 0.26, (0.2, 0.3))
            + _rows("transfer joint (glove) + adabn", 0.71, 0.30, (0.45, 0.6))
            + _rows("transfer joint-random (random)", 0.72, 0.71, (0.6, 0.8), ("romantic", 0.95)))
    pd.DataFrame(rows).to_csv(real / "results.csv", index=False)
    lines = real_check_lines(tmp_path)
    assert len(lines) == 1                                   # the adapted model is in the table only
    assert lines[0].startswith("On real recordings (170 clips), transfer joint (glove): seen tags AUC-l 0.79; "
                               "instrument tags 0.79; unseen tags 0.26")
    assert "random control (seen, instrument, unseen) 0.72, 0.72, 0.71" in lines[0]
    assert "'classical' is in the top tags of 90% of the clips" in lines[0]
    assert lines[0].endswith("below chance, ranked backwards (interval under 0.5): style.")
    shown = real_check_shown(tmp_path).set_index("model")
    assert shown.loc["transfer joint (glove)", "seen tags AUC-l"] == "0.790"          # one tag: no interval
    assert shown.loc["transfer joint (glove) + adabn", "group: style"] == "0.525 [0.450, 0.600]"
    (real / "results.csv").unlink()
    assert real_check_lines(tmp_path) == [] and real_check_shown(tmp_path).empty
    (real / "skipped.json").write_text('{"reason": "none of wesnoth-1.16-music is installed"}')
    assert real_check_lines(tmp_path) == ["On real recordings: not checked: none of wesnoth-1.16-music is installed."]


# ----------------------------------------------------------------------------- agreement with a tagger

def test_spearman_per_tag_known_answers():
    from zslkit.evaluate.agreement import spearman_per_tag
    x = np.arange(10.0)
    scores = np.stack([x, x, x, np.ones(10)], axis=1)
    probs = np.stack([x ** 3, -x, np.r_[x[:5], x[:5]], x], axis=1)   # monotone, reversed, partial, constant score
    rho = spearman_per_tag(scores, probs)
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0) and np.isnan(rho[3])
    from scipy.stats import spearmanr
    assert rho[2] == pytest.approx(spearmanr(x, probs[:, 2]).statistic)


def test_agreement_rows_compare_the_source_tags_the_tagger_knows_and_refuse_the_taggers_own_features():
    from zslkit.evaluate.agreement import agreement_rows
    rng = np.random.default_rng(0)
    tracks = rng.standard_normal((30, 4)).astype(np.float32)
    source_tags = ["piano", "reel", "violin"]                      # reel: not one of the tagger's
    tag_emb = np.eye(4, dtype=np.float32)[:3]
    source = Embeddings(["s"], np.zeros((1, 4), np.float32), source_tags, tag_emb, np.ones(3, bool), tag_emb, {})
    emb = Embeddings([f"t{i}" for i in range(30)], tracks, ["guitar"], tag_emb[:1], np.ones(1, bool), tag_emb[:1], {})
    unit = tracks / np.linalg.norm(tracks, axis=1, keepdims=True)
    vocabulary = ["violin", "drums", "piano"]
    probs = np.stack([unit[:, 2], rng.random(30), -unit[:, 0]], axis=1)   # violin agrees, piano disagrees
    rows = {r["labels"]: r for r in agreement_rows("m", emb, source, probs, vocabulary, "MTT_musicnn", "demo")}
    assert set(rows) == {"piano", "violin", "mean"}
    assert rows["violin"]["value"] == pytest.approx(1.0) and rows["piano"]["value"] == pytest.approx(-1.0)
    assert rows["mean"]["value"] == pytest.approx(0.0) and rows["mean"]["n"] == 2
    assert rows["mean"]["metric"] == "Spearman rho with MTT_musicnn (agreement, not truth)"
    emb.meta["encoder"] = "musicnn"
    (row,) = agreement_rows("m", emb, source, probs, vocabulary, "MTT_musicnn", "demo")
    assert row["metric"] == "skipped" and "agreeing with itself" in row["labels"]
