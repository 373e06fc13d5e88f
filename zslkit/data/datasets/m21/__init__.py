"""The embedded default dataset ``m21``: music21 scores rendered with General MIDI soundfonts.

Built offline, never downloaded, never committed as audio. Two cached stages:

1. **Symbolic** (:mod:`.corpus`, shared by every m21 dataset under ``run.data_dir/_m21_symbolic``):
   corpus pieces parsed once into MIDI files and a manifest of their metadata.
2. **Render** (:mod:`.plans`, :mod:`.render`): each clip gets a seeded plan and is rendered with
   tinysoundfont to ``audio/<clip_id>.flac``; a rebuild renders only missing clips. The plan holds the
   clip's timbre bank (:mod:`.banks`, one bank held out), its performance (:mod:`.performance`) and its
   production chain (:mod:`.production`), each drawn from the clip's own seed and recorded in ``tracks.csv``.

:mod:`.build` writes the dataset: the partial annotation (each group of a clip kept with
probability ``coverage[group]``) and the full truth in ``tracks.csv`` (``tags_full``); tags with
fewer than ``min_tag_count`` positive clips are dropped. The vocabulary, instruments and repertories
are data, in ``catalogue.yaml``.

The builder's knowledge of its tags becomes side information (:mod:`.knowledge`): ``knowledge.csv``
(tag x attribute, for the kind ``table``) and ``descriptions.csv`` (for ``sentence``).

Corpus licences: the Essen and Palestrina encodings are for non-commercial use (docs/datasets.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .. import Dataset
from . import catalogue
from .banks import soundfont_paths
from .build import build, default_caps, select_pieces
from .corpus import candidates, parse_piece
from .plans import ClipPlan, clip_tags, observed_tags, plan_clips
from .render import render_clip

__all__ = ["build", "default_caps", "select_pieces", "candidates", "parse_piece", "ClipPlan", "clip_tags",
           "observed_tags", "plan_clips", "render_clip", "soundfont_paths", "catalogue"]


def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    return build(out_dir, Path(run["data_dir"]) / "_m21_symbolic", p, seed=run["seed"], workers=run["workers"],
                 progress=run["progress"])
