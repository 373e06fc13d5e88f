"""Importer for the generic layout: a folder of audio files and a CSV ``path,tags``.

- ``path``: audio file, relative to the CSV's folder (or absolute).
- ``tags``: tag texts separated by ``tag_sep`` (``;``); surrounding spaces are stripped, case kept.
- Further columns are kept as track metadata in ``tracks.csv``.
- An optional CSV ``tag,group`` assigns tag groups; tags it does not name get the group ``tag``.

Rows whose file does not exist or is empty (0 bytes) and rows with an empty tag list are reported and left out;
they never stop the import.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ...errors import DataError, ParamError
from ..audio import file_issue
from . import Dataset, annotations_from_lists, write_dataset

DEFAULT_GROUP = "tag"


def read_tag_csv(csv_path: str | os.PathLike, tag_sep: str = ";") -> pd.DataFrame:
    """Read and check the ``path,tags`` CSV; raise :class:`DataError` naming the file."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: CSV not found")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{csv_path}: cannot parse CSV: {exc}") from exc
    missing = {"path", "tags"} - set(table.columns)
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {sorted(missing)}; "
                        f"found {list(table.columns)}")
    dup = table.path[table.path.duplicated()]
    if len(dup):
        raise DataError(f"{csv_path}: path {dup.iloc[0]!r} is listed twice")
    return table


def import_folder(csv_path: str | os.PathLike, out_dir: str | os.PathLike, tag_sep: str = ";",
                  tag_groups: str | os.PathLike | None = None,
                  name: str | None = None) -> tuple[Dataset, pd.DataFrame]:
    """Import a folder + CSV into a zslkit dataset at ``out_dir``.

    Returns
    -------
    dataset : Dataset
    report : pd.DataFrame
        ``path, issue`` for every row left out (missing or empty (0 bytes) file, empty tag list).
    """
    csv_path = Path(csv_path)
    table = read_tag_csv(csv_path, tag_sep)
    base = csv_path.parent.resolve()
    issues, keep, tag_lists = [], [], []
    for i, row in table.iterrows():
        path = Path(row.path) if os.path.isabs(row.path) else base / row.path
        tags = [t.strip() for t in row.tags.split(tag_sep) if t.strip()]
        issue = file_issue(path)
        if issue == "not found":
            issues.append((row.path, f"file not found: {path}"))
        elif issue:
            issues.append((row.path, f"{issue}: {path}"))
        elif not tags:
            issues.append((row.path, "empty tag list"))
        else:
            keep.append(i)
            tag_lists.append(list(dict.fromkeys(tags)))
    if not keep:
        raise DataError(f"{csv_path}: no usable rows ({len(issues)} reported)")
    kept = table.loc[keep].reset_index(drop=True)
    tracks = kept.drop(columns=["tags"]).assign(
        track_id=kept.path, path=[str(base / p) if not os.path.isabs(p) else p for p in kept.path])
    tracks = tracks[["track_id", "path"] + [c for c in tracks.columns if c not in ("track_id", "path")]]
    vocabulary = sorted({t for tags in tag_lists for t in tags})
    groups = _read_groups(tag_groups) if tag_groups else {}
    tags = pd.DataFrame({"tag": vocabulary,
                         "group": [groups.get(t, DEFAULT_GROUP) for t in vocabulary]})
    tags = tags.sort_values(["group", "tag"]).reset_index(drop=True)
    meta = {"name": name or Path(out_dir).name, "source": "folder", "csv": str(csv_path.resolve()),
            "left_out": len(issues)}
    ds = write_dataset(out_dir, tracks, tags, annotations_from_lists(tag_lists, tags.tag.tolist()), meta)
    return ds, pd.DataFrame(issues, columns=["path", "issue"])


def _read_groups(path: str | os.PathLike) -> dict[str, str]:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"tag", "group"} <= set(table.columns):
        raise DataError(f"{path}: tag group CSV needs columns tag,group; found {list(table.columns)}")
    return dict(zip(table.tag.str.strip(), table.group.str.strip()))


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    if not p["csv"]:
        raise ParamError("data.folder.csv: required when data.source is 'folder'")
    ds, left_out = import_folder(p["csv"], out_dir, p["tag_sep"], p["tag_groups"], name=name)
    return ds, {"left_out": left_out.to_dict("records")}
