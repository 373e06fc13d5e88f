"""Tiny copies of real datasets in their exact on-disk formats, with synthetic audio.

For the tests, the import benchmark and for trying an importer before downloading anything::

    from zslkit.data.datasets import samples
    samples.write_mtat("/tmp/mtat")          # annotations_final.csv, clip_info_final.csv, 0/ ... f/

Each writer reproduces the format as published (header lines, delimiters, quoting, CRLF line ends,
list literals, path layouts, split files) with a few rows; the audio is short tones whose pitches
depend on the tags, so that a model has something to learn. Tag texts are real tags of each dataset.
``audio=False`` writes the metadata only (the benchmark writes full-size metadata this way).
"""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import soundfile as sf

from .mtat import CLIP_INFO_HEADER, TOP50

MTAT_EXTRA = ["singer", "duet", "plucking", "hard rock", "world", "bongos", "female singing",
              "clasical", "harpsicord", "rap", "hip hop", "quick", "water", "baroque", "women", "fiddle",
              "english"]
JAMENDO_TAGS = ["genre---rock", "genre---pop", "genre---electronic", "genre---classical", "genre---ambient",
                "instrument---piano", "instrument---guitar", "instrument---voice", "instrument---synthesizer",
                "instrument---strings", "mood/theme---sad", "mood/theme---happy", "mood/theme---energetic",
                "mood/theme---relaxing"]
GTZAN_GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
# (genre_id, parent, title, top_level): real FMA genres
FMA_GENRES = [(2, 0, "International", 2), (3, 0, "Blues", 3), (4, 0, "Jazz", 4), (5, 0, "Classical", 5),
              (10, 0, "Pop", 10), (12, 0, "Rock", 12), (15, 0, "Electronic", 15), (17, 0, "Folk", 17),
              (21, 0, "Hip-Hop", 21), (25, 12, "Punk", 12), (26, 12, "Post-Rock", 12),
              (58, 12, "Psych-Rock", 12), (66, 12, "Indie-Rock", 12), (236, 15, "Ambient Electronic", 15),
              (182, 15, "Techno", 15), (296, 15, "Glitch", 15), (100, 21, "Alternative Hip-Hop", 21),
              (137, 17, "Singer-Songwriter", 17), (187, 10, "Experimental Pop", 10)]
OPENMIC_CLASSES = ["accordion", "banjo", "bass", "cello", "clarinet", "cymbals", "drums", "flute", "guitar",
                   "mallet_percussion", "mandolin", "organ", "piano", "saxophone", "synthesizer", "trombone",
                   "trumpet", "ukulele", "violin", "voice"]


def tone(tags: list[str], seconds: float, sr: int, seed: int) -> np.ndarray:
    """A mono test signal: one partial per tag (pitch from the tag's text) plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.02 * rng.standard_normal(len(t))
    for tag in tags:
        f0 = 110.0 * 2 ** ((sum(map(ord, tag)) % 48) / 12)
        y += 0.3 / max(1, len(tags)) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6.28))
    return (y / max(1.0, np.abs(y).max())).astype(np.float32)


def _write_audio(path: Path, tags: list[str], seconds: float, sr: int, seed: int, fmt: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(tags, seconds, sr, seed), sr, format=fmt)


def _draw(rng: np.random.Generator, vocabulary: list[str], k_max: int = 3) -> list[str]:
    k = int(rng.integers(1, k_max + 1))
    return sorted(rng.choice(vocabulary, size=k, replace=False).tolist(), key=vocabulary.index)


def write_mtat(root: str | Path, n_clips: int = 64, audio: bool = True, seconds: float = 4.0,
               split_lists: bool = True, seed: int = 0, n_tags: int | None = None) -> Path:
    """MagnaTagATune: quoted tab-separated CSVs with CRLF ends, ``<hex>/<name>.mp3`` at 16 kHz.
    ``n_tags`` pads the tag columns with made-up tags to the dataset's 188 (for the benchmark)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns = TOP50[:30] + MTAT_EXTRA + TOP50[30:]
    columns += [f"made-up tag {k}" for k in range((n_tags or 0) - len(columns))]
    common = TOP50[:12]
    rows, info, parts = [], [], {"train": [], "valid": [], "test": []}
    for i in range(n_clips):
        clip_id = 2 + 4 * i + (i % 3)  # not contiguous, as in the dataset
        hexdigit = "0123456789abcdef"[i % 16]
        mp3 = f"{hexdigit}/artist_{i % 7}-album_{i % 5}-{i:02d}-track_{i}-{30 * (i % 4)}-{30 * (i % 4) + 29}.mp3"
        tags = list(dict.fromkeys(_draw(rng, common) + [columns[(5 * i) % len(columns)]]))  # each column used
        rows.append([str(clip_id)] + ["1" if c in tags else "0" for c in columns] + [mp3])
        info.append([str(clip_id), str(i % 9 + 1), f"Track {i}", f"Artist {i % 7}", f"Album {i % 5}",
                     f"http://www.magnatune.com/artists/albums/a{i % 5}", str(30 * (i % 4)),
                     str(30 * (i % 4) + 29), f"http://he3.magnatune.com/all/{i}.mp3", mp3])
        part = "train" if hexdigit in "0123456789ab" else "valid" if hexdigit == "c" else "test"
        parts[part].append(f"{i}\t{mp3}")
        if audio:
            _write_audio(root / mp3, [t for t in tags if t in TOP50], seconds, 16000, i, "MP3")
    for extra in range(n_clips, n_clips + 5):  # clip_info has rows for clips that were not annotated
        info.append([str(100000 + extra), "1", "x", "y", "z", "u", "0", "29", "v", f"0/unannotated-{extra}.mp3"])
    with open(root / "annotations_final.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(["clip_id"] + columns + ["mp3_path"])
        w.writerows(rows)
    with open(root / "clip_info_final.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(CLIP_INFO_HEADER)
        w.writerows(info)
    if split_lists:
        (root / "split").mkdir(exist_ok=True)
        for part, items in parts.items():
            np.save(root / "split" / f"{part}.npy", np.array(items))
    return root


def _jamendo_rows(rng: np.random.Generator, n_tracks: int, seconds: float) -> list[list[str]]:
    rows = []
    for i in range(n_tracks):
        tid = 382 + 7 * i
        tags = _draw(rng, JAMENDO_TAGS[:5], 2) + _draw(rng, JAMENDO_TAGS[5:10], 2)
        tags += _draw(rng, JAMENDO_TAGS[10:], 1) if i % 3 else []
        rows.append([f"track_{tid:07d}", f"artist_{i % 11:06d}", f"album_{i % 13:06d}", f"{tid % 100:02d}/{tid}.mp3",
                     f"{seconds:.1f}"] + sorted(tags))
    return rows


def write_jamendo(root: str | Path, n_tracks: int = 64, audio: bool = True, seconds: float = 4.0,
                  low_quality: bool = False, seed: int = 0) -> Path:
    """MTG-Jamendo: ``data/autotagging_top50tags.tsv`` and ``data/splits/split-0/*`` (CRLF, variable tag
    fields), audio in ``audio/NN/<id>.mp3`` (and ``.low.mp3``)."""
    root = Path(root)
    data = root / "data"
    (data / "splits" / "split-0").mkdir(parents=True, exist_ok=True)
    rows = _jamendo_rows(np.random.default_rng(seed), n_tracks, seconds)
    header = ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]

    def write(path, part_rows):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\r\n")
            w.writerow(header)
            w.writerows(part_rows)

    write(data / "autotagging_top50tags.tsv", rows)
    artist_part = {a: ["train", "train", "train", "validation", "test"][k % 5]
                   for k, a in enumerate(sorted({r[1] for r in rows}))}
    for part in ("train", "validation", "test"):
        write(data / "splits" / "split-0" / f"autotagging_top50tags-{part}.tsv",
              [r for r in rows if artist_part[r[1]] == part])
    if audio:
        for i, r in enumerate(rows):
            rel = r[3][:-4] + (".low.mp3" if low_quality else ".mp3")
            _write_audio(root / "audio" / rel, [t.split("---")[1] for t in r[5:]], seconds, 22050, i, "MP3")
        first = root / "audio" / (rows[0][3][:-4] + (".low.mp3" if low_quality else ".mp3"))
        dup = root / "audio" / (rows[1][3][:-4] + (".low.mp3" if low_quality else ".mp3"))
        dup.write_bytes(first.read_bytes())  # the dataset has byte-identical tracks; so does the copy
    return root


def write_gtzan(root: str | Path, per_genre: int = 6, audio: bool = True, seconds: float = 4.0,
                split_lists: bool = True, corrupt: bool = True, seed: int = 0) -> Path:
    """GTZAN: ``genres/<genre>/<genre>.000NN.au`` (22,050 Hz), the filtered lists (``.wav`` names,
    LF), and ``jazz.00054`` corrupt as in the Kaggle copy."""
    root = Path(root)
    lists = {"train": [], "valid": [], "test": []}
    for g in GTZAN_GENRES:
        for n in range(per_genre):
            path = root / "genres" / g / f"{g}.{n:05d}.au"
            if audio:
                _write_audio(path, [g], seconds, 22050, seed + n, "AU")
            part = ["train", "train", "valid", "test"][n % 4]
            if n != per_genre - 1:  # the filtered lists leave some clips out
                lists[part].append(f"{g}/{g}.{n:05d}.wav")
    if audio and corrupt:
        bad = root / "genres" / "jazz" / "jazz.00054.au"
        bad.write_bytes(b".snd" + bytes(60))
        lists["train"].append("jazz/jazz.00054.wav")
    if split_lists:
        for part, items in lists.items():
            (root / f"{part}_filtered.txt").write_text("".join(f"{p}\n" for p in items))
    return root


def _fma_header() -> tuple[list[str], list[str]]:
    fields = [("album", "comments"), ("album", "date_created"), ("album", "id"), ("album", "title"),
              ("album", "type"), ("artist", "id"), ("artist", "name"), ("set", "split"), ("set", "subset"),
              ("track", "bit_rate"), ("track", "duration"), ("track", "genre_top"), ("track", "genres"),
              ("track", "genres_all"), ("track", "interest"), ("track", "license"), ("track", "title")]
    return [g for g, _ in fields], [f for _, f in fields]


def _fma_rows(rng: np.random.Generator, n_tracks: int) -> list[list[str]]:
    by_id = {g[0]: g for g in FMA_GENRES}
    leaves = [g[0] for g in FMA_GENRES if g[1] != 0] + [3, 4, 5]
    rows = []
    for i in range(n_tracks):
        genres = sorted({int(g) for g in rng.choice(leaves, size=int(rng.integers(1, 3)), replace=False)})
        tops = {by_id[g][3] for g in genres}
        all_ = sorted(set(genres) | tops)
        top = by_id[next(iter(tops))][2] if len(tops) == 1 else ""
        subset = ["small", "small", "medium", "large"][i % 4]
        split = ["training"] * 8 + ["validation", "test"]
        rows.append(["", "2008-11-26 01:44:45", str(i % 9), f"Album {i % 9}", "Album", str(i % 11),
                     f"Artist, {i % 11}", split[i % 10], subset, "256000", "30", top, str(genres), str(all_),
                     str(int(rng.integers(1, 5000))), "Attribution-NonCommercial-ShareAlike 3.0",
                     f'Track "{i}"'])
    return rows


def write_fma(root: str | Path, n_tracks: int = 64, audio: bool = True, seconds: float = 4.0,
              openmic: bool = True, seed: int = 0) -> Path:
    """FMA: ``fma_metadata/{tracks,genres}.csv`` (three-line header, list literals), audio in
    ``fma_small/NNN/NNNNNN.mp3`` (one small track without audio, as in the dataset), and
    ``openmic-2018/{openmic-2018.npz,class-map.json}``."""
    root = Path(root)
    meta = root / "fma_metadata"
    meta.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = _fma_rows(rng, n_tracks)
    groups, fields = _fma_header()
    with open(meta / "tracks.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([""] + groups)
        w.writerow([""] + fields)
        w.writerow(["track_id"] + [""] * len(fields))
        w.writerows([[str(2 + 3 * i)] + r for i, r in enumerate(rows)])
    with open(meta / "genres.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["genre_id", "#tracks", "parent", "title", "top_level"])
        w.writerows([[g, 100 + g, p, t, top] for g, p, t, top in FMA_GENRES])
    if audio:
        by_id = {g[0]: g[2] for g in FMA_GENRES}
        small = [(2 + 3 * i, r) for i, r in enumerate(rows) if r[8] == "small"]
        for k, (tid, r) in enumerate(small[1:]):  # the first small track has no audio
            name = f"{tid:06d}"
            _write_audio(root / "fma_small" / name[:3] / f"{name}.mp3",
                         [by_id[g] for g in json.loads(r[12])], seconds, 44100, k, "MP3")
    if openmic:
        folder = root / "openmic-2018"
        folder.mkdir(exist_ok=True)
        keys = [f"{2 + 3 * i:06d}_{3840 * (j + 1)}" for i in range(n_tracks) for j in range(i % 2 + 1)]
        y = rng.random((len(keys), len(OPENMIC_CLASSES)))
        mask = rng.random(y.shape) < 0.3
        y[~mask] = 0.5
        np.savez(folder / "openmic-2018.npz", X=rng.integers(0, 255, (len(keys), 10, 128), dtype=np.uint8),
                 Y_true=y, Y_mask=mask, sample_key=np.array(keys))
        (folder / "class-map.json").write_text(json.dumps({c: i for i, c in enumerate(OPENMIC_CLASSES)}))
    return root


def write_seed(root: str | Path, n_tags: int = 12, n_tracks: int = 60, mels: bool = True, frames: int = 160,
               seed: int = 0) -> Path:
    """The original project's MSD layout: ``data_common/msd/*.p`` (protocol 2), the 300-d
    ``data_tag_vector/msd/*_glove_dict.p`` (the last tag has no vector), and its float32 mels
    (``mels/<path>.npy``, time x 128; the last track has none)."""
    root = Path(root)
    common, vec = root / "data_common" / "msd", root / "data_tag_vector" / "msd"
    common.mkdir(parents=True, exist_ok=True)
    vec.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    matrix = (rng.random((n_tags, n_tracks)) < 0.25).astype(np.int8)
    matrix[rng.integers(n_tags, size=n_tracks), np.arange(n_tracks)] = 1  # every track has a tag
    tags = ["rock", "pop", "jazz", "blues", "electronic", "folk", "metal", "soul", "ambient", "punk",
            "country", "reggae", "indie", "classical", "hip hop", "funk"][:n_tags]
    tracks = [f"TR{i:05d}ABCDEF" for i in range(n_tracks)]
    paths = {t: f"{t[2]}/{t[3]}/{t}.mp3" for t in tracks}
    for name, obj in {"all_tag_to_track_bin_matrix.p": matrix, "all_track_to_tag_bin_matrix.p": matrix.T,
                      "tag_ids_in_key_order.p": tags, "track_ids_in_key_order.p": tracks,
                      "track_id_to_key_dict.p": {t: i for i, t in enumerate(tracks)},
                      "track_id_to_file_path_dict.p": paths,
                      "tag_key_to_id_dict.p": dict(enumerate(tags))}.items():
        (common / name).write_bytes(pickle.dumps(obj, protocol=2))
    glove = {t: rng.standard_normal(300).astype(np.float32) for t in tags[:-1]}
    (vec / "ttr_ont_tag_1126_to_glove_dict.p").write_bytes(pickle.dumps(glove, protocol=2))
    if mels:  # the last track's mel is missing, as some are in the original data
        for k, t in enumerate(tracks[:-1]):
            out = root / "mels" / (paths[t][:-4] + ".npy")
            out.parent.mkdir(parents=True, exist_ok=True)
            on = matrix[:, k].astype(np.float32)
            base = rng.random((frames, 128)).astype(np.float32) * 0.2
            base[:, : n_tags * 8] += np.repeat(on, 8)[None, :] * 0.5
            np.save(out, base)
    return root
