"""A user's own data, small or odd: files that are empty, clips present in two formats.

Every importer says "empty (0 bytes)" for an empty audio file (not libsndfile's "File does not exist or is
not a regular file (possibly a pipe?)"), GTZAN reads a clip present as ``.au`` and ``.wav`` once (the
``.au``, its original format) and lists the other copy, and stage 01 writes what was left out or merged to
the dataset's ``build_report.json``, which notebook 01 shows row by row (:func:`zslkit.data.prepare.report_table`).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zslkit import config
from zslkit.data import prepare
from zslkit.data.audio import EMPTY, file_issue, load_audio
from zslkit.data.datasets import fma, gtzan, jamendo, mtat, samples
from zslkit.data.datasets.folder import import_folder
from zslkit.data.preprocess import preprocess
from zslkit.errors import DataError


@pytest.fixture(scope="module")
def gtzan_root(tmp_path_factory):
    return samples.write_gtzan(tmp_path_factory.mktemp("gtzan") / "g", per_genre=2, seconds=1.5, corrupt=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _as_wav(au: Path) -> Path:
    """A ``.wav`` copy of a GTZAN ``.au`` clip beside it (as the converted copies people share)."""
    y, sr = sf.read(au)
    wav = au.with_suffix(".wav")
    sf.write(wav, y, sr)
    return wav


def test_gtzan_clip_in_two_formats_is_read_once_from_the_au(gtzan_root, tmp_path):
    root = _copy(gtzan_root, tmp_path / "g")
    au = root / "genres" / "classical" / "classical.00000.au"
    wav = _as_wav(au)
    ds, report = gtzan.import_gtzan(tmp_path / "ds", root, root)
    assert list(ds.tracks.track_id).count("classical.00000") == 1
    assert ds.audio_path("classical.00000") == au.resolve()
    merged = report["merged"]
    assert [m["path"] for m in merged] == [str(wav)] and merged[0]["track_id"] == "classical.00000"
    assert "also present as classical.00000.au, which is read" in merged[0]["issue"]
    assert ".au" in merged[0]["issue"]  # the documented preference is named


def test_gtzan_empty_au_beside_a_wav_reads_the_wav(gtzan_root, tmp_path):
    root = _copy(gtzan_root, tmp_path / "g")
    au = root / "genres" / "jazz" / "jazz.00000.au"
    wav = _as_wav(au)
    au.write_bytes(b"")
    ds, report = gtzan.import_gtzan(tmp_path / "ds", root, root)
    assert ds.audio_path("jazz.00000") == wav.resolve()
    (entry,) = report["merged"]
    assert entry["path"] == str(au) and entry["issue"].startswith(f"{EMPTY}: ")
    assert "jazz.00000.wav is read instead" in entry["issue"]


def test_gtzan_empty_clip_is_left_out_and_says_empty(gtzan_root, tmp_path):
    root = _copy(gtzan_root, tmp_path / "g")
    au = root / "genres" / "pop" / "pop.00000.au"
    au.write_bytes(b"")
    ds, report = gtzan.import_gtzan(tmp_path / "ds", root, root)  # the split lists still name pop.00000
    assert "pop.00000" not in set(ds.tracks.track_id)
    (entry,) = [e for e in report["left_out"] if e["track_id"] == "pop.00000"]
    assert entry["issue"] == f"{EMPTY}: {au}"


@pytest.mark.parametrize("name", ["mtat", "jamendo", "fma"])
def test_every_importer_says_empty_for_an_empty_audio_file(name, tmp_path):
    write = {"mtat": lambda r: samples.write_mtat(r, n_clips=16, seconds=1.5),
             "jamendo": lambda r: samples.write_jamendo(r, n_tracks=12, seconds=1.5),
             "fma": lambda r: samples.write_fma(r, n_tracks=16, seconds=1.5, openmic=False)}[name]
    root = write(tmp_path / name)
    victim = sorted(root.rglob("*.mp3"))[-1]
    victim.write_bytes(b"")
    out = tmp_path / "ds"
    if name == "mtat":
        ds, report = mtat.import_mtat(out, root / "annotations_final.csv", root, root / "clip_info_final.csv",
                                      tags="all")
    elif name == "jamendo":
        ds, report = jamendo.import_jamendo(out, root / "data", root / "audio", window=1.0)
    else:
        ds, report = fma.import_fma(out, root / "fma_metadata")
    empty = [e for e in report["left_out"] if e["issue"].startswith(EMPTY)]
    assert [e["path"] for e in empty] == [str(victim.resolve())], report["left_out"]
    assert empty[0]["track_id"] not in set(ds.tracks.track_id)
    assert "possibly a pipe" not in json.dumps(report)


def test_folder_import_says_empty(tmp_path, wav):
    wav("a.wav", np.sin(np.arange(22050) / 10).astype(np.float32))
    (tmp_path / "b.wav").write_bytes(b"")
    (tmp_path / "tags.csv").write_text("path,tags\na.wav,x\nb.wav,y\n")
    ds, report = import_folder(tmp_path / "tags.csv", tmp_path / "ds")
    assert ds.tracks.track_id.tolist() == ["a.wav"]
    assert report.issue.tolist() == [f"{EMPTY}: {tmp_path / 'b.wav'}"]


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".flac", ".au"])
def test_decoding_an_empty_file_says_empty(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(b"")
    assert file_issue(path) == EMPTY and file_issue(tmp_path / "gone.mp3") == "not found"
    assert file_issue(tmp_path) == "not a regular file"
    with pytest.raises(DataError, match=r"x\.\w+: empty \(0 bytes\)$"):
        load_audio(path)
    table = preprocess([("e", str(path)), ("m", str(tmp_path / "gone.mp3"))], tmp_path / "mels", workers=1,
                       progress=False)
    reasons = dict(zip(table.track_id, table.reason))
    assert reasons == {"e": EMPTY, "m": "unreadable: not found"}


def test_stage01_writes_the_build_report_and_lists_every_file(gtzan_root, tmp_path):
    root = _copy(gtzan_root, tmp_path / "g")
    wav = _as_wav(root / "genres" / "blues" / "blues.00000.au")
    (root / "genres" / "rock" / "rock.00000.au").write_bytes(b"")
    gtzan_params = {"root": str(root), "split_lists": str(root)}
    P = config.resolve({"run": {"data_dir": str(tmp_path / "data"), "progress": False},
                        "data": {"source": "gtzan", "name": "g", "gtzan": gtzan_params}}, root=tmp_path)
    ds, report = prepare.prepare_dataset(P)
    saved = json.loads((ds.root / "build_report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    table = prepare.report_table(report)
    assert list(table.columns[:4]) == ["list", "track_id", "path", "issue"]
    by_path = dict(zip(table.path, zip(table.list, table.issue)))
    assert by_path[str(wav)][0] == "merged"
    assert by_path[str(root / "genres" / "rock" / "rock.00000.au")] == ("left_out", f"{EMPTY}: "
                                                                        f"{root / 'genres' / 'rock' / 'rock.00000.au'}")
    assert sum(table.issue == "not in the filtered split lists") == len(samples.GTZAN_GENRES)
    summary = prepare.report_summary(report)
    assert summary == {"left_out": len(report["left_out"]), "merged": 1}
