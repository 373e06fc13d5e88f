"""The symbolic cache of m21: corpus pieces parsed once into MIDI files and a manifest.

Each selected piece of the music21 corpus is parsed once, its notes written as a MIDI file at
120 bpm to ``<sym_dir>/midi/``, and a line appended to ``manifest.jsonl`` with the real metadata
(repertory, title, form or dance, origin, composer, era, meter, mode). Scores music21 cannot read
are skipped and counted. The cache is shared by every m21 dataset under ``run.data_dir``.

Two things music21 does on a parse are left out, as a MIDI file needs neither (the notes, offsets and
durations are the same; tests compare the MIDI bytes): beaming every ABC part (a third of an ABC tune's
parse), and its own pickle cache of parsed files in its scratch folder (this manifest is the cache; writing
those pickles costs a quarter of a file's first parse and leaves hundreds of files in the temp folder).
"""
from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Mapping

from tqdm.auto import tqdm

from ....errors import DataError
from ....io import atomic_path
from . import catalogue

MIDI_BPM = 120.0  # symbolic cache tempo: seconds = quarters * 0.5


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
    import music21  # heavy (seconds): imported where a score is read
    return Path(music21.__file__).parent / "corpus"


def _abc_tunes(path: Path) -> list[str]:
    text = path.read_text(encoding="latin-1")
    return [b for b in re.split(r"(?m)^(?=X:)", text) if b.startswith("X:")]


def candidates(name: str) -> list[tuple[str, dict]]:
    """Every candidate piece of a repertory as (source, fixed metadata), in a stable order."""
    rep = catalogue.repertory(name)
    root = corpus_dir()
    prefixes = tuple(rep.get("prefixes", ()))
    suffixes = rep.get("form_suffixes", ())
    out: list[tuple[str, dict]] = []
    for path in sorted((root / rep["folder"]).glob(rep["glob"])):
        stem = path.stem
        if prefixes and not stem.startswith(prefixes):
            continue
        meta = dict(rep.get("meta", {}))
        if rep.get("form_from") == "rhythm":
            meta["form_from"] = "rhythm"  # read by parse_piece from the ABC R: field
        elif rep.get("form_from") == "prefix":
            meta["form"] = next((f for p, f in rep["prefix_forms"].items() if stem.startswith(p)), None)
        elif rep.get("form_from") == "file_suffix":
            m = re.search(f"({'|'.join(suffixes)})$", stem) if suffixes else None
            meta["form"] = catalogue.forms().get(m.group(1).lower()) if m else None
        if path.suffix == ".abc":
            out += [(f"{rep['folder']}/{path.name}#{i}", dict(meta)) for i in range(len(_abc_tunes(path)))]
        else:
            out.append((f"{rep['folder']}/{path.name}", meta))
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


@contextmanager
def _no_beaming():
    """music21's ABC reader beams each part it reads; beams are notation, not notes, so within this block
    ``Stream.makeBeams`` does nothing (restored on leaving; the parse runs in a worker process)."""
    from music21 import stream
    make_beams = stream.Stream.makeBeams
    stream.Stream.makeBeams = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        stream.Stream.makeBeams = make_beams


def parse_piece(source: str, fixed: Mapping[str, Any], midi_dir: Path, lean: bool = True) -> Piece:
    """Parse one corpus piece, write its MIDI (120 bpm) to ``midi_dir``, return its metadata.

    ``lean=False`` parses as music21 does by default (beams, its pickle cache): the benchmark's baseline."""
    import music21  # the [m21] extra: imported where a score is read
    import pretty_midi

    root = corpus_dir()
    repertory_file, _, index = source.partition("#")
    path = root / repertory_file
    if index:
        block = _abc_tunes(path)[int(index)]
        with _no_beaming() if lean else nullcontext():
            score = music21.converter.parse(block, format="abc")
        title = (re.search(r"(?m)^T:\s*(.*)$", block) or [None, ""])[1].strip()
        rhythm = re.search(r"(?m)^R:\s*(.*)$", block)
        form = fixed.get("form")
        if form is None and rhythm and fixed.get("form_from") == "rhythm":
            form = catalogue.forms().get(rhythm.group(1).strip().lower())
        mode = _abc_mode(block)
    else:
        score = music21.converter.parse(path, forceSource=lean)  # lean: no pickle in music21's scratch folder
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
