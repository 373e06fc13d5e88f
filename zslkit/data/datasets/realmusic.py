"""Real recordings from Debian packages, tagged only with what the packages prove (the real-recordings check).

Known packages (:data:`PACKAGES`; ``make realmusic`` installs them where apt-get can):

- ``wesnoth-1.16-music``: 41 orchestral game-score tracks (Ogg Vorbis). A track's tags come from its own
  Vorbis ``GENRE`` field through :data:`GENRE_TAGS` (``Romantic Classical`` -> ``classical`` (style) and
  ``romantic`` (era)); a track whose genre names no tag there (``Game``) or has none is left out, reported.
- ``fretsonfire-songs-muldjord``, ``fretsonfire-songs-sectoid``: Frets on Fire songs, each folder holding the
  guitar part alone (``guitar.ogg``) beside the rest of the band (``song.ogg``). Every window gives three clips:
  the guitar stem (``guitar``), the band without the guitar stem (no instrument tag) and both mixed (``guitar``).
  A package-level tag holds only when a text the package ships says it: Muldjord's songs each carry a
  ``readme.txt`` saying the composer plays in a "metal band", so they are ``metal`` (:data:`TEXT_TAGS`).

Nothing is inferred, not even a proven instrument's family or excitation (``guitar`` -> ``strings``,
``plucked`` in m21's catalogue): the orchestral tracks hold bowed strings and perhaps a harp, and would be false
negatives of those tags. A (clip, tag) pair that no field, stem or text asserts is a negative in
``annotations.npz``, as in every weakly labelled tagging set; the band-without-guitar stem may still hold a rhythm
guitar, and the Sectoid songs' style is not known (their titles are no proof), though they are negatives of
``metal``. ``provenance.csv`` says what each positive rests on.

Written: ``tracks.csv`` (``start``/``duration`` windows into the package files, the mixes as WAV files under
``mixes/``; ``taken_at``: where in the package's track each clip was taken), ``provenance.csv`` (``track_id, tag,
evidence``), ``packages.json`` (each package found, its dpkg version, or why it is missing), and ``knowledge.csv``
and ``descriptions.csv`` for the tags m21's catalogue knows (the side information ``table`` and ``sentence`` of a
transfer from an m21 run).
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import soundfile as sf

from ...errors import DataError, ParamError
from ...io import atomic_path, write_csv, write_json
from ..audio import load_audio
from . import Dataset
from .m21.knowledge import descriptions, knowledge_table
from .tabular import Record, assemble


@dataclass(frozen=True)
class Package:
    """A Debian package of music and how its tags are proven."""

    name: str
    folder: str                  # under ``share_root``
    kind: str                    # "vorbis_genre" or "fof_stems"
    text_tags: tuple = ()        # ((tag, group, file name in each song folder, phrase), ...)
    adapt_only: bool = False     # no tag is proven: unlabelled audio for adaptation only


#: Vorbis GENRE values (lower case) -> the tags they assert, (tag, group)
GENRE_TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "romantic classical": (("classical", "style"), ("romantic", "era")),
    "classical": (("classical", "style"),),
}

TEXT_TAGS = (("metal", "style", "readme.txt", "metal band"),)

PACKAGES: dict[str, Package] = {p.name: p for p in (
    Package("wesnoth-1.16-music", "wesnoth/1.16/data/core/music", "vorbis_genre"),
    Package("fretsonfire-songs-muldjord", "fretsonfire/data/songs/muldjord", "fof_stems", TEXT_TAGS),
    Package("fretsonfire-songs-sectoid", "fretsonfire/data/songs/sectoid", "fof_stems", TEXT_TAGS),
    # game scores whose metadata proves no tag (GENRE "Soundtrack" or none): real audio without labels, for
    # train.adapt (data.unlabelled); never the check set's packages
    Package("singularity-music", "singularity/music", "plain", adapt_only=True),
    Package("supertux-data", "supertux2/music", "plain", adapt_only=True),
    Package("hedgewars-data", "hedgewars/Data/Music", "plain", adapt_only=True),
    Package("warzone2100-music", "warzone2100/music", "plain", adapt_only=True),
)}
#: the packages of the check set and of the unlabelled pool (data.realmusic.packages, data.unlabelled defaults)
CHECK_PACKAGES = [p.name for p in PACKAGES.values() if not p.adapt_only]
UNLABELLED_PACKAGES = [p.name for p in PACKAGES.values() if p.adapt_only]
AUDIO_SUFFIXES = (".ogg", ".opus")

#: guitar windows quieter than this (RMS, dBFS) are left out: the guitar rests there
SILENT_DB = -45.0


def vorbis_comments(path: str | Path) -> dict[str, str]:
    """The Vorbis comment fields of an Ogg Vorbis file, keys upper-cased (``{}`` when it has none).

    Raises
    ------
    DataError
        The file has no Vorbis comment header where one is expected, or the header is cut short.
    """
    data = Path(path).read_bytes()[:1 << 20]
    i = data.find(b"\x03vorbis")
    if i < 0:
        raise DataError(f"{path}: no Vorbis comment header in its first MiB")
    try:
        p = i + 7
        (n,) = struct.unpack_from("<I", data, p)
        p += 4 + n
        (k,) = struct.unpack_from("<I", data, p)
        p += 4
        out = {}
        for _ in range(k):
            (n,) = struct.unpack_from("<I", data, p)
            p += 4
            key, _, value = data[p:p + n].decode("utf-8", "replace").partition("=")
            out.setdefault(key.strip().upper(), value.strip())
            p += n
    except struct.error as exc:
        raise DataError(f"{path}: Vorbis comment header cut short ({exc})") from exc
    return out


def dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (not installed, or no dpkg here)."""
    if not shutil.which("dpkg-query"):
        return None
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    return out.stdout.strip() or None if out.returncode == 0 else None


def windows(duration: float, n: int, seconds: float) -> list[float]:
    """Start times of ``n`` windows of ``seconds`` spread evenly over the middle 80 % of a track (fewer when
    the track is short; none when it is shorter than one window)."""
    if duration < seconds:
        return []
    lo, hi = 0.1 * duration, 0.9 * duration - seconds
    if hi <= lo:
        return [max(0.0, (duration - seconds) / 2)]
    n = max(1, min(n, int((hi - lo) // seconds) + 1))
    return [round(float(s), 2) for s in np.linspace(lo, hi, n)]


@dataclass
class Found:
    records: list[Record] = field(default_factory=list)
    evidence: list[tuple[str, str, str]] = field(default_factory=list)   # track_id, tag, evidence
    groups: dict[str, str] = field(default_factory=dict)
    left_out: list[dict] = field(default_factory=list)

    def add(self, track_id: str, path: str, start: float | None, seconds: float, tags, meta) -> None:
        """One clip with its ``(tag, group, evidence)`` list: read from ``start`` s of ``path`` (None: a file of
        its own, read from 0); ``meta["taken_at"]`` is where in the package's track the clip was taken."""
        window = {"start": 0.0 if start is None else start, "duration": seconds, "taken_at": start}
        self.records.append(Record(track_id, path, [t for t, _, _ in tags], meta={**window, **meta}))
        for t, g, e in tags:
            self.groups[t] = g
            self.evidence.append((track_id, t, e))


def installed(packages: list[str], share_root: Path, status: dict[str, str], key: str):
    """Yield ``(Package, folder)`` for each installed package of ``packages``, recording in ``status`` its dpkg
    version or why it is missing. An unknown name raises :class:`ParamError` naming ``key``."""
    for name in packages:
        if name not in PACKAGES:
            raise ParamError(f"{key}: unknown package {name!r}; known: {', '.join(PACKAGES)}")
        folder = share_root / PACKAGES[name].folder
        if not folder.is_dir():
            status[name] = f"missing: {folder} not found (sudo apt-get install {name}, or make realmusic)"
            continue
        status[name] = dpkg_version(name) or "installed (no dpkg record)"
        yield PACKAGES[name], folder


def _nothing_found(key: str, packages: list[str], share_root: Path, status: Mapping[str, str]) -> DataError:
    return DataError(f"{key}: no clip from {', '.join(packages)} under {share_root} "
                     f"({'; '.join(f'{k}: {v}' for k, v in status.items())}); run `make realmusic`")


def scan_vorbis_genre(pkg: Package, folder: Path, found: Found, n: int, seconds: float) -> None:
    for path in sorted(folder.glob("*.ogg")):
        fields = vorbis_comments(path)
        genre = fields.get("GENRE", "")
        tags = GENRE_TAGS.get(genre.lower())
        if not tags:
            found.left_out.append({"track_id": f"{pkg.name}/{path.name}", "path": str(path),
                                   "issue": f"its GENRE field ({genre or 'none'}) proves no tag"})
            continue
        duration = sf.info(str(path)).duration
        for start in windows(duration, n, seconds):
            found.add(f"{pkg.name}/{path.stem}@{start:.0f}", str(path), start, seconds,
                      [(t, g, f"{path.name}: Vorbis GENRE={genre}") for t, g in tags],
                      {"package": pkg.name, "file": path.name, "stem": "", "title": fields.get("TITLE", "")})


def _text_tags(pkg: Package, song: Path) -> list[tuple[str, str, str]]:
    out = []
    for tag, group, name, phrase in pkg.text_tags:
        text = song / name
        if text.is_file() and re.search(re.escape(phrase), text.read_text(errors="replace"), re.I):
            out.append((tag, group, f"{song.name}/{name} says {phrase!r}"))
    return out


def scan_fof_stems(pkg: Package, folder: Path, found: Found, n: int, seconds: float, out_dir: Path,
                   sample_rate: int) -> None:
    for song in sorted(p for p in folder.iterdir() if p.is_dir()):
        guitar, band = song / "guitar.ogg", song / "song.ogg"
        if not (guitar.is_file() and band.is_file()):
            found.left_out.append({"track_id": f"{pkg.name}/{song.name}", "path": str(song),
                                   "issue": "no guitar.ogg beside song.ogg"})
            continue
        whole = _text_tags(pkg, song)
        duration = min(sf.info(str(guitar)).duration, sf.info(str(band)).duration)
        gtags = [("guitar", "instrument", "guitar.ogg: the package's guitar stem")]
        slug = re.sub(r"[^a-z0-9]+", "_", song.name.lower()).strip("_")
        meta = {"package": pkg.name, "title": song.name}
        for start in windows(duration, n, seconds):
            g = load_audio(guitar, sample_rate, seconds, start)
            b = load_audio(band, sample_rate, seconds, start)
            rms = 20 * np.log10(np.sqrt(np.mean(g.astype(np.float64) ** 2)) + 1e-12)
            tid = f"{pkg.name}/{slug}@{start:.0f}"
            if rms < SILENT_DB:
                found.left_out.append({"track_id": tid, "path": str(guitar),
                                       "issue": f"the guitar stem is silent there ({rms:.0f} dBFS RMS)"})
                continue
            m = min(len(g), len(b))
            mix = g[:m] + b[:m]
            mix /= max(1.0, float(np.max(np.abs(mix))))
            wav = out_dir / "mixes" / f"{pkg.name}_{slug}_{start:.0f}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(wav, suffix=".wav") as tmp:
                sf.write(str(tmp), mix, sample_rate, subtype="PCM_16", format="WAV")
            found.add(f"{tid}/guitar", str(guitar), start, seconds, gtags + whole,
                      {**meta, "file": f"{song.name}/guitar.ogg", "stem": "guitar"})
            found.add(f"{tid}/band", str(band), start, seconds, whole,
                      {**meta, "file": f"{song.name}/song.ogg", "stem": "band without guitar"})
            found.add(f"{tid}/mix", str(wav.relative_to(out_dir)), None, seconds, gtags + whole,
                      {**meta, "file": f"{song.name}/song.ogg + guitar.ogg", "stem": "mix", "taken_at": start})


def missing_packages(p: Mapping[str, Any]) -> str | None:
    """Why nothing can be built from ``data.realmusic`` section ``p`` (none of its packages is installed under its
    ``share_root``), or None when at least one is."""
    share = Path(p["share_root"])
    if any((share / PACKAGES[n].folder).is_dir() for n in p["packages"] if n in PACKAGES):
        return None
    return (f"none of {', '.join(p['packages'])} is installed under {share} (`make realmusic` installs them "
            "where apt-get and root or password-less sudo are there)")


def scan_plain(pkg: Package, folder: Path, found: Found, n: int, seconds: float) -> None:
    """Every Ogg Vorbis or Opus file under ``folder``, without tags."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix in AUDIO_SUFFIXES and p.is_file()):
        try:
            duration = sf.info(str(path)).duration
        except (RuntimeError, sf.LibsndfileError) as exc:
            found.left_out.append({"track_id": f"{pkg.name}/{path.name}", "path": str(path),
                                   "issue": f"cannot be read: {exc}"})
            continue
        rel = path.relative_to(folder).with_suffix("")
        for start in windows(duration, n, seconds):
            found.add(f"{pkg.name}/{rel}@{start:.0f}", str(path), start, seconds, [],
                      {"package": pkg.name, "file": str(path.relative_to(folder)), "stem": "", "title": ""})


def import_unlabelled(out_dir: str | Path, packages: list[str], share_root: str | Path, clips_per_track: int,
                      clip_seconds: float, exclude: list[str] = (), name: str | None = None) -> tuple[Dataset, dict]:
    """Clips of real music **without labels** from ``packages`` (any of :data:`PACKAGES`; tags they prove are
    dropped), for learning from real audio (``train.adapt``). ``exclude``: packages that must not be among them
    (the check set's), refused with :class:`ParamError` naming the package.

    Returns the dataset (no tags) and a report as :func:`import_realmusic`'s.
    """
    clash = sorted(set(packages) & set(exclude))
    if clash:
        raise ParamError(f"data.unlabelled: {clash[0]!r} is also a package of the real-recordings check "
                         "(run.real_check): the check must stay package-disjoint from what training hears")
    out_dir, share_root = Path(out_dir), Path(share_root)
    found, status = Found(), {}
    for pkg, folder in installed(packages, share_root, status, "data.unlabelled"):
        scan_plain(pkg, folder, found, clips_per_track, clip_seconds)
    if not found.records:
        raise _nothing_found("data.unlabelled", packages, share_root, status)
    for r in found.records:
        r.tags = []
    meta = {"name": name or out_dir.name, "share_root": str(share_root), "packages": status,
            "labels": "none: real audio for train.adapt"}
    ds = assemble(out_dir, found.records, pd.DataFrame({"tag": [], "group": []}), meta, "unlabelled")
    report = {"packages": status, "left_out": found.left_out,
              "clips": pd.Series([r.meta["package"] for r in found.records]).value_counts().to_dict()}
    write_json(out_dir / "packages.json", report)
    return ds, report


def import_realmusic(out_dir: str | Path, packages: list[str], share_root: str | Path, clips_per_track: int,
                     clip_seconds: float, sample_rate: int = 22050, knowledge: str = "relations",
                     name: str | None = None) -> tuple[Dataset, dict]:
    """Build the real-recordings dataset from the installed packages of ``packages``.

    Returns
    -------
    dataset : Dataset
        One row per clip; tracks without any proven tag (the band-without-guitar stem of a package whose
        texts prove nothing) are kept, with no positive.
    report : dict
        ``packages`` (name -> dpkg version, ``installed`` or the reason it is missing), ``left_out``
        (tracks or windows and why), ``clips`` (per package).

    Raises
    ------
    ParamError
        A package name :data:`PACKAGES` does not know.
    DataError
        None of the packages is installed (the message says how to install them).
    """
    out_dir, share_root = Path(out_dir), Path(share_root)
    unknown = [p for p in packages if p not in PACKAGES]
    if unknown:  # before anything is read
        raise ParamError(f"data.realmusic.packages: unknown package {unknown[0]!r}; known: {', '.join(PACKAGES)}")
    found, status = Found(), {}
    for pkg, folder in installed(packages, share_root, status, "data.realmusic.packages"):
        if pkg.adapt_only:
            status[pkg.name] += "; proves no tag: for data.unlabelled only"
        elif pkg.kind == "vorbis_genre":
            scan_vorbis_genre(pkg, folder, found, clips_per_track, clip_seconds)
        else:
            scan_fof_stems(pkg, folder, found, clips_per_track, clip_seconds, out_dir, sample_rate)
    if not found.records:
        raise _nothing_found("data.realmusic", packages, share_root, status)
    order = sorted(found.groups, key=lambda t: (found.groups[t], t))
    tags = pd.DataFrame({"tag": order, "group": [found.groups[t] for t in order]})
    meta = {"name": name or out_dir.name, "share_root": str(share_root), "packages": status,
            "licence": "per package: wesnoth-1.16-music GPL-2+; Frets on Fire songs CC BY-SA 3.0 "
                       "(/usr/share/doc/<package>/copyright)",
            "labels": "only what the packages prove; provenance.csv gives the evidence of each positive"}
    records = found.records
    ds = assemble(out_dir, records, tags, meta, "realmusic")
    write_csv(out_dir / "provenance.csv", pd.DataFrame(found.evidence, columns=["track_id", "tag", "evidence"]))
    known = {t: g for t, g in found.groups.items() if g in ("instrument", "family", "excitation")}
    write_csv(out_dir / "knowledge.csv", knowledge_table(known, knowledge).reset_index())
    write_csv(out_dir / "descriptions.csv", descriptions(known))
    per_package = pd.Series([r.meta["package"] for r in records]).value_counts().to_dict()
    report = {"packages": status, "left_out": found.left_out, "clips": per_package}
    write_json(out_dir / "packages.json", report)
    return ds, report


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    return import_realmusic(out_dir, list(p["packages"]), p["share_root"], p["clips_per_track"],
                            p["clip_seconds"], p["sample_rate"], p["knowledge"], name=name)
