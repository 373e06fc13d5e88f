"""Reading the metadata files of real datasets: streamed, checked, with errors that name the place.

Every importer of a published dataset (MTAT, MTG-Jamendo, GTZAN, FMA) reads its text files through
:func:`read_rows`, collects one :class:`Record` per track, and writes the dataset with
:func:`assemble`. Conventions:

- A malformed file raises :class:`~zslkit.errors.DataError` naming the file, the line (1-based, as an
  editor shows it) and the bad value, before anything is written: an import is all or nothing.
- Audio that is missing or empty (0 bytes) is not an error: the track is left out and listed in the
  import report (:func:`existing_audio`); a track present in several formats is read once, from the
  preferred one, and the others are listed (:func:`one_file_per_track`). Audio that cannot be decoded
  is found and listed by stage 01's preprocessing, as for every source. Stage 01 shows the report and
  writes it to the dataset's ``build_report.json``.
- ``tracks.csv`` gets a ``split`` column (``train``, ``valid``, ``test`` or empty) with the dataset's
  own split where it has one; ``split.tracks: dataset`` uses it (docs/datasets.md).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from ...errors import DataError
from ..audio import EMPTY, file_issue
from . import Dataset, annotations_from_lists, write_dataset

OWN_SPLITS = ("train", "valid", "test")
DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon"}


def place(path: str | os.PathLike, line: int | None = None) -> str:
    """``file, line N`` for messages."""
    return f"{path}, line {line}" if line is not None else str(path)


def read_rows(path: str | os.PathLike, delimiter: str = "\t", header: Sequence[str] | None = None,
              n_fields: int | None = None, min_fields: int | None = None,
              what: str = "file") -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, fields)`` for every non-blank row of a delimited text file, streamed.

    Parameters
    ----------
    path : the file (``\\r\\n`` or ``\\n`` line ends; quoted fields as the csv module reads them)
    delimiter : one character
    header : the exact first row expected, or None when the file has no header row
    n_fields : every row must have exactly this many fields (None: not checked)
    min_fields : every row must have at least this many fields (variable-length rows)
    what : how messages call the file (``"MTAT annotations"``)

    Raises
    ------
    DataError
        Missing or undecodable file, a header other than ``header`` (naming the wrong delimiter when
        the first row holds a single field), or a row with the wrong number of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    sep = DELIMITER_NAMES.get(delimiter, repr(delimiter))
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        line = 0
        try:
            for fields in reader:
                line_start, line = line + 1, reader.line_num
                if header is not None and line_start == 1:
                    _check_header(path, fields, header, sep, what)
                    continue
                if not fields or fields == [""]:
                    continue
                if n_fields is not None and len(fields) != n_fields:
                    raise DataError(f"{place(path, line_start)}: {what}: expected {n_fields} "
                                    f"{sep}-separated fields, found {len(fields)}: {_clip(fields)}")
                if min_fields is not None and len(fields) < min_fields:
                    raise DataError(f"{place(path, line_start)}: {what}: expected at least {min_fields} "
                                    f"{sep}-separated fields, found {len(fields)}: {_clip(fields)}")
                yield line_start, fields
        except UnicodeDecodeError as exc:
            raise DataError(f"{place(path, line + 1)}: {what}: not UTF-8 text ({exc.reason} at byte "
                            f"{exc.start})") from None
        except csv.Error as exc:
            raise DataError(f"{place(path, line + 1)}: {what}: {exc}") from None
        if header is not None and line == 0:
            raise DataError(f"{path}: {what} is empty (expected the header {_clip(list(header))})")


def _check_header(path: Path, fields: list[str], header: Sequence[str], sep: str, what: str) -> None:
    fields = [f.lstrip("\ufeff") if i == 0 else f for i, f in enumerate(fields)]
    if fields == list(header):
        return
    if len(fields) == 1 and len(header) > 1:
        raise DataError(f"{place(path, 1)}: {what}: the header is one field {_clip(fields)}; expected "
                        f"{len(header)} {sep}-separated columns (wrong delimiter?)")
    missing = [h for h in header if h not in fields]
    extra = [f for f in fields if f not in header]
    detail = (f"missing column {missing[0]!r}" if missing else
              f"unexpected column {extra[0]!r}" if extra else "columns in another order")
    raise DataError(f"{place(path, 1)}: {what}: {detail}; expected {_clip(list(header))}, found "
                    f"{_clip(fields)}")


def _clip(value: Any, n: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class Record:
    """One track as an importer read it."""

    track_id: str
    path: str                      # audio file, absolute or relative to the dataset folder
    tags: list[str]
    split: str = ""                # the dataset's own split: train, valid, test or ""
    meta: dict[str, Any] = field(default_factory=dict)
    where: str = ""                # file and line it came from, for messages


class IdRegistry:
    """Track ids seen so far; a second occurrence is an error naming both places."""

    def __init__(self, what: str = "track id"):
        self.what, self.first = what, {}

    def add(self, key: str, where: str) -> None:
        if key in self.first:
            raise DataError(f"{where}: duplicate {self.what} {key!r} (first at {self.first[key]})")
        self.first[key] = where


def apply_split_lists(records: Mapping[str, Record], lists: Mapping[str, Sequence[tuple[str, str]]],
                      what: str = "split list") -> None:
    """Set ``Record.split`` from lists of track ids: ``{"train": [(id, where), ...], ...}``.

    A list naming an unknown track, or a track in two lists, raises :class:`DataError`.
    """
    owner: dict[str, str] = {}
    for part, items in lists.items():
        if part not in OWN_SPLITS:
            raise DataError(f"{what}: unknown part {part!r}; expected one of {OWN_SPLITS}")
        for track_id, where in items:
            if track_id not in records:
                raise DataError(f"{where}: {what} names track {track_id!r}, which is not in the dataset")
            if track_id in owner:
                raise DataError(f"{where}: {what}: track {track_id!r} is already in the {owner[track_id]} "
                                "list")
            owner[track_id] = part
            records[track_id].split = part


def audio_problem(path: str | os.PathLike) -> str | None:
    """Why an audio file is left out at import, naming it (``audio not found: <path>``,
    ``empty (0 bytes): <path>``), or None for a non-empty regular file (:func:`zslkit.data.audio.file_issue`)."""
    issue = file_issue(path)
    if issue is None:
        return None
    return f"audio {issue}: {path}" if issue != EMPTY else f"{EMPTY}: {path}"


def existing_audio(records: Sequence[Record], base: Path | None = None) -> tuple[list[Record], list[dict]]:
    """Split ``records`` into those with a usable audio file and a report of the others (missing or empty
    files, each ``{"track_id", "path", "issue"}``: :func:`audio_problem`)."""
    keep, missing = [], []
    for r in records:
        path = Path(r.path) if base is None or os.path.isabs(r.path) else base / r.path
        problem = audio_problem(path)
        if problem is None:
            keep.append(r)
        else:
            missing.append({"track_id": r.track_id, "path": str(path), "issue": problem})
    return keep, missing


def one_file_per_track(copies: Mapping[str, Sequence[Path]], preference: Sequence[str],
                       why: str) -> tuple[dict[str, Path], list[dict], list[dict]]:
    """Choose one audio file per track where a track is present in several formats.

    Parameters
    ----------
    copies : ``{track_id: [path, ...]}``, every file found for the track
    preference : file suffixes, the preferred first (``(".au", ".wav")``); a missing or empty file is
        passed over for the next
    why : the documented reason for the preference, quoted in the report (``"GTZAN's original format"``)

    Returns
    -------
    chosen : ``{track_id: path}`` for tracks with a usable file
    left_out : ``{"track_id", "path", "issue"}`` for tracks whose every copy is unusable (one entry per copy)
    merged : ``{"track_id", "path", "issue"}`` for each copy not read beside the chosen one
    """
    rank = {s: i for i, s in enumerate(preference)}
    chosen, left_out, merged = {}, [], []
    for track_id, paths in copies.items():
        ordered = sorted(paths, key=lambda p: (rank.get(p.suffix, len(rank)), p.name))
        problems = {p: audio_problem(p) for p in ordered}
        usable = [p for p in ordered if problems[p] is None]
        if not usable:
            left_out += [{"track_id": track_id, "path": str(p), "issue": problems[p]} for p in ordered]
            continue
        keep = chosen[track_id] = usable[0]
        for p in ordered:
            if p == keep:
                continue
            issue = (f"also present as {keep.name}, which is read ({why})" if problems[p] is None else
                     f"{problems[p]}; {keep.name} is read instead")
            merged.append({"track_id": track_id, "path": str(p), "issue": issue})
    return chosen, left_out, merged


def assemble(out_dir: str | os.PathLike, records: Sequence[Record], tags: pd.DataFrame,
             meta: Mapping[str, Any], source: str) -> Dataset:
    """Write the dataset folder from the records (each file atomically).

    ``tags``: columns ``tag, group`` in the order of the annotation columns; tags of a record that
    are not in it are dropped (an importer filters its vocabulary first). Records without any tag of
    the vocabulary are kept out; the caller reports them.
    """
    if not records:
        raise DataError(f"{meta.get('name', out_dir)}: no track to import ({source})")
    extra = sorted({k for r in records for k in r.meta})
    tracks = pd.DataFrame({"track_id": [r.track_id for r in records], "path": [r.path for r in records],
                           "split": [r.split for r in records],
                           **{k: [r.meta.get(k, "") for r in records] for k in extra}})
    matrix = annotations_from_lists([r.tags for r in records], tags["tag"].tolist())
    return write_dataset(out_dir, tracks, tags[["tag", "group"]], matrix, {**meta, "source": source})


def drop_untagged(records: Sequence[Record], vocabulary: set[str]) -> tuple[list[Record], list[dict]]:
    """Keep records with at least one tag of ``vocabulary`` (their tags filtered to it)."""
    keep, left = [], []
    for r in records:
        tags = [t for t in r.tags if t in vocabulary]
        if tags:
            r.tags = tags
            keep.append(r)
        else:
            left.append({"track_id": r.track_id, "issue": "no tag of the chosen vocabulary"})
    return keep, left
