"""Tag split (seen X / unseen Y) and the paper's A/B/C track split.

Conventions (the paper's protocol; docs/evaluation.md)
------------------------------------------------------
- Tag split: ``floor(ratio * n_tags)`` tags are seen (X), the rest unseen (Y). With
  ``stratify='group'`` the unseen tags are allotted to tag groups in proportion to their size by
  largest remainder (Hamilton), then drawn within each group, so no group is held out whole.
- Track split, on tracks with at least one tag:
  A = at least one X positive and no Y positive; B = at least one X and at least one Y positive;
  C = no X positive. As in the original, a track positive for *every* X tag is dropped from all
  three (it has no negative to train with).
- Held-out tracks: a dataset may mark tracks recorded under a condition no training track may have
  (``tracks.csv`` column ``heldout``, 0/1; m21 marks the clips rendered with its held-out General-MIDI
  bank, named by ``dataset.json`` ``heldout_bank``). They stay in A, B and C (B and C are evaluated
  whole) but go to no train or valid part: to ``<S>_test``, as a dataset's own test tracks do.
  Without the column every split is exactly what it was before the column existed.
"""
from __future__ import annotations

import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Container, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, ParamError
from ..io import atomic_path, read_json, write_json
from ..layout import DatasetLayout
from .pickles import safe_load_pickle


def split_tags(tags: pd.DataFrame, ratio: float = 0.8, seed: int = 0,
               stratify: str = "group") -> tuple[list[str], list[str]]:
    """Seeded split of a dataset's tags into seen (X) and unseen (Y).

    Parameters
    ----------
    tags : pd.DataFrame [shape=(n_tags, ...)]
        Columns ``tag`` (text) and ``group``.
    ratio : float
        Share of seen tags, in (0, 1): ``floor(ratio * n_tags)`` tags are seen.
    seed : int
    stratify : str
        ``"group"`` (unseen tags allotted to groups by largest remainder, then drawn within each) or
        ``"none"``.

    Returns
    -------
    seen, unseen : list of str
        Tag texts, both in the order of ``tags``.
    """
    if not 0 < ratio < 1:
        raise ParamError(f"split.ratio: {ratio!r} must be between 0 and 1")
    n = len(tags)
    n_unseen = n - math.floor(ratio * n)
    rng = np.random.default_rng(seed)
    texts = tags["tag"].tolist()
    if stratify == "none":
        unseen = set(rng.choice(texts, size=n_unseen, replace=False).tolist())
    elif stratify == "group":
        groups = tags.groupby("group", sort=True)["tag"].apply(list)
        quota = {g: n_unseen * len(ts) / n for g, ts in groups.items()}
        alloc = {g: math.floor(q) for g, q in quota.items()}
        rest = n_unseen - sum(alloc.values())
        tiebreak = rng.random(len(quota))
        by_remainder = sorted(quota, key=lambda g: (-(quota[g] - alloc[g]),
                                                    tiebreak[list(quota).index(g)]))
        for g in by_remainder[:rest]:
            alloc[g] += 1
        unseen = set()
        for g, ts in groups.items():
            unseen.update(rng.choice(ts, size=alloc[g], replace=False).tolist())
    else:
        raise ParamError(f"split.stratify: {stratify!r} is not one of ['group', 'none']")
    return [t for t in texts if t not in unseen], [t for t in texts if t in unseen]


def tag_split_from_params(tags: pd.DataFrame, split: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(seen, unseen)`` tag texts from the resolved ``split`` section: its explicit ``unseen`` list (each
    must be a tag of ``tags``, else :class:`~zslkit.errors.ParamError`), or :func:`split_tags`."""
    if split.get("unseen") is None:
        return split_tags(tags, split["ratio"], split["seed"], split["stratify"])
    known = set(tags.tag)
    for t in split["unseen"]:
        if t not in known:
            raise ParamError(f"split.unseen: tag {t!r} is not in the dataset")
    chosen = set(split["unseen"])
    return [t for t in tags.tag if t not in chosen], [t for t in tags.tag if t in chosen]


def track_subsets(labels: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of the A, B and C tracks.

    Parameters
    ----------
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    seen : np.ndarray [shape=(n_tags,), dtype=bool]
        True for X tags.

    Returns
    -------
    dict of str -> np.ndarray [shape=(n,), dtype=int]
        Row indices of ``A``, ``B``, ``C``, and of the tracks left out: ``untagged`` (no tag) and
        ``all_seen`` (positive for every X tag).
    """
    labels = np.asarray(labels, dtype=bool)
    seen = np.asarray(seen, dtype=bool)
    n_x = labels[:, seen].sum(axis=1)
    n_y = labels[:, ~seen].sum(axis=1)
    tagged = (n_x + n_y) > 0
    all_seen = (n_x == seen.sum()) & (seen.sum() > 0)
    ab = (n_x > 0) & ~all_seen
    return {"A": np.flatnonzero(ab & (n_y == 0)), "B": np.flatnonzero(ab & (n_y > 0)),
            "C": np.flatnonzero(tagged & (n_x == 0)), "untagged": np.flatnonzero(~tagged),
            "all_seen": np.flatnonzero(all_seen)}


def subset_shares(labels: np.ndarray, tag_texts: Sequence[str], unseen: Sequence[str]) -> dict:
    """Counts and shares of A, B, C among the tagged tracks for one tag split.

    Parameters
    ----------
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    tag_texts : sequence of str [len=n_tags]
    unseen : sequence of str
        The Y tags.

    Returns
    -------
    dict
        ``A, B, C`` (counts), ``share_A, share_B, share_C`` (of A+B+C) and ``left_out``.
    """
    unseen = set(unseen)
    seen = np.array([t not in unseen for t in tag_texts])
    sub = track_subsets(labels, seen)
    total = sum(len(sub[k]) for k in "ABC")
    return {**{k: len(sub[k]) for k in "ABC"},
            **{f"share_{k}": len(sub[k]) / total if total else 0.0 for k in "ABC"},
            "left_out": len(sub["untagged"]) + len(sub["all_seen"])}


# ----------------------------------------------------------------------------- track split

SUBSETS = ("A", "B", "AB")
HELDOUT = "heldout"  # the tracks.csv column of held-out tracks (module doc)


def heldout_mask(tracks: pd.DataFrame) -> np.ndarray | None:
    """The held-out tracks of a dataset, or None when ``tracks.csv`` has no ``heldout`` column.

    Parameters
    ----------
    tracks : pd.DataFrame [shape=(n_tracks, ...)]
        ``tracks.csv``.

    Returns
    -------
    np.ndarray [shape=(n_tracks,), dtype=bool] or None
        True where ``heldout`` is 1.

    Raises
    ------
    DataError
        A value other than 0 or 1 (an empty cell counts as 0), naming the track.
    """
    if HELDOUT not in tracks.columns:
        return None
    raw = tracks[HELDOUT]
    values = pd.to_numeric(raw.replace({"": 0, True: 1, False: 0}), errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"tracks.csv: column {HELDOUT!r} must be 0 or 1; track {tracks.track_id.iloc[i]!r} "
                        f"has {str(raw.iloc[i])!r}")
    return values.to_numpy() == 1


def split_tracks(labels: np.ndarray, track_ids: Sequence[str], seen: np.ndarray, seed: int = 0,
                 train_ratio: float = 0.9, heldout: np.ndarray | None = None) -> dict[str, list[str]]:
    """The A/B/C split with train/valid parts, as track ids.

    A, B and A+B are each shuffled independently (seeded) and cut at ``floor(train_ratio * n)``,
    as the original code does; so ``AB_valid`` is not ``A_valid + B_valid``. C is never split.
    Held-out tracks (``heldout``) are left out of the shuffle and go to ``<S>_test``; with none
    marked, the parts are those of a split without the column.

    Parameters
    ----------
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    track_ids : sequence of str [len=n_tracks]
    seen : np.ndarray [shape=(n_tags,), dtype=bool]
    seed : int
        ``split.track_seed``.
    train_ratio : float
    heldout : np.ndarray [shape=(n_tracks,), dtype=bool], optional
        Held-out tracks (:func:`heldout_mask`): in no train or valid part.

    Returns
    -------
    dict of str -> list of str
        Keys ``A, B, C, A_train, A_valid, B_train, B_valid, AB_train, AB_valid, untagged, all_seen``
        (track ids, in dataset order for A, B, C); with ``heldout``, also ``A_test, B_test, AB_test``
        (the held-out tracks of each, in dataset order) and ``heldout`` (every held-out track).
    """
    ids = np.asarray(track_ids, dtype=object)
    sub = track_subsets(labels, seen)
    out = {k: ids[sub[k]].tolist() for k in ("A", "B", "C", "untagged", "all_seen")}
    members = {"A": sub["A"], "B": sub["B"], "AB": np.sort(np.concatenate([sub["A"], sub["B"]]))}
    held = np.zeros(len(ids), dtype=bool) if heldout is None else np.asarray(heldout, dtype=bool)
    for k, name in enumerate(SUBSETS):
        order = np.random.default_rng([seed, k]).permutation(members[name][~held[members[name]]])
        cut = math.floor(train_ratio * len(order))
        out[f"{name}_train"] = ids[order[:cut]].tolist()
        out[f"{name}_valid"] = ids[order[cut:]].tolist()
        if heldout is not None:
            out[f"{name}_test"] = ids[members[name][held[members[name]]]].tolist()
    if heldout is not None:
        out[HELDOUT] = ids[held].tolist()
    return out


def split_tracks_by_dataset(labels: np.ndarray, track_ids: Sequence[str], seen: np.ndarray,
                            own: Sequence[str], heldout: np.ndarray | None = None) -> dict[str, list[str]]:
    """The A/B/C split with the dataset's own split as the train/valid parts.

    ``own[i]`` is track i's part in the dataset (``train``, ``valid``, ``test`` or ``""``). Within A, B
    and A+B, the dataset's train tracks train and its valid tracks validate; its test tracks (and
    tracks in no part) go to ``<S>_test`` and are used by neither, and so do held-out tracks
    (``heldout``), whatever their part. B and C are evaluated whole, as the paper does: the zero-shot
    test sets are defined by the tag split, not by the dataset's split.

    Parameters
    ----------
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    track_ids : sequence of str [len=n_tracks]
    seen : np.ndarray [shape=(n_tags,), dtype=bool]
    own : sequence of str [len=n_tracks]
    heldout : np.ndarray [shape=(n_tracks,), dtype=bool], optional
        Held-out tracks (:func:`heldout_mask`).

    Returns
    -------
    dict of str -> list of str
        The keys of :func:`split_tracks`, plus ``A_test``, ``B_test``, ``AB_test``; with ``heldout``,
        also ``heldout`` (every held-out track).
    """
    ids = np.asarray(track_ids, dtype=object)
    own = np.asarray(own, dtype=object)
    sub = track_subsets(labels, seen)
    out = {k: ids[sub[k]].tolist() for k in ("A", "B", "C", "untagged", "all_seen")}
    members = {"A": sub["A"], "B": sub["B"], "AB": np.sort(np.concatenate([sub["A"], sub["B"]]))}
    held = np.zeros(len(ids), dtype=bool) if heldout is None else np.asarray(heldout, dtype=bool)
    for name in SUBSETS:
        part, h = own[members[name]], held[members[name]]
        train, valid = (part == "train") & ~h, (part == "valid") & ~h
        out[f"{name}_train"] = ids[members[name][train]].tolist()
        out[f"{name}_valid"] = ids[members[name][valid]].tolist()
        out[f"{name}_test"] = ids[members[name][~train & ~valid]].tolist()
    if heldout is not None:
        out[HELDOUT] = ids[held].tolist()
    return out


def check_track_split(labels: np.ndarray, track_ids: Sequence[str], seen: np.ndarray,
                      split: Mapping[str, list[str]], heldout: np.ndarray | None = None) -> list[str]:
    """Problems with a track split (the original's sanity pass, plus coverage).

    Parameters
    ----------
    labels : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
    track_ids : sequence of str [len=n_tracks]
    seen : np.ndarray [shape=(n_tags,), dtype=bool]
    split : mapping of str -> list of str
        As :func:`split_tracks` returns.
    heldout : np.ndarray [shape=(n_tracks,), dtype=bool], optional
        Held-out tracks (:func:`heldout_mask`); default: the split's own ``heldout`` list, if any.

    Returns
    -------
    list of str
        One sentence per problem (a track breaking the definition of A, B or C, parts that do not
        partition their subset, a held-out track in a train or valid part); empty when the split is sound.
    """
    row = {t: i for i, t in enumerate(track_ids)}
    labels = np.asarray(labels, dtype=bool)
    problems = []
    rules = {"A": lambda x, y: x & ~y, "B": lambda x, y: x & y, "C": lambda x, y: ~x & y}
    for name, rule in rules.items():
        missing = [t for t in split[name] if t not in row]
        if missing:
            problems.append(f"{name}: {len(missing)} unknown track id(s), e.g. {missing[0]!r}")
            continue
        rows = labels[[row[t] for t in split[name]]].reshape(-1, len(seen))
        bad = int((~rule(rows[:, seen].any(axis=1), rows[:, ~seen].any(axis=1))).sum())
        if bad:
            problems.append(f"{name}: {bad} track(s) break the definition of {name}")
    for name in SUBSETS:
        parts = split[f"{name}_train"] + split[f"{name}_valid"] + split.get(f"{name}_test", [])
        whole = split["A"] + split["B"] if name == "AB" else split[name]
        if sorted(parts) != sorted(whole) or len(set(parts)) != len(parts):
            problems.append(f"{name}_train, {name}_valid (and {name}_test) do not partition {name}")
    held = (set(np.asarray(track_ids, dtype=object)[np.asarray(heldout, dtype=bool)]) if heldout is not None
            else set(split.get(HELDOUT, [])))
    for name in SUBSETS:
        for part in ("train", "valid"):
            leak = [t for t in split[f"{name}_{part}"] if t in held]
            if leak:
                problems.append(f"{name}_{part}: {len(leak)} held-out track(s) (tracks.csv {HELDOUT} = 1), "
                                f"e.g. {leak[0]!r}; held-out tracks train and validate nothing")
    return problems


def split_warnings(labels: np.ndarray, tag_texts: Sequence[str], seen: np.ndarray,
                   split: Mapping[str, list[str]], condition: str | None = None) -> list[str]:
    """Conditions a researcher must know about: empty subsets, unseen tags with no positive, tracks
    left out, held-out tracks kept out of training (``condition`` says what holds them out, e.g. "rendered
    with the held-out bank X"). Arguments as :func:`check_track_split`, with ``tag_texts`` [len=n_tags];
    returns sentences."""
    out = [f"subset {k} is empty" for k in ("A", "B", "C") if not split[k]]
    counts = np.asarray(labels, dtype=bool).sum(axis=0)
    dead = [t for t, c, s in zip(tag_texts, counts, seen) if not s and c == 0]
    if dead:
        out.append(f"{len(dead)} unseen tag(s) have no positive track: {', '.join(dead[:10])}")
    if split["untagged"]:
        out.append(f"{len(split['untagged'])} track(s) have no tag and are left out")
    if split["all_seen"]:
        out.append(f"{len(split['all_seen'])} track(s) are positive for every seen tag and are left "
                   "out, as in the original")
    if HELDOUT in split:
        held = set(split[HELDOUT])
        n = {k: sum(t in held for t in split[k]) for k in ("A", "B", "C")}
        out.append(f"{len(held)} held-out track(s) (tracks.csv {HELDOUT} = 1{', ' + condition if condition else ''}): "
                   f"{n['A'] + n['B']} of A+B are kept out of training and validation (A_test, B_test, AB_test: "
                   f"A {n['A']}, B {n['B']}); B and C are still evaluated whole ({n['B']} in B, {n['C']} in C)")
    return out


# ----------------------------------------------------------------------------- storage

def save_split(dataset_root: str | os.PathLike, name: str, settings: Mapping[str, Any],
               seen: Sequence[str], unseen: Sequence[str], tracks: Mapping[str, list[str]],
               track_seed: int, tracks_mode: str = "random") -> Path:
    """Write ``splits/<name>/tag_split.json`` and ``track_split_trs<seed>.json`` (``track_split_dataset.json``
    for the dataset's own parts).

    An existing tag split of the same name made with other settings is never overwritten.

    Parameters
    ----------
    dataset_root : path
        The dataset folder.
    name : str
        The tag split's name (``split.name``).
    settings : mapping
        The ``split`` parameters that made it, stored to recognise a rerun.
    seen, unseen : sequence of str
        Tag texts of X and Y.
    tracks : mapping of str -> list of str
        Track ids per subset (``A``, ``B``, ``C``, ``A_train``, ... as :func:`split_tracks` returns).
    track_seed : int
        Seed of the train/valid cut (``split.track_seed``); one file per seed.
    tracks_mode : str
        ``split.tracks``: ``"random"`` or ``"dataset"``. It names the track file and is left out when an
        existing tag split is compared, so changing it needs no new split name.

    Returns
    -------
    Path
        The split's folder.
    """
    layout = DatasetLayout.at(dataset_root)
    tag_file = layout.tag_split(name)
    record = {"name": name, "settings": dict(settings), "seen": list(seen), "unseen": list(unseen)}
    if tag_file.is_file():
        old = read_json(tag_file)
        def tag_settings(s):  # how the train/valid parts are cut is the track file's, not the tag split's
            return {k: v for k, v in s.items() if k != "tracks"}
        if (tag_settings(old["settings"]), old["seen"], old["unseen"]) != (tag_settings(record["settings"]),
                                                                           record["seen"], record["unseen"]):
            raise ParamError(f"split.name: {tag_file} exists with other settings or tags; choose "
                             "another split name or delete that folder")
    write_json(tag_file, record)
    write_json(layout.track_split(name, track_seed, tracks_mode), {"track_seed": track_seed, **tracks})
    return layout.split(name)


# -- the original project's pickles ----------------------------------------------------------

def export_original(folder: str | os.PathLike, tgs: str, trs: str, tag_texts: Sequence[str],
                    track_ids: Sequence[str], seen: Sequence[str], unseen: Sequence[str],
                    tracks: Mapping[str, list[str]]) -> list[Path]:
    """Write ``tag_key_split_<tgs>.p`` ([train_keys, test_keys]), ``track_keys_{AB,A,B}_<trs>_<tgs>.p``
    ([train, valid]) and ``track_keys_C_<trs>_<tgs>.p`` (list). Keys are row positions (protocol 2).
    """
    folder = Path(folder)
    tag_key = {t: i for i, t in enumerate(tag_texts)}
    track_key = {t: i for i, t in enumerate(track_ids)}
    files = {f"tag_key_split_{tgs}.p": [[tag_key[t] for t in seen], [tag_key[t] for t in unseen]],
             f"track_keys_C_{trs}_{tgs}.p": [track_key[t] for t in tracks["C"]]}
    for name in SUBSETS:
        files[f"track_keys_{name}_{trs}_{tgs}.p"] = [[track_key[t] for t in tracks[f"{name}_train"]],
                                                    [track_key[t] for t in tracks[f"{name}_valid"]]]
    written = []
    for fname, obj in files.items():
        with atomic_path(folder / fname) as tmp:
            tmp.write_bytes(pickle.dumps(obj, protocol=2))
        written.append(folder / fname)
    return written


def import_original(folder: str | os.PathLike, tgs: str, trs: str, tag_texts: Sequence[str],
                    track_ids: Sequence[str]):
    """Read the original split pickles (restricted unpickler); return (seen, unseen, tracks)."""
    folder = Path(folder)
    train_keys, test_keys = safe_load_pickle(folder / f"tag_key_split_{tgs}.p")

    def texts(keys, table, what, fname):
        try:
            return [table[int(k)] for k in keys]
        except (IndexError, ValueError, TypeError) as exc:
            raise DataError(f"{folder / fname}: {what} key out of range: {exc}") from None

    seen = texts(train_keys, list(tag_texts), "tag", f"tag_key_split_{tgs}.p")
    unseen = texts(test_keys, list(tag_texts), "tag", f"tag_key_split_{tgs}.p")
    ids = list(track_ids)
    tracks = {"C": texts(safe_load_pickle(folder / f"track_keys_C_{trs}_{tgs}.p"), ids, "track",
                         f"track_keys_C_{trs}_{tgs}.p")}
    for name in SUBSETS:
        fname = f"track_keys_{name}_{trs}_{tgs}.p"
        train, valid = safe_load_pickle(folder / fname)
        tracks[f"{name}_train"] = texts(train, ids, "track", fname)
        tracks[f"{name}_valid"] = texts(valid, ids, "track", fname)
    tracks["A"] = tracks["A_train"] + tracks["A_valid"]
    tracks["B"] = tracks["B_train"] + tracks["B_valid"]
    tracks.setdefault("untagged", [])
    tracks.setdefault("all_seen", [])
    return seen, unseen, tracks


# ----------------------------------------------------------------------------- statistics

def statistics(labels: np.ndarray, tags: pd.DataFrame, unseen: Sequence[str],
               tracks: Mapping[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's dataset table (one row) and a per-group table.

    Returns
    -------
    table : X, Y, labels, A, B, C, tracks, and train/valid sizes of A, B, A+B; with held-out tracks,
        ``heldout`` (in A+B+C) and ``heldout kept from training`` (in A+B)
    groups : per tag group: tags, seen, unseen, positives of seen and of unseen tags
    """
    unseen = set(unseen)
    is_unseen = tags.tag.isin(unseen).to_numpy()
    n_abc = sum(len(tracks[k]) for k in ("A", "B", "C"))
    row = {"X": int((~is_unseen).sum()), "Y": int(is_unseen.sum()), "labels": len(tags),
           "A": len(tracks["A"]), "B": len(tracks["B"]), "C": len(tracks["C"]), "tracks": n_abc}
    for name in SUBSETS:
        row[f"{name} train"] = len(tracks[f"{name}_train"])
        row[f"{name} valid"] = len(tracks[f"{name}_valid"])
    if HELDOUT in tracks:  # (only then: the numbers of splits without held-out tracks are unchanged)
        held = set(tracks[HELDOUT])
        row["heldout"] = sum(t in held for k in ("A", "B", "C") for t in tracks[k])
        row["heldout kept from training"] = sum(t in held for k in ("A", "B") for t in tracks[k])
    counts = np.asarray(labels, dtype=bool).sum(axis=0)
    frame = tags.assign(unseen=is_unseen, positives=counts)
    groups = frame.groupby("group").apply(
        lambda g: pd.Series({"tags": len(g), "seen": int((~g.unseen).sum()), "unseen": int(g.unseen.sum()),
                             "positives seen": int(g.positives[~g.unseen].sum()),
                             "positives unseen": int(g.positives[g.unseen].sum())}),
        include_groups=False)
    return pd.DataFrame([row]), groups.reset_index()


# ----------------------------------------------------------------------------- stage 02

@dataclass
class Split:
    """A tag split and its track split, as every stage after 02 reads it.

    Attributes
    ----------
    name : str
        The tag split's name (``split.name``).
    seen, unseen : list of str
        Tag texts of X and Y.
    tracks : dict of str -> list of str
        Track ids of ``A``, ``B``, ``C``, of the train and valid parts of each training setting
        (``A_train``, ``B_valid``, ``AB_train``, ...), and of the tracks left out (``untagged``,
        ``all_seen``); on a dataset with held-out tracks also ``A_test``, ``B_test``, ``AB_test`` and
        ``heldout`` (every held-out track: in no train or valid part).
    warnings : list of str
        What stage 02 found worth saying (a small subset, a tag with no positive in a part).
    """

    name: str
    seen: list[str]
    unseen: list[str]
    tracks: dict[str, list[str]]
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, dataset_root: str | os.PathLike, name: str, track_seed: int = 0, tracks: str = "random") -> "Split":
        """The split that stage 02 saved in a dataset folder.

        Raises :class:`~zslkit.errors.DataError` naming the missing file when stage 02 has not run.
        """
        layout = DatasetLayout.at(dataset_root)
        files = (layout.tag_split(name), layout.track_split(name, track_seed, tracks))
        for f in files:
            if not f.is_file():
                raise DataError(f"{f}: split not found; run notebook 02 first")
        tags, tracks = (read_json(f) for f in files)
        tracks.pop("track_seed", None)
        return cls(name, list(tags["seen"]), list(tags["unseen"]), tracks)

    @classmethod
    def of_run(cls, dataset_root: str | os.PathLike, params: Mapping[str, Any]) -> "Split":
        """The split that resolved parameters name (``split.name``, ``split.track_seed``, ``split.tracks``)."""
        s = params["split"]
        return cls.load(dataset_root, s["name"], s["track_seed"], "random" if s["original"] else s["tracks"])

    def seen_mask(self, tag_texts: Sequence[str]) -> np.ndarray:
        """``np.ndarray [shape=(len(tag_texts),), dtype=bool]``: True where a tag is seen (X)."""
        seen = set(self.seen)
        return np.array([t in seen for t in tag_texts])

    def train_tracks(self, setting: str) -> list[str]:
        """The training part of a training setting (``"A"``, ``"B"`` or ``"AB"``)."""
        return self._part(setting, "train")

    def valid_tracks(self, setting: str) -> list[str]:
        """The validation part of a training setting (``"A"``, ``"B"`` or ``"AB"``)."""
        return self._part(setting, "valid")

    def _part(self, setting: str, part: str) -> list[str]:
        if setting not in SUBSETS:
            raise ParamError(f"train.setting: {setting!r} is not one of {list(SUBSETS)}")
        return list(self.tracks[f"{setting}_{part}"])

    def track_set(self, name: str) -> list[str]:
        """The tracks of a named set, in subset order.

        Parameters
        ----------
        name : str
            Subsets joined by ``+`` (``"B"``, ``"B+C"``, ``"A+B+C"``), or a training setting's
            validation part (``"A_valid"``, ``"B_valid"``, ``"AB_valid"``).
        """
        if name.endswith("_valid") and name in self.tracks:
            return list(self.tracks[name])
        out = []
        for part in name.split("+"):
            if part not in ("A", "B", "C"):
                raise DataError(f"unknown track set {part!r} in {name!r}")
            out += self.tracks[part]
        return out

    def example_pool(self, among: Container[str] | None = None) -> list[str]:
        """Tracks worth showing as examples: those with unseen positives (C, then B), optionally
        only those in ``among`` (e.g. the tracks an embedding holds)."""
        pool = self.track_set("C+B")
        return pool if among is None else [t for t in pool if t in among]

    def example_tracks(self, n: int, seed: int, among: Container[str] | None = None) -> list[str]:
        """``n`` tracks of :meth:`example_pool` drawn without replacement (seeded), or all of them."""
        pool = self.example_pool(among)
        rng = np.random.default_rng(seed)
        return [str(t) for t in rng.choice(pool, size=min(n, len(pool)), replace=False)] if pool else []


def prepare_split(ds, split: Mapping[str, Any]) -> Split:
    """Make (or import) the split named in the ``split`` params, check it, save it.

    Saved to ``<dataset>/splits/<name>/`` as JSON, with the original ``.p`` layout beside it in
    ``original/``. Held-out tracks (``tracks.csv`` ``heldout`` = 1) go to no train or valid part, and the
    split's settings then record ``heldout: test only``. Raises :class:`DataError` when an imported split
    breaks the A/B/C definitions or trains on a held-out track.
    """
    labels, track_ids, texts = ds.label_matrix(), ds.tracks.track_id.tolist(), ds.tag_texts
    name, trs = split["name"], split["track_seed"]
    held = heldout_mask(ds.tracks)
    if split["original"]:
        seen, unseen, tracks = import_original(split["original"], name, split["original_trs"],
                                               texts, track_ids)
        mask = np.isin(texts, seen)
        full = track_subsets(labels, mask)
        tracks["untagged"] = [track_ids[i] for i in full["untagged"]]
        tracks["all_seen"] = [track_ids[i] for i in full["all_seen"]]
        if held is not None:
            tracks[HELDOUT] = [t for t, h in zip(track_ids, held) if h]
        settings = {"imported_from": str(split["original"]), "original_trs": split["original_trs"]}
    else:
        seen, unseen = tag_split_from_params(ds.tags, split)
        mask = np.isin(texts, seen)
        if split["tracks"] == "dataset":
            if "split" not in ds.tracks.columns or not ds.tracks.split.isin(["train", "valid"]).any():
                raise ParamError(f"split.tracks: 'dataset', but {ds.root}/tracks.csv has no split column with "
                                 "train/valid tracks (this dataset has no split of its own; use 'random')")
            tracks = split_tracks_by_dataset(labels, track_ids, mask, ds.tracks.split.tolist(), held)
        else:
            tracks = split_tracks(labels, track_ids, mask, trs, split["train_ratio"], held)
        settings = {k: split[k] for k in ("ratio", "seed", "stratify", "unseen", "train_ratio")}
        if split["tracks"] == "dataset":  # (recorded only then: splits saved before the option stay valid)
            settings["tracks"] = "dataset"
    if held is not None:  # (recorded only with the column: splits of datasets without it stay valid)
        settings[HELDOUT] = "test only"
    problems = check_track_split(labels, track_ids, mask, tracks, held)
    if problems:
        raise DataError(f"split {name!r} is not a valid A/B/C split: " + "; ".join(problems))
    mode = "random" if split["original"] else split["tracks"]
    save_split(ds.root, name, settings, seen, unseen, tracks, trs, mode)
    trs_name = "dataset" if mode == "dataset" else f"trs{trs}"
    export_original(DatasetLayout.at(ds.root).original_split(name), name, trs_name, texts, track_ids, seen, unseen,
                    tracks)
    bank = ds.meta.get("heldout_bank")
    return Split(name, list(seen), list(unseen), tracks,
                 split_warnings(labels, texts, mask, tracks, f"rendered with {bank}" if bank else None))


def results_rows(split: Split, table: pd.DataFrame) -> list[dict]:
    """Stage 02's split numbers for ``results.csv`` (one row per statistic)."""
    row = table.iloc[0]
    return ([{"test_setting": f"split {split.name}", "metric": f"n_{col.replace(' ', '_')}",
              "value": int(row[col])} for col in table.columns]
            + [{"test_setting": f"split {split.name}", "metric": "n_warnings", "value": len(split.warnings)}])
