"""The embedded default dataset ``m21``: music21 scores rendered with General MIDI soundfonts.

Built offline, never downloaded, never committed as audio. Two cached stages:

1. **Symbolic** (shared by every m21 dataset under ``run.data_dir/_m21_symbolic``): each selected
   piece of the music21 corpus is parsed once, its notes written as a MIDI file at 120 bpm, and a
   line appended to ``manifest.jsonl`` with the real metadata (repertory, title, form or dance,
   origin, composer, era, meter, mode). Scores music21 cannot read are skipped and counted.
2. **Render**: each clip gets a *plan* drawn by a seeded RNG (piece, window, 1-3 General MIDI
   instruments, tempo, transposition, velocities, timbre bank) and is rendered with tinysoundfont
   to ``audio/<clip_id>.flac``. Plans are cheap and deterministic, so a rerun renders only the clips
   whose audio is missing.

Tags (plain English words, each in a group): ``instrument``, ``family``, ``ensemble`` (solo, duet,
trio), ``tempo`` (slow/fast by the clip's note-onset rate; the middle third gets no tempo tag) from
the rendering, chosen per clip independently of the piece; ``form``, ``origin``, ``composer``,
``era``, ``meter``, ``mode`` from the score's metadata. Annotation is partial on purpose, like
crowd tags: each clip's annotation covers each group with probability ``coverage[group]``; the
full truth stays in ``tracks.csv`` (``tags_full``). Tags with fewer than ``min_tag_count`` positive
clips are dropped.

Corpus licences: see README (Essen and Palestrina encodings are for non-commercial use).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, ParamError
from ..io import atomic_path, write_json
from . import Dataset, annotations_from_lists, write_dataset

MIDI_BPM = 120.0  # symbolic cache tempo: seconds = quarters * 0.5

# name, General MIDI program, family (None: no family tag), comfortable MIDI range
INSTRUMENTS: list[tuple[str, int, str | None, int, int]] = [
    ("piano", 0, "keyboard", 40, 88), ("harpsichord", 6, "keyboard", 41, 84),
    ("organ", 19, "keyboard", 36, 84), ("accordion", 21, "keyboard", 53, 84),
    ("celesta", 8, "keyboard", 60, 96), ("guitar", 24, "plucked", 40, 79),
    ("banjo", 105, "plucked", 48, 79), ("harp", 46, "plucked", 36, 91),
    ("sitar", 104, "plucked", 48, 77), ("koto", 107, "plucked", 55, 84),
    ("violin", 40, "strings", 55, 96), ("viola", 41, "strings", 48, 84),
    ("cello", 42, "strings", 36, 72), ("contrabass", 43, "strings", 28, 55),
    ("trumpet", 56, "brass", 55, 82), ("trombone", 57, "brass", 40, 70),
    ("tuba", 58, "brass", 28, 55), ("horn", 60, "brass", 41, 74),
    ("flute", 73, "woodwind", 60, 93), ("piccolo", 72, "woodwind", 74, 100),
    ("recorder", 74, "woodwind", 60, 86), ("clarinet", 71, "woodwind", 50, 86),
    ("oboe", 68, "woodwind", 58, 89), ("bassoon", 70, "woodwind", 34, 70),
    ("saxophone", 65, "woodwind", 49, 80), ("bagpipe", 109, "woodwind", 55, 81),
    ("harmonica", 22, "woodwind", 60, 84), ("whistle", 78, "woodwind", 62, 74),
    ("marimba", 12, "percussion", 45, 93), ("xylophone", 13, "percussion", 65, 100),
    ("vibraphone", 11, "percussion", 53, 89), ("glockenspiel", 9, "percussion", 79, 105),
    ("choir", 52, None, 48, 79),
]
ENSEMBLE = {1: "solo", 2: "duet", 3: "trio", 4: "quartet"}
#: note onsets per second below which a clip is "slow", above which it is "fast"
TEMPO_THRESHOLDS = (2.0, 4.0)

_ESSEN_GERMAN = ("altdeu", "ballad", "boehme", "erk", "fink", "kinder", "zuccal", "dva")
_FORMS = {"reel": "reel", "jig": "jig", "double jig": "jig", "slipjig": "slip jig",
          "slip jig": "slip jig", "hornpipe": "hornpipe", "air": "air", "waltz": "waltz",
          "strathspey": "strathspey", "clog": "clog", "march": "march", "polka": "polka"}

#: Share of clips per repertory in each profile (renormalised over what is available).
REPERTORY_SHARES = {
    "oneills": 0.21, "ryans": 0.16, "airds": 0.10, "essen_german": 0.14, "essen_chinese": 0.07,
    "bach": 0.15, "palestrina": 0.07, "monteverdi": 0.05, "trecento": 0.05,
}


# ----------------------------------------------------------------------------- stage 1

@dataclass
class Piece:
    piece_id: str
    repertory: str
    source: str          # corpus-relative file, '#n' for the n-th tune of an ABC file
    title: str = ""
    form: str | None = None
    origin: str | None = None
    composer: str | None = None
    era: str | None = None
    meter: str | None = None
    mode: str | None = None
    n_parts: int = 0
    quarters: float = 0.0


def corpus_dir() -> Path:
    import music21
    return Path(music21.__file__).parent / "corpus"


def _abc_tunes(path: Path) -> list[str]:
    text = path.read_text(encoding="latin-1")
    return [b for b in re.split(r"(?m)^(?=X:)", text) if b.startswith("X:")]


def candidates(repertory: str) -> list[tuple[str, dict]]:
    """Every candidate piece of a repertory as (source, fixed metadata), in a stable order."""
    root = corpus_dir()
    out: list[tuple[str, dict]] = []
    if repertory in ("oneills", "airds", "essen_german", "essen_chinese"):
        folder = {"oneills": "oneills1850", "airds": "airdsAirs"}.get(repertory, "essenFolksong")
        for path in sorted((root / folder).glob("*.abc")):
            stem = path.stem
            if repertory == "essen_german" and not stem.startswith(_ESSEN_GERMAN):
                continue
            if repertory == "essen_chinese" and not stem.startswith("han"):
                continue
            meta = {"oneills": {"origin": "irish"}, "airds": {"origin": "scottish", "form": "air"},
                    "essen_german": {"origin": "german",
                                     "form": "ballad" if stem.startswith("ballad") else None},
                    "essen_chinese": {"origin": "chinese"}}[repertory]
            for i in range(len(_abc_tunes(path))):
                out.append((f"{folder}/{path.name}#{i}", dict(meta)))
    elif repertory == "ryans":
        for path in sorted((root / "ryansMammoth").glob("*.abc")):
            m = re.search(r"(Reel|Jig|Hornpipe|Strathspey|Clog|Slipjig|Polka|Waltz|March)$", path.stem)
            form = _FORMS.get(m.group(1).lower()) if m else None
            for i in range(len(_abc_tunes(path))):
                out.append((f"ryansMammoth/{path.name}#{i}", {"form": form}))
    elif repertory == "bach":
        for path in sorted((root / "bach").glob("bwv*.mxl")):
            out.append((f"bach/{path.name}", {"form": "chorale", "composer": "bach", "era": "baroque",
                                               "origin": "german"}))
    elif repertory == "palestrina":
        for path in sorted((root / "palestrina").glob("*.krn")):
            out.append((f"palestrina/{path.name}", {"form": "mass", "composer": "palestrina",
                                                    "era": "renaissance", "origin": "italian"}))
    elif repertory == "monteverdi":
        for path in sorted((root / "monteverdi").glob("*.mxl")):
            out.append((f"monteverdi/{path.name}", {"form": "madrigal", "composer": "monteverdi",
                                                    "era": "renaissance", "origin": "italian"}))
    elif repertory == "trecento":
        for path in sorted((root / "trecento").glob("*.xml")):
            out.append((f"trecento/{path.name}", {"era": "medieval", "origin": "italian"}))
    else:
        raise ParamError(f"data.m21.pieces: unknown repertory {repertory!r}; "
                         f"known: {', '.join(REPERTORY_SHARES)}")
    return out


def _piece_id(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", source).strip("-")


def _meter(numerator: int | None) -> str | None:
    if numerator is None:
        return None
    return {2: "duple", 4: "duple", 6: "duple", 12: "duple", 3: "triple", 9: "triple"}.get(numerator)


def _abc_mode(block: str) -> str | None:
    m = re.search(r"(?m)^K:\s*([A-Ga-g][#b]?)\s*([A-Za-z]*)", block)
    if not m:
        return None
    mode = m.group(2).lower()[:3]
    if mode in ("m", "min", "dor", "phr", "aeo", "loc"):
        return "minor"
    return "major"


def parse_piece(source: str, fixed: Mapping[str, Any], midi_dir: Path) -> Piece:
    """Parse one corpus piece, write its MIDI (120 bpm) to ``midi_dir``, return its metadata."""
    import music21
    import pretty_midi

    root = corpus_dir()
    repertory_file, _, index = source.partition("#")
    path = root / repertory_file
    if index:
        block = _abc_tunes(path)[int(index)]
        score = music21.converter.parse(block, format="abc")
        title = (re.search(r"(?m)^T:\s*(.*)$", block) or [None, ""])[1].strip()
        rhythm = re.search(r"(?m)^R:\s*(.*)$", block)
        form = fixed.get("form")
        if form is None and rhythm and "oneills" in repertory_file:
            form = _FORMS.get(rhythm.group(1).strip().lower())
        mode = _abc_mode(block)
    else:
        score = music21.converter.parse(path)
        title = (score.metadata.title if score.metadata and score.metadata.title else path.stem)
        form = fixed.get("form")
        mode = None
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    meter = _meter(ts.numerator if ts is not None else None)
    midi = pretty_midi.PrettyMIDI(initial_tempo=MIDI_BPM)
    sec = 60.0 / MIDI_BPM
    end = 0.0
    for p in parts:
        inst = pretty_midi.Instrument(program=0)
        for n in p.flatten().notes:
            start, dur = float(n.offset), float(n.quarterLength)
            if dur <= 0:
                continue
            for pitch in n.pitches:
                inst.notes.append(pretty_midi.Note(80, int(pitch.midi), start * sec, (start + dur) * sec))
            end = max(end, start + dur)
        if inst.notes:
            midi.instruments.append(inst)
    if not midi.instruments or end < 2:
        raise DataError(f"{source}: no playable notes")
    if mode is None:
        mode = "minor" if score.analyze("key").mode == "minor" else "major"
    piece = Piece(_piece_id(source), "", source, title=title, form=form, origin=fixed.get("origin"),
                  composer=fixed.get("composer"), era=fixed.get("era"), meter=meter, mode=mode,
                  n_parts=len(midi.instruments), quarters=end)
    with atomic_path(midi_dir / f"{piece.piece_id}.mid", suffix=".mid") as tmp:
        midi.write(str(tmp))
    return piece


def _parse_job(job):
    repertory, source, fixed, midi_dir = job
    try:
        piece = parse_piece(source, fixed, Path(midi_dir))
        piece.repertory = repertory
        return {"ok": True, **asdict(piece)}
    except Exception as exc:  # music21 raises many types on odd scores: count and skip
        return {"ok": False, "piece_id": _piece_id(source), "repertory": repertory,
                "source": source, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def read_manifest(sym_dir: Path) -> dict[str, dict]:
    """Entries of ``manifest.jsonl`` by source (a torn last line from a killed run is ignored)."""
    path = sym_dir / "manifest.jsonl"
    out = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[entry["source"]] = entry
    return out


def build_symbolic(selection: Mapping[str, list[tuple[str, dict]]], sym_dir: Path,
                   workers: int = 0, progress: bool = True) -> dict[str, dict]:
    """Parse every selected piece not yet in the manifest; return the manifest by source."""
    from multiprocessing import get_context
    from tqdm.auto import tqdm

    midi_dir = sym_dir / "midi"
    midi_dir.mkdir(parents=True, exist_ok=True)
    done = read_manifest(sym_dir)
    jobs = [(rep, src, fixed, str(midi_dir)) for rep, items in selection.items()
            for src, fixed in items if src not in done]
    if jobs:
        workers = workers or os.cpu_count() or 1
        with open(sym_dir / "manifest.jsonl", "a", encoding="utf-8") as fh, \
                get_context("fork").Pool(workers) as pool:
            for entry in tqdm(pool.imap_unordered(_parse_job, jobs, chunksize=4), total=len(jobs),
                              desc="scores", unit="piece", disable=not progress):
                fh.write(json.dumps(entry) + "\n")
                fh.flush()
                done[entry["source"]] = entry
    return done


# ----------------------------------------------------------------------------- stage 2

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


def _notes(midi_path: Path):
    """Notes as an array of (part, start_q, end_q, pitch), sorted by start."""
    import pretty_midi
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


def plan_clips(pieces: list[dict], n_clips: int, clip_seconds: float, p_instruments: list[float],
               n_soundfonts: int, seed: int, sym_dir: Path) -> list[ClipPlan]:
    """Deterministic plans for ``n_clips`` clips drawn over ``pieces`` (round-robin per repertory)."""
    by_rep: dict[str, list[dict]] = {}
    for p in pieces:
        by_rep.setdefault(p["repertory"], []).append(p)
    shares = {r: REPERTORY_SHARES[r] for r in by_rep}
    total_share = sum(shares.values())
    counts = {r: int(round(n_clips * s / total_share)) for r, s in shares.items()}
    diff = n_clips - sum(counts.values())
    counts[max(counts, key=counts.get)] += diff
    plans: list[ClipPlan] = []
    names = [i[0] for i in INSTRUMENTS]
    note_cache: dict[str, np.ndarray] = {}
    for rep in sorted(by_rep):
        reps = by_rep[rep]
        for k in range(counts[rep]):
            piece = reps[k % len(reps)]
            cid = f"{rep}-{k:05d}"
            rng = np.random.default_rng([seed, sum(map(ord, rep)), k])
            n_inst = 1 + int(rng.choice(len(p_instruments), p=p_instruments))
            chosen = [names[i] for i in rng.choice(len(names), size=n_inst, replace=False)]
            bpm = float(np.exp(rng.uniform(np.log(60), np.log(220))))
            quarters = clip_seconds * bpm / 60.0
            total = float(piece["quarters"])
            start = float(rng.uniform(0, max(total - quarters, 0.0))) if total > quarters else 0.0
            plan = ClipPlan(cid, piece["piece_id"], chosen, bpm, int(rng.integers(-3, 4)), start,
                            int(rng.integers(60, 111)), float(rng.uniform(0.3, 0.9)),
                            int(rng.integers(n_soundfonts)), int(rng.integers(2**31)))
            if piece["piece_id"] not in note_cache:
                note_cache[piece["piece_id"]] = _notes(sym_dir / "midi" / f"{piece['piece_id']}.mid")
            win = _window(note_cache[piece["piece_id"]], start, quarters, total)
            plan.onset_rate = len(np.unique(np.round(win[:, 1], 3))) / clip_seconds
            plan.tags_full = clip_tags(plan, piece)
            plans.append(plan)
    return plans


def clip_tags(plan: ClipPlan, piece: Mapping[str, Any]) -> dict[str, list[str]]:
    """The complete tag truth of a clip, by group."""
    family = {name: fam for name, _, fam, _, _ in INSTRUMENTS}
    slow, fast = TEMPO_THRESHOLDS
    tempo = ["slow"] if plan.onset_rate < slow else ["fast"] if plan.onset_rate > fast else []
    tags = {"instrument": list(plan.instruments),
            "family": sorted({family[i] for i in plan.instruments if family[i]}),
            "ensemble": [ENSEMBLE[len(plan.instruments)]], "tempo": tempo}
    for group in ("form", "origin", "composer", "era", "meter", "mode"):
        tags[group] = [piece[group]] if piece.get(group) else []
    return tags


def observed_tags(plan: ClipPlan, coverage: Mapping[str, float]) -> list[tuple[str, str]]:
    """The annotated (group, tag) pairs: each group kept with probability ``coverage[group]``."""
    rng = np.random.default_rng([plan.seed, 7])
    kept = [(g, t) for g, tags in plan.tags_full.items() if tags and rng.random() < coverage.get(g, 1.0)
            for t in tags]
    if not kept:  # every clip is annotated with something: fall back to its instruments
        kept = [("instrument", t) for t in plan.tags_full["instrument"]]
    return kept


# -- rendering (runs in worker processes) --------------------------------------------------

def soundfont_paths(names: Iterable[str]) -> list[Path]:
    """Resolve ``data.m21.soundfonts`` entries to files; raise naming a missing one."""
    import pretty_midi
    out = []
    for name in names:
        if name == "bundled":
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
    import tinysoundfont
    key = (sf_path, sample_rate)
    if key not in _SYNTHS:
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
    ranges = {name: (lo, hi, prog) for name, prog, _, lo, hi in INSTRUMENTS}
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
    import soundfile as sf
    plan, midi_path, total, sf_path, clip_seconds, sample_rate, out_path = job
    y = render_clip(plan, Path(midi_path), total, sf_path, clip_seconds, sample_rate)
    with atomic_path(out_path, suffix=".flac") as tmp:
        sf.write(str(tmp), y, sample_rate, subtype="PCM_16", format="FLAC")
    return plan.clip_id


# ----------------------------------------------------------------------------- build

def select_pieces(caps: Mapping[str, int], seed: int) -> dict[str, list[tuple[str, dict]]]:
    """Seeded choice of ``caps[r]`` candidate pieces per repertory (plus spares for failures)."""
    out = {}
    for rep, cap in caps.items():
        items = candidates(rep)
        rng = np.random.default_rng([seed, sum(map(ord, rep))])
        order = rng.permutation(len(items))
        out[rep] = [items[i] for i in order[: int(cap * 1.15) + 2]] if cap else []
    return out


def default_caps(n_clips: int) -> dict[str, int]:
    """Pieces per repertory: one clip per piece where the corpus allows."""
    return {r: max(4, int(round(n_clips * s))) for r, s in REPERTORY_SHARES.items()}


def build(out_dir: str | os.PathLike, sym_dir: str | os.PathLike, params: Mapping[str, Any],
          seed: int = 0, workers: int = 0, progress: bool = True) -> tuple[Dataset, dict]:
    """Build (or resume) an m21 dataset from the resolved ``data.m21`` parameters.

    Returns the dataset and a build report (pieces parsed, skipped with reasons, clips, tags).
    """
    from multiprocessing import get_context
    from tqdm.auto import tqdm

    out_dir, sym_dir = Path(out_dir), Path(sym_dir)
    caps = {**default_caps(params["n_clips"]), **params["pieces"]}
    unknown = set(caps) - set(REPERTORY_SHARES)
    if unknown:
        raise ParamError(f"data.m21.pieces: unknown repertory {sorted(unknown)[0]!r}; "
                         f"known: {', '.join(REPERTORY_SHARES)}")
    selection = select_pieces(caps, seed)
    manifest = build_symbolic(selection, sym_dir, workers, progress)
    pieces, failed = [], []
    for rep, items in selection.items():
        ok = [manifest[s] for s, _ in items if manifest.get(s, {}).get("ok")]
        failed += [manifest[s] for s, _ in items if s in manifest and not manifest[s]["ok"]]
        pieces += ok[: caps[rep]]
    if not pieces:
        raise DataError("m21: no score could be parsed")
    sfs = [str(p) for p in soundfont_paths(params["soundfonts"])]
    plans = plan_clips(pieces, params["n_clips"], params["clip_seconds"],
                       params["instruments_per_clip"], len(sfs), seed, sym_dir)
    by_id = {p["piece_id"]: p for p in pieces}
    jobs = []
    for plan in plans:
        out_path = out_dir / "audio" / f"{plan.clip_id}.flac"
        if not out_path.is_file():
            jobs.append((plan, str(sym_dir / "midi" / f"{plan.piece_id}.mid"),
                         float(by_id[plan.piece_id]["quarters"]), sfs[plan.soundfont],
                         params["clip_seconds"], params["sample_rate"], out_path))
    if jobs:
        with get_context("fork").Pool(workers or os.cpu_count() or 1) as pool:
            for _ in tqdm(pool.imap_unordered(_render_job, jobs, chunksize=8), total=len(jobs),
                          desc="render", unit="clip", disable=not progress):
                pass
    ds, report = _write(out_dir, plans, by_id, params, sfs, seed)
    report.update({"pieces_selected": len(pieces), "pieces_failed": len(failed),
                   "failures": [{"source": f["source"], "error": f["error"]} for f in failed],
                   "clips_rendered_now": len(jobs)})
    write_json(out_dir / "build_report.json", report)
    return ds, report


def _write(out_dir: Path, plans: list[ClipPlan], pieces: Mapping[str, dict], params, sfs, seed):
    observed = [observed_tags(p, params["coverage"]) for p in plans]
    group_of = {t: g for obs in observed for g, t in obs}
    counts = pd.Series([t for obs in observed for _, t in obs]).value_counts()
    kept_tags = sorted((t for t in counts.index if counts[t] >= params["min_tag_count"]),
                       key=lambda t: (group_of[t], t))
    dropped = {t: int(counts[t]) for t in counts.index if counts[t] < params["min_tag_count"]}
    kept = set(kept_tags)
    tag_lists = [[t for _, t in obs if t in kept] for obs in observed]
    keep = [i for i, tl in enumerate(tag_lists) if tl]
    rows = []
    for i in keep:
        plan, piece = plans[i], pieces[plans[i].piece_id]
        rows.append({"track_id": plan.clip_id, "path": f"audio/{plan.clip_id}.flac",
                     "piece_id": plan.piece_id, "repertory": piece["repertory"],
                     "title": piece["title"], "source": piece["source"],
                     "instruments": ";".join(plan.instruments), "bpm": round(plan.bpm, 1),
                     "onset_rate": round(plan.onset_rate, 2), "transpose": plan.transpose,
                     "soundfont": Path(sfs[plan.soundfont]).name,
                     "tags_full": ";".join(t for g in plan.tags_full.values() for t in g)})
    tags = pd.DataFrame({"tag": kept_tags, "group": [group_of[t] for t in kept_tags]})
    meta = {"name": out_dir.name, "source": "m21", "seed": seed, "params": dict(params),
            "soundfonts": [Path(s).name for s in sfs],
            "licence": "music21 corpus encodings; Essen and Palestrina: non-commercial use only"}
    ds = write_dataset(out_dir, pd.DataFrame(rows), tags,
                       annotations_from_lists([tag_lists[i] for i in keep], kept_tags), meta)
    report = {"clips_planned": len(plans), "clips_without_tags": len(plans) - len(keep),
              "tags_kept": len(kept_tags), "tags_dropped_rare": dropped}
    return ds, report
