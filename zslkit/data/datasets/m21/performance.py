"""How an m21 clip is played: timing and duration jitter, rubato, phrase dynamics and accents, the
sustain pedal on keyboards, each part's level and place in the stereo field, and the instrument's body
(``timbre_warp``: the bank's samples played with their spectral envelope moved, at the written pitch).

:func:`draw` fixes a clip's performance from its own seed and the ranges of ``catalogue.yaml``'s
``performance`` (``data.m21.performance_ranges`` overrides single keys); every value it draws is recorded
in ``tracks.csv`` (``perf_*``). :func:`events` turns the clip's notes into timed note events with that
performance; the per-note jitter it adds is drawn from the clip's seed too, with the recorded amounts.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .plans import draw_value, value_at

#: instruments whose parts may use the sustain pedal (tinysoundfont has none: note-offs are held back)
PEDAL_INSTRUMENTS = ("piano", "celesta", "vibraphone")
#: values drawn once per part, recorded as ``;``-joined lists
PART_KEYS = ("part_lag_ms", "part_gain_db", "pan", "pedal")
#: values drawn each from a stream of its own (key -> stream), so adding them left every other draw as it was
OWN_STREAM = {"timbre_warp": 37}


def draw(seed: int, instruments: Sequence[str], ranges: Mapping[str, Any]) -> dict[str, Any]:
    """A clip's performance (module doc): one uniform draw per clip-level key (sorted), then four per part.

    ``part_lag_ms`` and ``pan`` are spreads: each part's lag is uniform within +-spread ms, its place
    uniform within +-spread (-1 left, 1 right); ``pedal`` is the probability that a pedal instrument's
    part uses the pedal (recorded per part, 0 or 1). ``timbre_warp`` (semitones) moves the samples'
    spectral envelope (formants) up or down by that much while the notes keep their pitch
    (:func:`warp_rate`)."""
    rng = np.random.default_rng([seed, 19])
    clip = {k: draw_value(rng, ranges[k]) for k in sorted(ranges) if k not in PART_KEYS and k not in OWN_STREAM}
    for key, stream in OWN_STREAM.items():
        if key in ranges:
            clip[key] = round(float(draw_value(np.random.default_rng([seed, stream]), ranges[key])), 3)
    clip["rubato_phase"] = round(float(rng.uniform(0, 2 * math.pi)), 3)
    lag, spread, p_pedal = (draw_value(rng, ranges[k]) for k in ("part_lag_ms", "pan", "pedal"))
    parts: dict[str, list] = {k: [] for k in PART_KEYS}
    for name in instruments:
        u = rng.random(4)
        parts["part_lag_ms"].append(round(float(lag * (2 * u[0] - 1)), 3))
        parts["part_gain_db"].append(value_at(ranges["part_gain_db"], float(u[1])))
        parts["pan"].append(round(float(spread * (2 * u[2] - 1)), 3))
        parts["pedal"].append(int(name in PEDAL_INSTRUMENTS and u[3] < p_pedal))
    return {**clip, **parts}


def warp_rate(sample_rate: int, semitones: float) -> tuple[int, float]:
    """``(the rate the synthesiser is told, the tuning in semitones that keeps the pitch)`` for a warp.

    Rendered at rate ``R`` and played at ``sample_rate``, every sample's spectrum is scaled by
    ``q = sample_rate / R`` (its envelopes run ``q`` times faster); tuning every channel by
    ``-12 log2 q`` semitones puts the notes back on their written pitch, so only the body moves.
    ``R`` is the integer rate nearest ``sample_rate / 2**(semitones / 12)``; the tuning is exact for it."""
    rate = int(round(sample_rate / 2.0 ** (semitones / 12.0)))
    return rate, -12.0 * math.log2(sample_rate / rate)


def _seconds(q: np.ndarray, bpm: float, perf: Mapping[str, Any]) -> np.ndarray:
    """Window quarters to seconds under rubato: the tempo swings by up to ``rubato`` over each phrase
    and keeps its mean (``q = 0`` and whole phrases land where they would without rubato)."""
    period, r, phi = perf["phrase_quarters"], perf["rubato"], perf["rubato_phase"]
    warped = q - r * period / (2 * math.pi) * (np.sin(2 * math.pi * q / period + phi) - math.sin(phi))
    return warped * 60.0 / bpm


def _accent(q_abs: np.ndarray) -> np.ndarray:
    """1 on a beat, 1.5 on every other beat, 0 between beats (quarters of the piece)."""
    beat = np.abs(q_abs - np.round(q_abs)) < 1e-3
    return beat * (1.0 + 0.5 * (np.round(q_abs) % 2 == 0))


def events(perf: Mapping[str, Any], plan, parts: Sequence[tuple[int, np.ndarray, np.ndarray]],
           sample_rate: int) -> tuple[list[tuple[int, int, int, int, int]], list[tuple[int, int, int]]]:
    """Note events ``(sample, 1 on / 0 off, channel, pitch, velocity)`` and the control changes
    ``(channel, controller, value)`` that set each part's level (CC 7/39) and place (CC 10/42).

    ``parts``: ``(channel, notes (start_q, end_q) in window quarters, pitches)`` per instrument."""
    rng = np.random.default_rng([plan.seed, 29])
    out, ccs = [], []
    for k, notes, pitches in parts:
        gain = 10 ** (perf["part_gain_db"][k] / 60.0)  # tinysoundfont's channel volume is cubic in its value
        vol = int(round(16383 * min(gain, 1.0)))
        pan = int(round(8191.5 + 8191.5 * max(-1.0, min(1.0, perf["pan"][k]))))
        ccs += [(k, 7, vol >> 7), (k, 39, vol & 127), (k, 10, pan >> 7), (k, 42, pan & 127)]
        if not len(notes):
            continue
        n = len(notes)
        q_on, q_off = notes[:, 0], notes[:, 1]
        q_abs = q_on + plan.start
        jitter = np.clip(rng.normal(0, 1, n), -2.5, 2.5) * perf["onset_ms"] / 1000.0
        t_on = np.maximum(_seconds(q_on, plan.bpm, perf) + perf["part_lag_ms"][k] / 1000.0 + jitter, 0.0)
        written = _seconds(q_off, plan.bpm, perf) - _seconds(q_on, plan.bpm, perf)
        length = written * perf["articulation"] * np.exp(rng.normal(0, 1, n) * perf["duration_jitter"])
        t_off = t_on + np.maximum(length, 0.03)
        if perf["pedal"][k]:  # held until the pedal is lifted, just before the next change
            step = perf["pedal_quarters"]
            lift_q = np.ceil((q_off + plan.start) / step) * step - plan.start
            t_off = np.maximum(t_off, _seconds(lift_q, plan.bpm, perf) - 0.01)
        arc = np.sin(math.pi * np.mod(q_abs / perf["phrase_quarters"], 1.0))
        vel = (plan.velocity + perf["swell"] * (arc - 0.5) + perf["accent"] * _accent(q_abs)
               + rng.normal(0, 1, n) * perf["velocity_jitter"])
        vel = np.clip(np.round(vel), 1, 127).astype(int)
        on = np.round(t_on * sample_rate).astype(np.int64)
        off = np.round(t_off * sample_rate).astype(np.int64)
        keep = np.ones(n, dtype=bool)
        for p in np.unique(pitches):  # a key struck again ends its sounding note (else the new one's off would)
            idx = np.flatnonzero(pitches == p)
            idx = idx[np.argsort(on[idx], kind="stable")]
            again = on[idx[1:]] == on[idx[:-1]]
            keep[idx[:-1][again]] = False  # the same key twice at once: one note
            off[idx[:-1]] = np.where(again, off[idx[:-1]], np.minimum(off[idx[:-1]], on[idx[1:]]))
        for a, b, p, v in zip(on[keep], off[keep], pitches[keep], vel[keep]):
            out.append((int(a), 1, k, int(p), int(v)))
            out.append((int(max(b - 1, a + 1)), 0, k, int(p), 0))
    return out, ccs
