"""Rendering m21 clips with General MIDI soundfonts (tinysoundfont), in worker processes.

A clip with neither performance nor production (``data.m21.performance: none``, ``production: none``) is
rendered as m21 always was: the notes as written, the mean of the synthesiser's channels, peak-normalised.
Otherwise the notes are played with the clip's performance (:mod:`.performance`) and the stereo render
goes through its production chain (:mod:`.production`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ....io import atomic_path
from . import catalogue, performance, production
from .plans import ClipPlan, _notes, _window

_SYNTHS: dict = {}


def _synth(sf_path: str, sample_rate: int, performed: bool = False):
    """The process's synthesiser for a bank (compressed sf3 banks take seconds to load). Performed clips
    set channel volume and pan, so they have their own synthesiser: a dry clip never meets those settings."""
    key = (sf_path, sample_rate, performed)
    if key not in _SYNTHS:
        import tinysoundfont  # the [m21] extra
        synth = tinysoundfont.Synth(samplerate=sample_rate)
        _SYNTHS[key] = (synth, synth.sfload(sf_path))
    return _SYNTHS[key]


def _silence(synth, sample_rate: int) -> None:
    """Stop every voice and render past the fade: the next clip then starts from a clean state,
    so a clip does not depend on which clip its worker rendered before (512 samples suffice;
    tests check bit-identical re-renders)."""
    synth.sounds_off()
    synth.generate(sample_rate // 10)


def _parts(plan: ClipPlan, notes: np.ndarray):
    """Per instrument: ``(channel, its notes, their pitches moved into its range, its program)``."""
    ranges = {i.name: (i.lo, i.hi, i.program) for i in catalogue.instruments()}
    n_parts = int(notes[:, 0].max()) + 1 if len(notes) else 1
    for k, name in enumerate(plan.instruments):
        lo, hi, prog = ranges[name]
        parts = [p for p in range(n_parts) if p % len(plan.instruments) == k] if n_parts > 1 else [0]
        if n_parts < len(plan.instruments):
            parts = list(range(n_parts))  # a melody doubled on every instrument
        mine = notes[np.isin(notes[:, 0], parts)]
        if not len(mine):
            yield k, mine, np.zeros(0, dtype=int), prog
            continue
        pitches = mine[:, 3] + plan.transpose
        centre = (lo + hi) / 2
        shift = 12 * round((centre - np.median(pitches)) / 12)
        yield k, mine, np.clip(pitches + shift, lo - 6, hi + 6).astype(int), prog


def _warp(synth, sfid: int, channels: list[int], sample_rate: int, semitones: float) -> None:
    """Set the bank's rate and the channels' tuning for the clip's timbre warp (:func:`.performance.warp_rate`);
    set for every performed clip (a warp of 0 restores the plain rate), since the synthesiser is reused."""
    import tinysoundfont  # the [m21] extra
    rate, tuning = performance.warp_rate(sample_rate, semitones)
    # tinysoundfont's Synth fixes the rate at sfload; the loaded bank (its public ``soundfonts``) takes another
    synth.soundfonts[sfid].set_output(tinysoundfont._tinysoundfont.OutputMode.StereoInterleaved, rate, synth.gain)
    for chan in channels:
        synth.set_tuning(chan, tuning)


def _play(synth, events: list, n_total: int) -> np.ndarray:
    """The synthesiser's stereo output for sorted events, ``(n_total, 2)`` float32."""
    out = np.zeros((n_total, 2), dtype=np.float32)
    pos = 0
    for when, kind, chan, pitch, vel in events + [(n_total, 0, -1, 0, 0)]:
        when = min(when, n_total)
        if when > pos:
            out[pos:when] = np.frombuffer(synth.generate(when - pos), dtype=np.float32).reshape(-1, 2)
            pos = when
        if chan < 0:
            break
        if kind:
            synth.noteon(chan, pitch, vel)
        else:
            synth.noteoff(chan, pitch)
    return out


def render_clip(plan: ClipPlan, midi_path: Path, total_quarters: float, sf_path: str,
                clip_seconds: float, sample_rate: int) -> np.ndarray:
    """Render one planned clip to mono float32 audio of exactly ``clip_seconds``."""
    performed = plan.performance is not None
    synth, sfid = _synth(sf_path, sample_rate, performed)
    quarters = clip_seconds * plan.bpm / 60.0
    notes = _window(_notes(midi_path), plan.start, quarters, total_quarters)
    parts = list(_parts(plan, notes))
    for k, _, _, prog in parts:
        synth.program_select(k, sfid, 0, prog)
    if performed:
        _warp(synth, sfid, [k for k, *_ in parts], sample_rate, plan.performance.get("timbre_warp", 0.0))
        events, ccs = performance.events(plan.performance, plan, [(k, m[:, 1:3], p) for k, m, p, _ in parts],
                                         sample_rate)
        for chan, cc, value in ccs:
            synth.control_change(chan, cc, value)
    else:  # as written, as m21 always rendered (the same draws, the same samples)
        rng = np.random.default_rng([plan.seed, 11])
        events = []  # (sample, order, kind, channel, pitch, velocity): note-offs before note-ons
        for k, mine, pitches, _ in parts:
            if not len(mine):
                continue
            vel = np.clip(plan.velocity + rng.integers(-10, 11, len(mine)), 1, 127)
            on = (mine[:, 1] * 60.0 / plan.bpm * sample_rate).astype(int)
            off = (mine[:, 2] * 60.0 / plan.bpm * sample_rate).astype(int)
            for a, b, p, v in zip(on, off, pitches, vel):
                events.append((a, 1, k, int(p), int(v)))
                events.append((max(b - 1, a + 1), 0, k, int(p), 0))
    events.sort()
    out = _play(synth, events, int(round(clip_seconds * sample_rate)))
    _silence(synth, sample_rate)
    if plan.production is not None:
        return production.apply(out, sample_rate, plan.production, plan.seed)
    mono = out.mean(axis=1)
    peak = float(np.abs(mono).max())
    if peak > 0:
        mono *= plan.peak / peak
    return mono


def _render_job(job):
    plan, midi_path, total, sf_path, clip_seconds, sample_rate, out_path = job
    y = render_clip(plan, Path(midi_path), total, sf_path, clip_seconds, sample_rate)
    with atomic_path(out_path, suffix=".flac") as tmp:
        sf.write(str(tmp), y, sample_rate, subtype="PCM_16", format="FLAC")
    return plan.clip_id
