"""The embedded default dataset ``m21``: music21 scores rendered with General MIDI soundfonts.

Built offline, never downloaded, never committed as audio. Two cached stages:

1. **Symbolic** (:mod:`.corpus`, shared by every m21 dataset under ``run.data_dir/_m21_symbolic``):
   corpus pieces parsed once into MIDI files and a manifest of their metadata.
2. **Render** (:mod:`.plans`, :mod:`.render`): each clip gets a seeded plan and is rendered with
   tinysoundfont to ``audio/<clip_id>.flac``; a rebuild renders only missing clips.

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

from ....registry import DATASETS, Field
from .. import Dataset
from . import catalogue
from .build import build, default_caps, select_pieces
from .corpus import candidates, parse_piece
from .plans import ClipPlan, clip_tags, observed_tags, plan_clips
from .render import render_clip, soundfont_paths

__all__ = ["build", "default_caps", "select_pieces", "candidates", "parse_piece", "ClipPlan", "clip_tags",
           "observed_tags", "plan_clips", "render_clip", "soundfont_paths", "catalogue"]

PARAMS = {
    "n_clips": Field("int", 2000, "clips to render", lo=10, hi=200_000),
    "clip_seconds": Field("float", 15.0, "length of each rendered clip", lo=3.1, hi=120),
    "sample_rate": Field("int", 22050, "rendering rate", lo=8000, hi=48000),
    "instrumentation": Field("str", "ensembles", "ensembles = real ensembles typical of each repertory (string "
                             "quartet, folk session, organ and choir ...; catalogue.yaml) with a share of free "
                             "draws; independent = instruments drawn uniformly whatever the piece (m21 before "
                             "zslkit 0.3)", choices=("ensembles", "independent")),
    "free_share": Field("float", 0.25, "share of clips whose instruments are drawn freely (ensembles mode)",
                        lo=0.0, hi=1.0),
    "instruments_per_clip": Field("list", [0.55, 0.33, 0.12], "probabilities of 1, 2, 3 instruments in a free "
                                  "draw", item="float",
                                  check=(lambda v: 1 <= len(v) <= 4 and all(p >= 0 for p in v)
                                         and abs(sum(v) - 1) < 1e-6, "1-4 non-negative probabilities summing to 1")),
    "coverage": Field("dict", catalogue.coverage(), "probability that a clip's annotation covers each tag group",
                      check=(lambda v: set(v) <= set(catalogue.coverage())
                             and all(isinstance(p, (int, float)) and 0 <= p <= 1 for p in v.values()),
                             f"keys from {sorted(catalogue.coverage())}, values in [0, 1]")),
    "min_tag_count": Field("int", 30, "tags with fewer positive clips are dropped", lo=1),
    "pieces": Field("dict", {}, "cap on pieces per repertory (overrides the profile)",
                    check=(lambda v: all(isinstance(n, int) and n >= 0 for n in v.values()),
                           "repertory: non-negative integer")),
    "soundfonts": Field("list", ["bundled"], "timbre banks: 'bundled' (TimGM6mb from pretty-midi), 'debian' "
                        "(any installed Debian GM bank), or .sf2/.sf3 paths", item="str"),
}


@DATASETS.register("m21", params=PARAMS, doc="the embedded default: music21 scores rendered offline")
def importer(out_dir: Path, p: Mapping[str, Any], run: Mapping[str, Any], name: str) -> tuple[Dataset, dict]:
    return build(out_dir, Path(run["data_dir"]) / "_m21_symbolic", p, seed=run["seed"], workers=run["workers"],
                 progress=run["progress"])
