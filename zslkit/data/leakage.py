"""Leakage: unseen tags a pretrained backbone was taught, and runs on the backbone's own training corpus.

A frozen backbone (:mod:`zslkit.data.features`) declares what it was supervised on (:class:`SupervisedOn`: its tag
vocabulary and its datasets). An unseen (Y) tag it was trained to recognise is *leaky*: its "zero-shot" number
measures supervised recognition. Stage 02 marks them (:func:`mark_split`, saved beside the split as
``splits/<split>/leakage/<backbone>.json``); stage 05 scores every unseen-tag setting again on the non-leaky ones
(``test_setting`` suffix ``non-leaky``); transfer marks leaky target tags.

A tag is leaky when, after :func:`normalise` (lower case; ``-``, ``_`` and runs of spaces as one space), it equals a
term of the vocabulary or shares a group of :data:`SYNONYMS` with one. The list is small on purpose, and written
for the vocabularies of the backbones zslkit ships (musicnn's MagnaTagATune and Million Song Dataset tags); a tag it
misses is counted as non-leaky, so read the list when you bring another backbone.

A run whose dataset is the backbone's own training corpus (``data.source: mtat`` under a musicnn MTT variant; the
Million Song Dataset, ``data.source: seed`` with ``data.seed.dataset: msd``, under an MSD variant) scores the
backbone on clips it was trained on: stage 01 warns (:func:`corpus_warnings`), and records it in ``results.csv``.
Known overlaps between corpora (:data:`KNOWN_OVERLAPS`) get a warning too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..io import read_json, write_json
from ..layout import DatasetLayout
from ..plan import non_leaky_setting_name
from ..registry import ENCODERS
from .features import BackboneSpec, SupervisedOn, is_frozen

#: groups of tag texts taken as the same tag (after :func:`normalise`); plural forms are listed, not derived
SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in (
    {"choir", "choral", "chorus", "choirs"},
    {"vocal", "vocals", "voice", "voices", "singing"},
    {"male vocal", "male vocals", "male voice", "male vocalist", "male vocalists", "male singer"},
    {"female vocal", "female vocals", "female voice", "female vocalist", "female vocalists", "female singer"},
    {"no vocal", "no vocals", "no voice", "instrumental"},
    {"male", "man"},
    {"female", "woman"},
    {"classical", "classic"},
    {"beat", "beats"},
    {"drum", "drums"},
    {"string", "strings"},
    {"guitar", "guitars"},
    {"violin", "violins"},
    {"synth", "synthesizer", "synthesiser"},
    {"electronic", "electronica", "electro"},
    {"hip hop", "hiphop"},
    {"rnb", "r&b", "rhythm and blues"},
    {"chill", "chillout", "chill out"},
))

#: what a backbone's corpus (a key) shares with another dataset (``data.source``): the warning's text
KNOWN_OVERLAPS = {
    "msd": {"mtat": "1,807 MagnaTagATune test clips are Million Song Dataset tracks (a public leakage study)",
            "gtzan": "159 GTZAN test clips are Million Song Dataset tracks (a public leakage study)"},
}


def normalise(tag: str) -> str:
    """Lower case; ``-`` and ``_`` as spaces; runs of spaces as one; trimmed: ``"Hip-Hop" -> "hip hop"``."""
    return re.sub(r"\s+", " ", re.sub(r"[-_]", " ", str(tag).lower())).strip()


def _canonical() -> dict[str, int]:
    return {normalise(t): i for i, group in enumerate(SYNONYMS) for t in group}


def leaky_tags(tags: Iterable[str], vocabulary: Iterable[str]) -> dict[str, str]:
    """The tags of ``tags`` that a backbone supervised on ``vocabulary`` was taught (module doc).

    Returns
    -------
    dict
        ``{tag: the vocabulary term it matches}``, in the order of ``tags``.
    """
    group = _canonical()
    known: dict[Any, str] = {}
    for term in vocabulary:
        n = normalise(term)
        known.setdefault(n, term)
        if n in group:
            known.setdefault(group[n], term)
    out = {}
    for tag in tags:
        n = normalise(tag)
        hit = known.get(n, known.get(group.get(n, -1)))
        if hit is not None:
            out[tag] = hit
    return out


def corpus_of(params: Mapping[str, Any]) -> str | None:
    """The corpus a run's dataset comes from, named as backbones declare theirs: ``data.source`` (``mtat``,
    ``gtzan``, ``jamendo``, ``fma``, ``m21``), or for ``seed`` the original dataset (``msd``, ``fma``); None for a
    folder of your own."""
    data = params["data"]
    if data["source"] == "seed":
        return (data.get("seed") or {}).get("dataset") or "msd"
    return None if data["source"] == "folder" else data["source"]


def corpus_warnings(params: Mapping[str, Any], supervised_on: SupervisedOn, backbone: str) -> list[str]:
    """What stage 01 says when the run's dataset is the backbone's training corpus, or overlaps it."""
    corpus, out = corpus_of(params), []
    if corpus is None:
        return out
    for trained in SupervisedOn.of(supervised_on).datasets:
        if trained == corpus:
            out.append(f"the backbone {backbone} was trained on this dataset's corpus ({corpus}): its audio has heard "
                       f"these clips (and, for a shared tag, their labels); numbers on this dataset are not those of "
                       f"unheard audio")
        elif corpus in KNOWN_OVERLAPS.get(trained, {}):
            out.append(f"the backbone {backbone} was trained on {trained}, which overlaps this dataset ({corpus}): "
                       f"{KNOWN_OVERLAPS[trained][corpus]}")
    return out


def warning_rows(params: Mapping[str, Any], backbone: Mapping[str, Any], model: str,
                 train_setting: str | None = None) -> list[dict]:
    """:func:`corpus_warnings` of a backbone record (``key``, ``supervised_on``) as ``results.csv`` rows: ``task =
    leakage``, ``metric = warning``, the text in ``test_setting`` (what the report page shows)."""
    return [{"model": model, "train_setting": train_setting, "test_setting": w, "task": "leakage",
             "metric": "warning", "value": 1}
            for w in corpus_warnings(params, SupervisedOn.of(backbone["supervised_on"]), backbone["key"])]


@dataclass
class Leakage:
    """The unseen tags of a split that a backbone was supervised on.

    Attributes
    ----------
    backbone : str
        The backbone's key (:attr:`zslkit.data.features.Backbone.key`).
    supervised_on : SupervisedOn
    unseen : list of str
        The split's unseen tags.
    leaky : dict of str -> str
        Unseen tag -> the vocabulary term it matched (:func:`leaky_tags`).
    """

    backbone: str
    supervised_on: SupervisedOn
    unseen: list[str]
    leaky: dict[str, str] = field(default_factory=dict)

    @property
    def non_leaky(self) -> list[str]:
        return [t for t in self.unseen if t not in self.leaky]

    def as_dict(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "supervised_on": self.supervised_on.as_dict(), "unseen": self.unseen,
                "leaky": self.leaky, "synonyms": sorted(sorted(g) for g in SYNONYMS)}

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> "Leakage":
        return cls(record["backbone"], SupervisedOn.of(record["supervised_on"]), list(record["unseen"]),
                   dict(record["leaky"]))

    def notes(self) -> list[str]:
        """One line for the notebooks."""
        if not self.leaky:
            return [f"no unseen tag is in what the backbone {self.backbone} was supervised on"]
        pairs = ", ".join(t if t == v else f"{t} (as {v!r})" for t, v in self.leaky.items())
        return [f"{len(self.leaky)} of {len(self.unseen)} unseen tags are leaky (the backbone {self.backbone} was "
                f"supervised on them): {pairs}; stage 05 scores every unseen-tag setting also without them "
                f"('non-leaky')"]

    def results_rows(self, split: str) -> list[dict]:
        """Stage 02's rows for ``results.csv``: how many unseen tags are leaky, and which (in ``test_setting``)."""
        return [{"test_setting": f"split {split}", "task": "leakage", "model": self.backbone,
                 "metric": "n_leaky_unseen_tags", "value": len(self.leaky), "n": len(self.unseen)},
                *({"test_setting": t, "task": "leakage", "model": self.backbone, "metric": "leaky unseen tag",
                   "labels": v, "value": 1} for t, v in self.leaky.items())]


def mark_split(dataset_root, split_name: str, unseen: Sequence[str], backbone: Mapping[str, Any]) -> Leakage:
    """Mark the unseen tags a backbone was supervised on and save the record beside the split.

    Parameters
    ----------
    dataset_root : path
    split_name : str
    unseen : sequence of str
        The split's unseen tags.
    backbone : mapping
        :meth:`zslkit.data.features.Backbone.describe` (``key``, ``supervised_on``).
    """
    on = SupervisedOn.of(backbone["supervised_on"])
    out = Leakage(backbone["key"], on, list(unseen), leaky_tags(unseen, on.tags))
    write_json(DatasetLayout.at(dataset_root).leakage(split_name, out.backbone), out.as_dict())
    return out


def of_split(dataset_root, split_name: str, unseen: Sequence[str], backbone: Mapping[str, Any]) -> Leakage:
    """Stage 02's record for this backbone and split when it matches (same unseen tags and vocabulary), else
    marked now (:func:`mark_split`): a run whose encoder changed after stage 02 gets the same answer."""
    path = DatasetLayout.at(dataset_root).leakage(split_name, backbone["key"])
    if path.is_file():
        record = Leakage.of(read_json(path))
        if record.unseen == list(unseen) and record.supervised_on == SupervisedOn.of(backbone["supervised_on"]):
            return record
    return mark_split(dataset_root, split_name, unseen, backbone)


def for_run(ds, split, params: Mapping[str, Any]) -> Leakage | None:
    """Stage 02: the run's frozen backbone (``model.encoder``), or pretrained encoder trained further (registry flag
    ``pretrained``: its class's ``supervised_on(section)``), against the split's unseen tags, marked and saved
    (:func:`mark_split`); None for an encoder trained here from nothing."""
    encoder = params["model"]["encoder"]
    if ENCODERS[encoder].flags.get("pretrained"):
        record = ENCODERS[encoder].obj.supervised_on(params["model"][encoder])
        return mark_split(ds.root, split.name, split.unseen,
                          {"key": record["key"], "supervised_on": SupervisedOn.of(record["supervised_on"]).as_dict()})
    if not is_frozen(encoder):
        return None
    bb = BackboneSpec.from_params(params).build()
    return mark_split(ds.root, split.name, split.unseen,
                      {"key": bb.key, "supervised_on": SupervisedOn.of(bb.supervised_on).as_dict()})


def leakage_table(results: pd.DataFrame, setting: str = "(B+C)-Y") -> pd.DataFrame:
    """The headline on all unseen tags and on the non-leaky ones, per model: retrieval AUC-l and annotation AUC-i
    of ``setting`` (annotation labels), with the number of leaky unseen tags; empty for a run without a frozen
    backbone (no ``non-leaky`` rows).

    Parameters
    ----------
    results : DataFrame
        ``results.csv`` rows of stage 05.
    setting : str
    """
    r = results[results.labels == "annotation"] if "labels" in results else results
    rows = []
    for model in dict.fromkeys(r.model[r.test_setting == non_leaky_setting_name(setting)]):
        m = r[r.model == model]

        def value(test, task, metric):
            v = m.value[(m.test_setting == test) & (m.task == task) & (m.metric == metric)]
            return float(v.iloc[0]) if len(v) else float("nan")

        leaky = results[(results.model == model) & (results.task == "leakage")
                        & (results.metric == "n_leaky_unseen_tags")]
        rows.append({"model": model, "leaky unseen tags": int(leaky.value.iloc[0]) if len(leaky) else None,
                     f"{setting} AUC-l": value(setting, "retrieval", "AUC-l"),
                     f"{setting} AUC-l non-leaky": value(non_leaky_setting_name(setting), "retrieval", "AUC-l"),
                     f"{setting} AUC-i": value(setting, "annotation", "AUC-i"),
                     f"{setting} AUC-i non-leaky": value(non_leaky_setting_name(setting), "annotation", "AUC-i")})
    return pd.DataFrame(rows)
