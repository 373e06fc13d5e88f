"""m21's renders that vary like recordings: timbre banks with one held out, performance, production.

Every test here runs with only the bundled bank installed: the multi-bank path uses a copy of the bundled
bank under another name; what needs a Debian bank is skipped with the reason.
"""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from zslkit import ParamError, config
from zslkit.data.datasets import m21
from zslkit.data.datasets.m21 import banks, performance, production
from zslkit.data.datasets.m21.build import draw_render, render_digest, render_record

pytest.importorskip("pedalboard")
pytest.importorskip("pyloudnorm")

DEFAULTS = config.resolve({}, root=Path("."))["data"]["m21"]
PIECES = {r: 0 for r in m21.catalogue.repertories()} | {"oneills": 2, "bach": 2}


def _midi(path: Path) -> Path:
    import pretty_midi
    pm = pretty_midi.PrettyMIDI()
    for prog, base in ((0, 60), (40, 67)):
        inst = pretty_midi.Instrument(prog)
        inst.notes = [pretty_midi.Note(80, base + (k % 5), 0.25 * k, 0.25 * k + 0.4) for k in range(10)]
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


@pytest.fixture(scope="module")
def two_banks(tmp_path_factory):
    """The bundled bank and a copy of it under another name: two banks, whatever is installed."""
    copy = tmp_path_factory.mktemp("banks") / "TimCopy.sf2"
    shutil.copy(banks.bundled_path(), copy)
    return ["bundled", str(copy)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, two_banks):
    """A tiny build with performance, production and two banks (the copy held out), by two workers."""
    root = tmp_path_factory.mktemp("m21r")
    P = config.resolve({"data": {"m21": {"n_clips": 12, "clip_seconds": 3.2, "min_tag_count": 1, "pieces": PIECES,
                                         "soundfonts": two_banks, "heldout_bank": "TimCopy.sf2",
                                         "heldout_share": 0.4}}}, root=root)["data"]["m21"]
    ds, report = m21.build(root / "ds", root / "sym", P, seed=5, workers=2, progress=False)
    return root, P, ds, report


def test_dry_render_is_bit_identical_to_the_renders_before():
    """production none, performance none, the bundled bank: the samples m21 rendered before banks,
    performance and production (hash computed with that code)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        midi = _midi(Path(tmp) / "m.mid")
        plan = m21.ClipPlan("c", "p", ["piano", "violin"], 100.0, 2, 0.5, 90, 0.6, 0, seed=123)
        y = m21.render_clip(plan, midi, 5.0, str(m21.soundfont_paths(["bundled"])[0]), 3.0, 22050)
    assert y.dtype == np.float32 and len(y) == 66150
    assert hashlib.sha256(np.round(y * 32767).astype(np.int16).tobytes()).hexdigest() == (
        "d65d4e0722caa43ffa85e3d96fe07b2bcc6ababc9d5412b6c17b9b6923dba6c9")


def test_dry_digest_is_the_digest_before():
    plan = m21.ClipPlan("c", "p", ["flute"], 120.0, 1, 2.0, 90, 0.5, 0, seed=9)
    legacy = hashlib.sha256(json.dumps(["p", ["flute"], 120.0, 1, 2.0, 90, 0.5, "TimGM6mb.sf2", 9, 15.0, 22050])
                            .encode()).hexdigest()[:16]
    assert render_digest(plan, DEFAULTS, ["/x/TimGM6mb.sf2"]) == legacy


def test_digest_covers_every_choice():
    plan = m21.ClipPlan("c", "p", ["piano", "cello"], 120.0, 1, 2.0, 90, 0.5, 0, seed=9)
    plan.performance = performance.draw(9, plan.instruments, DEFAULTS["performance_ranges"])
    plan.production = production.draw(9, DEFAULTS["production_ranges"])
    digest = render_digest(plan, DEFAULTS, ["/x/TimGM6mb.sf2"])
    wetter = {**DEFAULTS["production_ranges"], "room_wet": [0.5, 0.6]}
    other = production.draw(9, wetter)
    assert {k for k in other if other[k] != plan.production[k]} == {"room_wet"}  # one range moves one value
    assert render_digest(m21.ClipPlan(**{**plan.__dict__, "production": other}), DEFAULTS,
                               ["/x/TimGM6mb.sf2"]) != digest
    slower = performance.draw(9, plan.instruments, {**DEFAULTS["performance_ranges"], "rubato": [0.2, 0.3]})
    assert render_digest(m21.ClipPlan(**{**plan.__dict__, "performance": slower}), DEFAULTS,
                               ["/x/TimGM6mb.sf2"]) != digest
    assert render_digest(plan, DEFAULTS, ["/x/FluidR3_GM.sf2"]) != digest  # the bank
    assert render_digest(plan, DEFAULTS, ["/x/TimGM6mb.sf2"]) == digest


def test_ranges_are_checked():
    with pytest.raises(ParamError, match="production_ranges"):
        config.resolve({"data": {"m21": {"production_ranges": {"codec": {"flac": 1.0}}}}}, root=Path("."))
    with pytest.raises(ParamError, match="performance_ranges"):
        config.resolve({"data": {"m21": {"performance_ranges": {"rubato": [0.2, 0.1]}}}}, root=Path("."))
    with pytest.raises(ParamError, match="not among the MP3 bitrates"):
        production.check({**DEFAULTS["production_ranges"], "mp3_kbps": [8, 64]})
    P = config.resolve({"data": {"m21": {"production_ranges": {"codec": {"mp3": 1}}}}}, root=Path("."))["data"]["m21"]
    assert P["production_ranges"]["codec"] == {"mp3": 1} and P["production_ranges"]["room_size"] == [0.1, 0.95]


def test_heldout_share_and_fallbacks(two_banks, monkeypatch, tmp_path):
    chosen = [banks.choose_bank(s, 3, 2, 0.2) for s in range(3000)]
    held = np.array([h for _, h in chosen])
    assert abs(held.mean() - 0.2) < 0.025
    assert all(i == 2 for i, h in chosen if h) and {i for i, h in chosen if not h} == {0, 1}
    assert banks.choose_bank(7, 1, None, 0.5) == (0, False)
    b = banks.resolve(two_banks, "TimCopy.sf2")
    assert b.files == ["TimGM6mb.sf2", "TimCopy.sf2"] and b.heldout_file == "TimCopy.sf2"
    assert "held out: TimCopy.sf2" in b.note
    # a named Debian bank that is not installed is left out and named with its package
    monkeypatch.setitem(banks.DEBIAN, "fluidr3", (str(tmp_path / "none.sf2"), "fluid-soundfont-gm"))
    b = banks.resolve(["bundled", "fluidr3"], "fluidr3")
    assert b.files == ["TimGM6mb.sf2"] and b.heldout is None and b.missing == ["fluidr3 (fluid-soundfont-gm)"]
    assert "not installed, left out: fluidr3" in b.note and "only one bank: nothing held out" in b.note
    b = banks.resolve(two_banks + ["fluidr3"], "fluidr3")  # another installed bank is held out, and said
    assert b.heldout_file == "TimCopy.sf2" and "since the bank asked for (fluidr3) is not installed" in b.note
    with pytest.raises(ParamError, match="not installed: fluidr3"):
        banks.soundfont_paths(["bundled", "fluidr3"])


def test_performance_as_written_and_with_the_pedal():
    plan = m21.ClipPlan("c", "p", ["piano"], 120.0, 0, 0.0, 80, 0.5, 0, seed=3)
    zero = {k: ([0.0, 0.0] if isinstance(v, list) and len(v) == 2 else v)
            for k, v in DEFAULTS["performance_ranges"].items()}
    perf = performance.draw(3, plan.instruments, {**zero, "articulation": [1.0, 1.0], "phrase_quarters": [4, 4]})
    notes = np.array([[0.0, 0.5], [1.0, 1.25], [1.5, 2.0]])
    pitches = np.array([60, 62, 64])
    events, ccs = performance.events(perf, plan, [(0, notes, pitches)], 1000)
    assert sorted(e[0] for e in events if e[1] == 1) == [0, 500, 750]  # 120 bpm: 500 samples per quarter
    assert sorted(e[0] for e in events if e[1] == 0) == [249, 624, 999]
    assert {e[4] for e in events if e[1] == 1} == {80}  # no swell, accent or jitter
    assert (0, 7, 127) in ccs and (0, 10, 64) in ccs  # full level, centred
    pedal = performance.draw(3, plan.instruments, {**zero, "articulation": [1.0, 1.0], "phrase_quarters": [4, 4],
                                                   "pedal": [1.0, 1.0], "pedal_quarters": [2.0, 2.0]})
    assert pedal["pedal"] == [1]
    events, _ = performance.events(pedal, plan, [(0, notes, pitches)], 1000)
    assert sorted(e[0] for e in events if e[1] == 0) == [989, 989, 999]  # held until the pedal lifts at 2 quarters
    cello = performance.draw(3, ["cello"], {**zero, "pedal": [1.0, 1.0]})
    assert cello["pedal"] == [0]  # no pedal on a cello
    for seed in range(20):  # rubato keeps the mean tempo: whole phrases land where they would
        p = performance.draw(seed, ["flute"], DEFAULTS["performance_ranges"])
        q = np.array([0.0, p["phrase_quarters"], 3 * p["phrase_quarters"]])
        np.testing.assert_allclose(performance._seconds(q, 90.0, p), q * 60 / 90.0, atol=1e-9)


def test_timbre_warp_moves_the_body_and_keeps_the_pitch(tmp_path):
    """A warp scales the samples' spectrum (the centroid moves with it) while the note keeps its pitch;
    its draw has its own stream (the other draws stay as they were); a warp of 0 after another warp
    renders what it renders first (the reused synthesiser is reset)."""
    import pretty_midi
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(40)  # a violin's A4, held
    inst.notes = [pretty_midi.Note(90, 69, 0.0, 2.4)]
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "a.mid"))
    zero = {k: ([0.0, 0.0] if isinstance(v, list) and len(v) == 2 else v)
            for k, v in DEFAULTS["performance_ranges"].items()}
    zero.update(articulation=[1.0, 1.0], phrase_quarters=[4.0, 4.0])
    bank = str(m21.soundfont_paths(["bundled"])[0])
    sr, out = 22050, {}
    for w in (0.0, -3.0, 3.0, 0.0):
        plan = m21.ClipPlan("c", "p", ["violin"], 60.0, 0, 0.0, 90, 0.5, 0, seed=2)
        plan.performance = performance.draw(2, plan.instruments, {**zero, "timbre_warp": [w, w]})
        assert plan.performance["timbre_warp"] == w
        y = m21.render_clip(plan, tmp_path / "a.mid", 4.0, bank, 2.0, sr)
        if w in out:
            np.testing.assert_array_equal(y, out[w])
        out[w] = y
    spec = {w: np.abs(np.fft.rfft(y[sr // 4: sr // 4 + 16384] * np.hanning(16384))) for w, y in out.items()}
    freqs = np.fft.rfftfreq(16384, 1 / sr)
    peak = {w: freqs[np.argmax(s)] for w, s in spec.items()}  # the note (moved into the violin's range)
    assert all(abs(f - peak[0.0]) < 3.0 for f in peak.values()) and abs(peak[0.0] % 440.0) < 3.0, peak
    centroid = {w: float((freqs * s).sum() / s.sum()) for w, s in spec.items()}
    assert centroid[-3.0] < centroid[0.0] < centroid[3.0], centroid
    assert performance.warp_rate(22050, 0.0) == (22050, 0.0)
    rate, tuning = performance.warp_rate(22050, 2.5)
    assert rate == 19085 and tuning == pytest.approx(-2.5, abs=1e-3)
    # its own stream: with or without the key, every other draw is the same
    base = {k: v for k, v in DEFAULTS["performance_ranges"].items() if k != "timbre_warp"}
    a = performance.draw(11, ["flute", "cello"], base)
    b = performance.draw(11, ["flute", "cello"], {**base, "timbre_warp": [-2.0, 2.0]})
    assert "timbre_warp" not in a and -2.0 <= b.pop("timbre_warp") <= 2.0 and a == b


def test_codec_round_trip_changes_the_audio_but_keeps_length_and_timing():
    sr = 22050
    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-(t % 0.4) * 8) + 0.02 * rng.standard_normal(len(t)))
    y = y.astype(np.float32)
    for codec, setting in (("mp3", 32), ("mp3", 128), ("ogg", 0.1), ("ogg", 0.6)):
        out = production.codec_round_trip(y, sr, codec, setting)
        assert len(out) == len(y) and out.dtype == np.float32 and not np.array_equal(out, y)
        corr = np.correlate(out[sr: sr + 4000], y[sr - 200: sr + 4200], "valid")
        assert int(np.argmax(corr)) == 200, (codec, setting)  # no delay left
        snr = 10 * np.log10(np.sum(y ** 2) / np.sum((out - y) ** 2))
        assert snr > 3, (codec, setting, snr)


def test_loudness_lies_in_the_configured_range():
    sr = 22050
    ranges = {**DEFAULTS["production_ranges"], "loudness_lufs": [-26.0, -14.0]}
    rng = np.random.default_rng(1)
    t = np.arange(3 * sr) / sr
    measured = []
    for seed in range(8):
        stereo = np.stack([np.sin(2 * np.pi * (220 + 40 * seed) * t) * (1 + np.sin(t * 3)),
                           0.5 * rng.standard_normal(len(t)) * np.exp(-(t % 0.5) * 10)], axis=1)
        prod = production.draw(seed, ranges)
        out = production.apply(stereo.astype(np.float32) * 0.01, sr, prod, seed)
        assert len(out) == len(t) and np.abs(out).max() <= 10 ** (-1 / 20) + 1e-6
        measured.append(production.loudness(out, sr))
        assert prod["loudness_lufs"] - 1.0 <= measured[-1] <= prod["loudness_lufs"] + 0.5
    assert -27.0 <= min(measured) and max(measured) <= -13.5 and np.ptp(measured) > 4  # a spread


@pytest.mark.slow  # builds m21 (tiny)
def test_build_records_every_draw_and_the_heldout_bank(tiny):
    root, P, ds, report = tiny
    t = ds.tracks
    assert set(t.heldout) <= {0, 1} and ds.meta["heldout_bank"] == "TimCopy.sf2"
    assert (t.soundfont[t.heldout == 1] == "TimCopy.sf2").all()
    assert (t.soundfont[t.heldout == 0] == "TimGM6mb.sf2").all()
    assert ds.meta["soundfonts"] == ["TimGM6mb.sf2", "TimCopy.sf2"] and "held out: TimCopy.sf2" in report["banks"]
    assert report["clips_heldout_bank"] == int(t.heldout.sum())
    perf_keys = {"perf_" + k for k in [*DEFAULTS["performance_ranges"], "rubato_phase"]}
    prod_keys = {"prod_" + k for k in DEFAULTS["production_ranges"]}
    assert perf_keys | prod_keys <= set(t.columns)
    table = pd.read_csv(ds.root / "tracks.csv", dtype=str, keep_default_na=False).set_index("track_id")
    resolved = banks.resolve(P["soundfonts"], P["heldout_bank"])
    for _, row in t.iterrows():  # what is recorded is what the clip's seed draws, within its range
        plan = m21.ClipPlan(row.track_id, row.piece_id, row.instruments.split(";"), 0.0, 0, 0.0, 0, 0.0, 0,
                            seed=int(row.render_seed))
        draw_render(plan, P, resolved)
        assert bool(row.heldout) == plan.heldout and row.soundfont == resolved.files[plan.soundfont]
        rec = table.loc[row.track_id]
        for key, value in render_record(plan).items():
            assert rec[key] == str(value), key
        assert len(rec.perf_part_gain_db.split(";")) == len(rec.perf_pan.split(";")) == len(plan.instruments)
        for group, values in (("performance_ranges", plan.performance), ("production_ranges", plan.production)):
            for key, spec in P[group].items():
                v = values[key]
                if isinstance(spec, list) and len(spec) == 2 and key not in performance.PART_KEYS and v is not None:
                    assert spec[0] <= v <= spec[1], key
    for tid in t.track_id[:4]:
        y, sr = sf.read(ds.audio_path(tid))
        assert sr == 22050 and len(y) == int(3.2 * 22050) and np.abs(y).max() > 0.005
        lo, hi = P["production_ranges"]["loudness_lufs"]
        assert lo - 1.5 <= production.loudness(y, sr) <= hi + 0.5


@pytest.mark.slow  # builds m21 (tiny) twice
def test_each_clip_is_the_same_whatever_the_worker(tiny, tmp_path):
    root, P, ds, _ = tiny
    again, report = m21.build(tmp_path / "one", root / "sym", P, seed=5, workers=1, progress=False)
    assert report["clips_rendered_now"] == len(again.tracks)
    pd.testing.assert_frame_equal(again.tracks, ds.tracks)
    for tid in ds.tracks.track_id:
        np.testing.assert_array_equal(sf.read(again.audio_path(tid))[0], sf.read(ds.audio_path(tid))[0])
    # a production parameter changed: the clips whose draw moved are rendered again, the others reused
    wetter = {**P, "production_ranges": {**P["production_ranges"], "room_wet": [0.5, 0.6]}}
    changed, report = m21.build(tmp_path / "one", root / "sym", wetter, seed=5, workers=1, progress=False)
    assert report["clips_replaced"] == report["clips_rendered_now"] == len(changed.tracks)
    assert (changed.tracks.prod_room_wet >= 0.5).all()


@pytest.mark.slow  # renders with each installed Debian bank
def test_debian_banks_render_with_production(tmp_path):
    found, missing = banks.find_banks(["debian"])
    if not found:
        pytest.skip(f"no Debian General MIDI bank installed ({', '.join(missing)}): apt-get install them to run this")
    midi = _midi(tmp_path / "m.mid")
    for entry, path in found:
        plan = m21.ClipPlan("c", "p", ["piano", "violin"], 100.0, 0, 0.0, 90, 0.5, 0, seed=4)
        plan.performance = performance.draw(4, plan.instruments, DEFAULTS["performance_ranges"])
        plan.production = production.draw(4, DEFAULTS["production_ranges"])
        y = m21.render_clip(plan, midi, 5.0, str(path), 3.2, 22050)
        assert len(y) == int(3.2 * 22050) and np.abs(y).max() > 0.005, entry


def test_report_page_says_how_the_data_was_rendered(tmp_path):
    import yaml

    from zslkit.show.report_page import write_index
    (tmp_path / "data" / "m21-x").mkdir(parents=True)
    note = "timbre banks used: TimGM6mb.sf2; only one bank: nothing held out (asked for bundled)"
    (tmp_path / "data" / "m21-x" / "dataset.json").write_text(json.dumps({"render": note}))
    run = tmp_path / "reports" / "r"
    run.mkdir(parents=True)
    (run / "params.yaml").write_text(yaml.safe_dump({"run": {"data_dir": str(tmp_path / "data")},
                                                     "data": {"name": "m21-x", "source": "m21"}}))
    page = write_index(run).read_text()
    assert "<th>rendering</th>" in page and "nothing held out" in page
