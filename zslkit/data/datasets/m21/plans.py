"""Clip plans: what each m21 clip plays, drawn by a seeded RNG, and its complete tag truth.

A plan fixes the piece, the window, 1-3 General MIDI instruments, tempo, transposition,
velocities and the timbre bank. Plans are cheap and deterministic, so a rebuild renders only the
clips whose audio is missing. Tags: ``instrument``, ``family``, ``ensemble`` (solo, duet, trio),
``tempo`` (slow/fast by the clip's note-onset rate; the middle third gets no tempo tag) from the
rendering, chosen per clip independently of the piece; ``form``, ``origin``, ``composer``, ``era``,
``meter``, ``mode`` from the score's metadata. The annotation keeps each group of a clip with
probability ``coverage[group]`` (partial on purpose, like crowd tags).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import catalogue
from .corpus import MIDI_BPM


@dataclass
class ClipPlan:
    clip_id: str
    piece_id: str
    instruments: list[str]
    bpm: float
    transpose: int
    start: float            # window start in piece quarters
    velocity: int
    peak: float
    soundfont: int
    seed: int
    onset_rate: float = 0.0
    tags_full: dict[str, list[str]] = field(default_factory=dict)
    ensemble: str | None = None     # the ensemble template, None for a free draw
    heldout: bool = False           # rendered with the held-out bank (banks.choose_banks)
    performance: dict | None = None  # the drawn performance (performance.draw); None: as written
    production: dict | None = None   # the drawn production chain (production.draw); None: dry


def value_at(spec, u: float):
    """The value of a range spec of ``catalogue.yaml``'s ``performance`` or ``production`` at the uniform
    draw ``u``: ``[lo, hi]`` uniform between them (rounded to 3 decimals: what is recorded is what is
    used), a longer list one of its values, ``{choice: weight}`` one choice with these weights."""
    if isinstance(spec, Mapping):
        names = list(spec)
        w = np.cumsum([float(spec[n]) for n in names])
        return names[min(int(np.searchsorted(w / w[-1], u, side="right")), len(names) - 1)]
    if len(spec) == 2:
        return round(float(spec[0]) + u * (float(spec[1]) - float(spec[0])), 3)
    return spec[min(int(u * len(spec)), len(spec) - 1)]


def draw_value(rng: np.random.Generator, spec):
    """:func:`value_at` one uniform draw, whatever the spec (so changing one range leaves the values
    drawn for the other keys as they were)."""
    return value_at(spec, float(rng.random()))


def _notes(midi_path: Path):
    """Notes as an array of (part, start_q, end_q, pitch), sorted by start."""
    import pretty_midi  # the [m21] extra
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    rows = [(k, n.start * MIDI_BPM / 60.0, n.end * MIDI_BPM / 60.0, n.pitch)
            for k, inst in enumerate(pm.instruments) for n in inst.notes]
    arr = np.array(rows, dtype=np.float64)
    return arr[np.argsort(arr[:, 1], kind="stable")]


def _window(notes: np.ndarray, start: float, quarters: float, total: float) -> np.ndarray:
    """Notes sounding from ``start`` for ``quarters``, looping the piece as needed."""
    out, offset = [], 0.0
    while offset < start + quarters:
        shifted = notes.copy()
        shifted[:, 1:3] += offset
        out.append(shifted)
        offset += total
    allnotes = np.concatenate(out)
    keep = (allnotes[:, 1] >= start) & (allnotes[:, 1] < start + quarters)
    w = allnotes[keep]
    w[:, 1:3] -= start
    w[:, 2] = np.minimum(w[:, 2], quarters)
    return w


def draw_instruments(rng: np.random.Generator, repertory: str, p_instruments: list[float],
                     instrumentation: str, free_share: float) -> tuple[list[str], str | None]:
    """A clip's parts (an instrument may play two) and its ensemble template (None: free draw).

    ``independent``: 1-3 instruments drawn uniformly, whatever the piece (the earlier m21).
    ``ensembles``: with probability ``1 - free_share`` a real ensemble typical of the repertory
    (``catalogue.yaml``), else a free draw as ``independent``.
    """
    names = [i.name for i in catalogue.instruments()]
    if instrumentation == "ensembles":
        weights = catalogue.repertory(repertory).get("ensembles", {})
        if weights and rng.random() >= free_share:
            options = list(weights)
            p = np.array([weights[o] for o in options], dtype=float)
            name = options[int(rng.choice(len(options), p=p / p.sum()))]
            t = catalogue.templates()[name]
            if "play" in t:
                return list(t["play"]), name
            lo, hi = t["size"]
            size = int(rng.integers(lo, hi + 1))
            return [t["pool"][i] for i in rng.choice(len(t["pool"]), size=size, replace=False)], name
    n_inst = 1 + int(rng.choice(len(p_instruments), p=p_instruments))
    return [names[i] for i in rng.choice(len(names), size=n_inst, replace=False)], None


def plan_clips(pieces: list[dict], n_clips: int, clip_seconds: float, p_instruments: list[float],
               n_soundfonts: int, seed: int, sym_dir: Path, instrumentation: str = "independent",
               free_share: float = 0.25) -> list[ClipPlan]:
    """Deterministic plans for ``n_clips`` clips drawn over ``pieces`` (round-robin per repertory)."""
    by_rep: dict[str, list[dict]] = {}
    for p in pieces:
        by_rep.setdefault(p["repertory"], []).append(p)
    shares = {r: catalogue.shares()[r] for r in by_rep}
    total_share = sum(shares.values())
    counts = {r: int(round(n_clips * s / total_share)) for r, s in shares.items()}
    diff = n_clips - sum(counts.values())
    counts[max(counts, key=counts.get)] += diff
    plans: list[ClipPlan] = []
    note_cache: dict[str, np.ndarray] = {}
    for rep in sorted(by_rep):
        reps = by_rep[rep]
        for k in range(counts[rep]):
            piece = reps[k % len(reps)]
            cid = f"{rep}-{k:05d}"
            rng = np.random.default_rng([seed, sum(map(ord, rep)), k])
            chosen, template = draw_instruments(rng, rep, p_instruments, instrumentation, free_share)
            bpm = float(np.exp(rng.uniform(np.log(60), np.log(220))))
            quarters = clip_seconds * bpm / 60.0
            total = float(piece["quarters"])
            start = float(rng.uniform(0, max(total - quarters, 0.0))) if total > quarters else 0.0
            plan = ClipPlan(cid, piece["piece_id"], chosen, bpm, int(rng.integers(-3, 4)), start,
                            int(rng.integers(60, 111)), float(rng.uniform(0.3, 0.9)),
                            int(rng.integers(n_soundfonts)), int(rng.integers(2**31)), ensemble=template)
            if piece["piece_id"] not in note_cache:
                note_cache[piece["piece_id"]] = _notes(sym_dir / "midi" / f"{piece['piece_id']}.mid")
            win = _window(note_cache[piece["piece_id"]], start, quarters, total)
            plan.onset_rate = len(np.unique(np.round(win[:, 1], 3))) / clip_seconds
            plan.tags_full = clip_tags(plan, piece)
            plans.append(plan)
    return plans


def clip_tags(plan: ClipPlan, piece: Mapping[str, Any]) -> dict[str, list[str]]:
    """The complete tag truth of a clip, by group: narrow tags with the broader ones that hold for
    them (cello -> bowed, strings; irish -> celtic, folk; reel -> dance; chorale -> sacred)."""
    parts = [catalogue.instrument(name) for name in dict.fromkeys(plan.instruments)]
    slow, fast = catalogue.tempo_thresholds()
    tempo = ["slow"] if plan.onset_rate < slow else ["fast"] if plan.onset_rate > fast else []
    ensemble = [catalogue.ensembles()[len(plan.instruments)]]
    named = catalogue.templates()[plan.ensemble]["tag"] if plan.ensemble else None
    tags = {"instrument": [i.name for i in parts],
            "family": sorted({i.family for i in parts if i.family}),
            "excitation": sorted({i.excitation for i in parts if i.excitation}),
            "ensemble": ensemble + ([named] if named else []), "tempo": tempo}
    for group in ("form", "origin", "composer", "era", "meter", "mode"):
        tags[group] = [piece[group]] if piece.get(group) else []
    rep = catalogue.repertories().get(piece.get("repertory", ""), {})
    style = list(rep.get("styles", []))
    style += catalogue.form_styles().get(piece.get("form") or "", [])
    style += catalogue.origin_styles().get(piece.get("origin") or "", [])
    tags["style"] = list(dict.fromkeys(style))
    return tags


def observed_tags(plan: ClipPlan, coverage: Mapping[str, float]) -> list[tuple[str, str]]:
    """The annotated (group, tag) pairs: each group kept with probability ``coverage[group]``."""
    rng = np.random.default_rng([plan.seed, 7])
    kept = [(g, t) for g, tags in plan.tags_full.items() if tags and rng.random() < coverage.get(g, 1.0)
            for t in tags]
    if not kept:  # every clip is annotated with something: fall back to its instruments
        kept = [("instrument", t) for t in plan.tags_full["instrument"]]
    return kept
