"""Training-time augmentation (train.augment): each augmentation's behaviour, the parameters, the trainer's use."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic_dataset, tone

from zslkit import ParamError, config
from zslkit.data.audio import MelSpec, logmel
from zslkit.data.splits import prepare_split
from zslkit.model.augment import (
    Augmenter,
    Batch,
    Context,
    band_hz,
    gain,
    linear,
    mixup,
    relog,
    scale_db,
    specaugment,
    tilt,
)
from zslkit.model.inference import standardise
from zslkit.model.train import seen_vectors
from zslkit.model.trainer import Trainer
from zslkit.registry import AUGMENTS, Field, Registry

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CTX = Context(torch.device("cpu"), fill=0.4, sample_rate=22050)
EVERY = [{"name": "specaugment"}, {"name": "gain"}, {"name": "tilt"}, {"name": "mixup", "p": 0.8}]


def defaults(name):
    return {k: f.default for k, f in AUGMENTS[name].params.items()}


def batch(b=64, frames=130, n_mels=128, n_x=12, k=2, seed=0, device="cpu"):
    """Log-mels in the front end's range, a positive and k negatives per row, ~30 % positive tags."""
    rng = np.random.default_rng(seed)
    positives = rng.random((b, n_x)) < 0.3
    positives[:, n_x - k:] = False  # at least k negatives
    positives[np.arange(b), rng.integers(0, n_x - k, b)] = True
    pos = np.array([rng.choice(np.flatnonzero(r)) for r in positives])
    neg = np.stack([rng.choice(np.flatnonzero(~r), k, replace=False) if k else np.zeros(0, int) for r in positives])
    x = rng.random((b, frames, n_mels)) * 2
    t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    return Batch(t(x, torch.float32), t(pos, torch.int64), t(neg.reshape(b, k), torch.int64), t(positives, torch.bool))


# ----------------------------------------------------------------------------- parameters

def test_items_are_validated_and_filled_with_defaults(tmp_path):
    P = config.resolve({"train": {"augment": ["gain", {"name": "specaugment", "time_masks": 1}]}}, root=tmp_path)
    assert P["train"]["augment"] == [{"name": "gain", **defaults("gain")},
                                     {"name": "specaugment", **{**defaults("specaugment"), "time_masks": 1}}]
    assert config.resolve(P, root=tmp_path)["train"]["augment"] == P["train"]["augment"]  # resolving again: same
    assert config.resolve({}, root=tmp_path)["train"]["augment"] == []
    assert config.stage_of("train.augment") == "03" and not config.is_neutral("train.augment")


@pytest.mark.parametrize("augment, message", [
    ([{"name": "gain", "db": -1}], "train.augment[0].db: -1.0 is below the minimum 0.0"),
    (["gain", {"name": "mixup", "p": 2}], "train.augment[1].p: 2.0 is above the maximum 1.0"),
    ([{"name": "specaugment", "time_widht": 3}], "unknown key train.augment[0].time_widht (in bad.yaml); known keys "
     "in train.augment[0]: freq_masks, freq_width, time_masks, time_width"),
    (["noise"], "train.augment[0].name: 'noise' is not a registered training augmentation; known: specaugment"),
    ([{"db": 3}], "train.augment[0]: expected a name or {name: <training augmentation>"),
    ([{"name": "tilt", "pivot_hz": "1k"}], "train.augment[0].pivot_hz: expected float, got '1k'"),
    ("gain", "train.augment: expected list"),
])
def test_bad_items_name_their_place_and_value(tmp_path, augment, message):
    with pytest.raises(ParamError) as err:
        config.resolve({"train": {"augment": augment}}, root=tmp_path, source="bad.yaml")
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_describe_lists_the_augmentations_and_their_parameters():
    text = config.describe()
    assert "train.augment: registered training augmentations" in text
    assert "  mixup " in text and "    min_weight " in text and "    db_per_octave " in text


def test_an_entry_chosen_as_a_list_item_may_not_have_a_parameter_called_name():
    reg = Registry("thing", "x.things", reserved_params=("name",))
    with pytest.raises(ParamError, match="thing 'bad': a parameter may not be called 'name'"):
        reg.register("bad", lambda *a: None, params={"name": Field("str", "x")}, doc="bad")


# ----------------------------------------------------------------------------- each augmentation

def test_log_domain_round_trip():
    x = torch.linspace(0, 4, 101)
    torch.testing.assert_close(relog(linear(x)), x)
    torch.testing.assert_close(scale_db(x, torch.tensor(0.0)), x)


@pytest.mark.parametrize("axis", [1, 2])
def test_specaugment_masks_runs_of_at_most_width_with_the_mean(axis):
    b = batch(b=400)
    p = {"time_masks": 1, "time_width": 20, "freq_masks": 0, "freq_width": 16} if axis == 1 else \
        {"time_masks": 0, "time_width": 20, "freq_masks": 1, "freq_width": 16}
    width = p["time_width"] if axis == 1 else p["freq_width"]
    out = specaugment(b, p, CTX, np.random.default_rng(0))
    assert out.x.shape == b.x.shape and out.pos is b.pos and out.positives is b.positives
    changed = (out.x != b.x).any(dim=3 - axis)  # (b, size): which frames (or bands) were masked
    widths = []
    for row, hit in zip(range(len(b.x)), changed):
        at = torch.nonzero(hit).flatten()
        widths.append(len(at))
        if len(at):  # one contiguous run inside the segment, every value the fill
            assert at[-1] - at[0] + 1 == len(at) and at[-1] < b.x.shape[axis]
            region = out.x[row, at] if axis == 1 else out.x[row, :, at]
            assert (region == CTX.fill).all()
    assert min(widths) == 0 and max(widths) == width  # widths are drawn from 0..width
    assert (standardise(out.x, CTX.fill, 0.5)[changed[:, :, None].expand_as(out.x) if axis == 1
                                                else changed[:, None, :].expand_as(out.x)] == 0).all()
    unchanged = out.x == b.x
    assert unchanged.sum() == out.x.numel() - sum(widths) * b.x.shape[3 - axis]


def test_specaugment_defaults_mask_at_most_their_widths():
    b = batch()
    p = defaults("specaugment")
    out = specaugment(b, p, CTX, np.random.default_rng(1))
    frames = (out.x == CTX.fill).all(dim=2).sum(dim=1)
    assert (frames <= p["time_masks"] * p["time_width"]).all() and frames.float().mean() > 0


def test_gain_is_a_gain_of_the_audio():
    """The gain of a log-mel is the log-mel of the audio scaled: the front end is log10(1 + 10 mel), not linear."""
    spec = MelSpec()
    y = tone(440, seconds=1.0, noise=0.05)
    ref = torch.as_tensor(logmel(y, spec))[None]
    for db in (-6.0, 4.5):
        louder = torch.as_tensor(logmel(y * 10 ** (db / 20), spec))[None]
        torch.testing.assert_close(scale_db(ref, torch.tensor(db)), louder, atol=2e-5, rtol=1e-4)
        assert not torch.allclose(ref + db / 20, louder, atol=1e-2)  # an additive constant would be wrong
    b = batch(b=8)
    out = gain(b, {"db": 6.0}, CTX, np.random.default_rng(3))
    drawn = np.random.default_rng(3).uniform(-6, 6, 8)
    torch.testing.assert_close(out.x, scale_db(b.x, torch.as_tensor(drawn, dtype=torch.float32)[:, None, None]))
    assert ((out.x > b.x).all(dim=(1, 2)) == torch.as_tensor(drawn > 0)).all()


def test_tilt_turns_the_spectrum_about_the_pivot():
    b = batch(b=8)
    hz = band_hz(22050, 128)
    assert hz.shape == (128,) and (np.diff(hz) > 0).all() and hz[-1] < 11025
    out = tilt(b, {"db_per_octave": 3.0, "pivot_hz": 1000.0}, CTX, np.random.default_rng(4))
    slope = np.random.default_rng(4).uniform(-3, 3, 8)
    db = slope[:, None] * np.log2(np.maximum(hz, 20) / 1000.0)[None]
    torch.testing.assert_close(out.x, scale_db(b.x, torch.as_tensor(db, dtype=torch.float32)[:, None, :]))
    low, high = hz < 500, hz > 2000  # a positive slope raises the high bands and lowers the low ones
    rising = slope > 0
    assert ((out.x - b.x)[:, :, high].mean(dim=(1, 2)) > 0).numpy().tolist() == rising.tolist()
    assert ((out.x - b.x)[:, :, low].mean(dim=(1, 2)) < 0).numpy().tolist() == rising.tolist()


@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("seed", range(2))
def test_mixup_takes_the_union_and_leaves_no_positive_as_a_negative(k, seed):
    b = batch(b=64, frames=16, n_mels=16, n_x=8, k=k, seed=seed)
    p = {"p": 0.7, "alpha": 0.4, "min_weight": 0.2}
    out = mixup(b, p, CTX, np.random.default_rng(seed))
    partner = torch.as_tensor(np.random.default_rng(seed).permutation(64))
    mixed = (out.x != b.x).any(dim=(1, 2))
    assert 0 < mixed.sum() < 64
    union = b.positives | b.positives[partner]
    assert (out.positives[mixed] == union[mixed]).all()
    assert (out.positives[~mixed] == b.positives[~mixed]).all() and (out.x[~mixed] == b.x[~mixed]).all()
    assert out.positives[torch.arange(64), out.pos].all()  # the positive is a positive of the mix
    assert not out.positives.gather(1, out.neg).any()       # no positive of either track is a negative
    assert out.neg.shape == (64, k) and all(len(set(r.tolist())) == k for r in out.neg)
    assert (out.neg[~mixed] == b.neg[~mixed]).all() and (out.pos[~mixed] == b.pos[~mixed]).all()
    # the mix is of the magnitudes: between the two tracks', band by band
    lo, hi = torch.minimum(b.x, b.x[partner]), torch.maximum(b.x, b.x[partner])
    assert ((out.x[mixed] >= lo[mixed] - 1e-5) & (out.x[mixed] <= hi[mixed] + 1e-5)).all()


def test_mixup_leaves_a_segment_alone_when_the_union_leaves_too_few_negatives():
    positives = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]] * 10, dtype=torch.bool)
    neg = torch.tensor([[1, 2], [2, 3], [0, 1]] * 10)
    b = Batch(batch(b=30).x, torch.tensor([0, 1, 2] * 10), neg, positives)
    out = mixup(b, {"p": 1.0, "alpha": 1.0, "min_weight": 0.2}, CTX, np.random.default_rng(5))
    partner = torch.as_tensor(np.random.default_rng(5).permutation(30))
    short = (~(b.positives | b.positives[partner])).sum(dim=1) < 2
    assert short.any() and (out.x[short] == b.x[short]).all() and (out.neg[short] == b.neg[short]).all()
    assert not out.positives.gather(1, out.neg).any()
    assert mixup(b, {"p": 0.0, "alpha": 1.0, "min_weight": 0.2}, CTX, np.random.default_rng(5)).x.equal(b.x)


@pytest.mark.parametrize("device", DEVICES)
def test_augmenter_is_seeded_by_step_and_stays_on_the_device(device):
    ctx = Context(torch.device(device), fill=0.4, sample_rate=22050)
    items = config.resolve({"train": {"augment": EVERY}}, root=".")["train"]["augment"]
    aug = Augmenter(items, ctx, seed=7)
    host = batch(b=16)
    host = (host.x.half(), host.pos, host.neg, host.positives)  # as the host feed brings it: float16 crops
    a, again, other = aug(host, 3), aug(host, 3), aug(host, 4)
    for t, u in zip(a, again):
        assert t.device.type == device and t.equal(u)
    assert a[0].dtype == torch.float32 and a[3].dtype == torch.bool
    assert not a[0].equal(other[0])
    assert not Augmenter(items, ctx, seed=8)(host, 3)[0].equal(a[0])
    assert not Augmenter(items, ctx, seed=7, rank=1)(host, 3)[0].equal(a[0])
    # an augmentation's draws do not depend on those listed before it
    alone = Augmenter(items[1:2], ctx, seed=7).rng(3, 0).random(4)
    assert not np.array_equal(alone, aug.rng(3, 1).random(4)) and np.array_equal(aug.rng(3, 1).random(4),
                                                                                 aug.rng(3, 1).random(4))


# ----------------------------------------------------------------------------- in the trainer

@pytest.fixture
def syn(tmp_path):
    ds = synthetic_dataset(tmp_path / "ds", n_tracks=64)
    P = config.resolve({"split": {"stratify": "none", "seed": 2}, "model": {"sideinfo": "random"},
                        "train": {"batch_size": 16, "workers": 0, "max_epochs": 2, "optimizer": "adam",
                                  "negatives": 2, "device": "cpu"}}, root=tmp_path)
    return ds, prepare_split(ds, P["split"]), P


def _trainer(syn, out, kind="joint", drop_augment=False, **train):
    ds, split, P = syn
    train = {**P["train"], **train}
    if drop_augment:  # the parameters of a zslkit before train.augment existed
        del train["augment"]
    vectors = seen_vectors(ds, split, "random") if kind == "joint" else None
    return Trainer(ds, split, vectors, {**P, "train": train}, out, seed=0, kind=kind, sideinfo="random")


def _same_weights(a, b):
    for (k, v), (_, w) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_no_augmentation_trains_bit_for_bit_as_before(syn, tmp_path):
    before = _trainer(syn, tmp_path / "a", drop_augment=True)
    now = _trainer(syn, tmp_path / "b", augment=[])
    assert now.augment is None and "augment" not in now.made_with["train"]
    assert now.digest == before.digest  # checkpoints made before the key existed resume
    assert before.run_epoch(progress=False)["train_loss"] == now.run_epoch(progress=False)["train_loss"]
    _same_weights(before, now)


@pytest.mark.parametrize("kind, loss", [("joint", "hinge"), ("joint", "contrastive"), ("classifier", "hinge")])
def test_every_augmentation_trains_and_validation_is_never_augmented(syn, tmp_path, kind, loss):
    items = config.resolve({"train": {"augment": EVERY}}, root=".")["train"]["augment"]
    tr = _trainer(syn, tmp_path / kind, kind=kind, loss=loss, augment=items)
    assert tr.made_with["train"]["augment"] == items  # in the checkpoint's digest
    calls, real = [], tr.augment
    tr.augment = lambda batch, step: calls.append(step) or real(batch, step)
    row = tr.run_epoch(progress=False)
    assert np.isfinite(row["train_loss"]) and calls == list(range(len(tr.train_src))) and calls
    assert np.isfinite(tr.validate()) and len(calls) == len(tr.train_src)


@pytest.mark.slow
def test_augmentation_is_in_the_digest_and_a_resumed_run_equals_an_uninterrupted_one(syn, tmp_path):
    items = config.resolve({"train": {"augment": EVERY}}, root=".")["train"]["augment"]
    full = _trainer(syn, tmp_path / "full", augment=items)
    assert full.made_with["train"]["augment"] == items and full.digest != _trainer(syn, tmp_path / "x").digest
    full.fit(progress=False, max_epochs=2)
    part = _trainer(syn, tmp_path / "part", augment=items)
    part.fit(progress=False, max_epochs=1)
    resumed = _trainer(syn, tmp_path / "part", augment=items)
    resumed.fit(progress=False, max_epochs=2)
    assert resumed.state["step"] == full.state["step"] > 0
    _same_weights(full, resumed)
    other = _trainer(syn, tmp_path / "part", augment=items[1:])
    with pytest.raises(ParamError, match=r"train.augment: \[\{'name': 'specaugment'"):
        other.fit(progress=False, max_epochs=3)


def test_every_built_in_reference_names_its_object():
    assert AUGMENTS.names() == ("specaugment", "gain", "tilt", "mixup")
    for entry in AUGMENTS:
        module, attr = entry.target.split(":")
        assert callable(entry.obj) and (entry.obj.__module__, entry.obj.__name__) == (module, attr)


def test_a_plugin_augmentation_is_validated_and_applied():
    @AUGMENTS.register("offset", params={"by": Field("float", 0.5, "added to the log-mels", lo=0.0)},
                       doc="a toy augmentation")
    def offset(batch, p, ctx, rng):
        return batch._replace(x=batch.x + p["by"])
    try:
        items = config.resolve({"train": {"augment": [{"name": "offset", "by": 0.25}, "offset"]}},
                               root=".")["train"]["augment"]
        assert items == [{"name": "offset", "by": 0.25}, {"name": "offset", "by": 0.5}]
        b = batch(b=4, frames=8, n_mels=16)
        out = Augmenter(items, CTX, seed=0)(tuple(b), step=0)
        torch.testing.assert_close(out[0], b.x + 0.75)
        with pytest.raises(ParamError, match=r"train.augment\[0\].by: -1.0 is below the minimum"):
            config.resolve({"train": {"augment": [{"name": "offset", "by": -1}]}}, root=".")
    finally:
        AUGMENTS.unregister("offset")
