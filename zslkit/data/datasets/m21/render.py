"""Rendering m21 clips with General MIDI soundfonts (tinysoundfont), in worker processes."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

from ....errors import ParamError
from ....io import atomic_path
from . import catalogue
from .plans import ClipPlan, _notes, _window


def soundfont_paths(names: Iterable[str]) -> list[Path]:
    """Resolve ``data.m21.soundfonts`` entries to files; raise naming a missing one."""
    out = []
    for name in names:
        if name == "bundled":
            import pretty_midi  # the [m21] extra; it ships the bundled bank
            out.append(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")
        elif name == "debian":
            found = [p for p in (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
                                 Path("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3"),
                                 Path("/usr/share/sounds/sf3/MuseScore_General.sf3"))
                     if p.is_file()]
            if not found:
                raise ParamError("data.m21.soundfonts: 'debian' given but none of fluid-soundfont-gm, "
                                 "fluidr3mono-gm-soundfont, musescore-general-soundfont-small is installed")
            out.extend(found)  # Debian's alternatives may point several names at one bank
        else:
            path = Path(name).expanduser()
            if not path.is_file():
                raise ParamError(f"data.m21.soundfonts: soundfont not found: {path}")
            out.append(path)
    return list(dict.fromkeys(p.resolve() for p in out))


_SYNTHS: dict = {}


def _synth(sf_path: str, sample_rate: int):
    """The process's synthesiser for a bank (compressed sf3 banks take seconds to load)."""
    key = (sf_path, sample_rate)
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


def render_clip(plan: ClipPlan, midi_path: Path, total_quarters: float, sf_path: str,
                clip_seconds: float, sample_rate: int) -> np.ndarray:
    """Render one planned clip to mono float32 audio of exactly ``clip_seconds``."""
    synth, sfid = _synth(sf_path, sample_rate)
    rng = np.random.default_rng([plan.seed, 11])
    ranges = {i.name: (i.lo, i.hi, i.program) for i in catalogue.instruments()}
    quarters = clip_seconds * plan.bpm / 60.0
    notes = _window(_notes(midi_path), plan.start, quarters, total_quarters)
    n_parts = int(notes[:, 0].max()) + 1 if len(notes) else 1
    events = []  # (sample, order, kind, channel, pitch, velocity): note-offs before note-ons
    for k, name in enumerate(plan.instruments):
        lo, hi, prog = ranges[name]
        synth.program_select(k, sfid, 0, prog)
        parts = [p for p in range(n_parts) if p % len(plan.instruments) == k] if n_parts > 1 else [0]
        if n_parts < len(plan.instruments):
            parts = list(range(n_parts))  # a melody doubled on every instrument
        mine = notes[np.isin(notes[:, 0], parts)]
        if not len(mine):
            continue
        pitches = mine[:, 3] + plan.transpose
        centre = (lo + hi) / 2
        shift = 12 * round((centre - np.median(pitches)) / 12)
        pitches = np.clip(pitches + shift, lo - 6, hi + 6).astype(int)
        vel = np.clip(plan.velocity + rng.integers(-10, 11, len(mine)), 1, 127)
        on = (mine[:, 1] * 60.0 / plan.bpm * sample_rate).astype(int)
        off = (mine[:, 2] * 60.0 / plan.bpm * sample_rate).astype(int)
        for a, b, p, v in zip(on, off, pitches, vel):
            events.append((a, 1, k, int(p), int(v)))
            events.append((max(b - 1, a + 1), 0, k, int(p), 0))
    events.sort()
    n_total = int(round(clip_seconds * sample_rate))
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
    _silence(synth, sample_rate)
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
