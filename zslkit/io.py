"""Atomic file writes and small helpers for plain on-disk formats.

Every writer goes through :func:`atomic_path`: data is written to a temporary file in the target
folder, flushed, and renamed over the target, so a killed process never leaves a half-written file.
The file gets the mode a plain ``open`` would give it (0666 less the umask), not mkstemp's 0600.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp creates files 0600, renamed files get the usual mode


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` keeps an extension on the temporary name for writers that insist on one
    (``np.save`` appends ``.npy``, soundfile infers the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` atomically (the file can be memory-mapped afterwards)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def read_npz(path: str | os.PathLike, missing: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (no pickles); a missing file is a DataError saying ``missing``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {missing}")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV, atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
