"""What a run contains: its models, their seeds and labels, and the paper's setting notation.

The plan is derived from the resolved parameters alone (no dataset, no checkpoint), so every stage
and the command line ask it the same question and get the same answer: stage 03 trains
:attr:`RunPlan.models`, stage 04 embeds them, stage 05 scores them, notebook 05 and transfer name them
by :attr:`ModelPlan.label`. It sits on the ground floor: it imports neither torch nor a stage.

Notation (the paper's)
----------------------
Tags: ``X`` seen, ``Y`` unseen. Tracks: ``A`` only X positives, ``B`` X and Y positives, ``C`` no X
positive. A training setting is one of ``A``, ``B``, ``AB`` (``train.setting``) and is written
``A-X``, ``B-X``, ``(A+B)-X``; a test setting joins a track set and a tag set the same way
(:func:`setting_name`): ``(B+C)-Y``, ``B-(X+Y)``. One spelling everywhere: ``results.csv``, tables,
report pages.

Model names and labels
----------------------
========================  ==========================  ==========================================
folder name (``name``)    ``label`` (results.csv)     what
========================  ==========================  ==========================================
``joint``                 ``embedding <sideinfo>``    the joint model on ``model.sideinfo``
``joint-<kind>``          ``embedding <kind>``        the same on each kind of ``train.also``
``classifier``            ``classifier``              the supervised baseline (``train.baseline``)
``joint-<control>[@d]``   ``embedding <control>[@d]`` a control kind of ``train.controls``, per draw
========================  ==========================  ==========================================

A zero-shot head other than the learned one adds its name to the label
(:meth:`ModelPlan.head_label`): ``embedding glove conse``. The supervised-source ConSE peer of stage 05
(``evaluate.source_conse``) is no model of the run; its label is ``supervised-source conse glove (MTT_musicnn)``
(:func:`source_conse_label`).

Side information the dataset cannot give
----------------------------------------
A kind of ``sideinfo.kinds`` that stage 02 cannot build for the dataset (m21's ``table`` on a folder
without ``knowledge.csv``), or that lacks a vector for a seen tag, is recorded there with its reason
(:func:`left_out_kinds`). Stages 02-05 build their plan with :meth:`RunPlan.of_run`, which leaves out the
models that would train on such a kind and says why (:attr:`RunPlan.left_out`), so the stages agree; when
the main model's kind (``model.sideinfo``) is the one left out, it raises a :class:`ParamError` that says
what to change.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ParamError
from .layout import DatasetLayout
from .registry import SIDEINFO

#: ``train.setting`` -> the paper's name of the training setting
TRAIN_SETTINGS = {"A": "A-X", "B": "B-X", "AB": "(A+B)-X"}


def setting_name(tracks: str, tags: str) -> str:
    """The paper's name of a track set scored on a tag set.

    Parameters
    ----------
    tracks : str
        ``"B"``, ``"B+C"``, ``"A+B+C"``, or a training setting's validation part (``"A_valid"``).
    tags : str
        ``"X"``, ``"Y"`` or ``"X+Y"``.

    Returns
    -------
    str
        ``("B+C", "X+Y") -> "(B+C)-(X+Y)"``; ``("A_valid", "X") -> "A-valid-X"``.
    """
    def wrap(s: str) -> str:
        return f"({s})" if "+" in s else s
    return f"{wrap(tracks.replace('_valid', '-valid'))}-{wrap(tags)}"


def train_setting_name(setting: str) -> str:
    """``"AB" -> "(A+B)-X"``: the paper's name of a ``train.setting``."""
    try:
        return TRAIN_SETTINGS[setting]
    except KeyError:
        raise ParamError(f"train.setting: {setting!r} is not one of {list(TRAIN_SETTINGS)}") from None


#: the sides of the shift (stage 05, ``task = "shift"``): held-out tracks, the others, and the difference
SHIFT_PARTS = ("held-out", "others", "held-out minus others")


def shift_setting_name(setting: str, part: str) -> str:
    """``("B-X", "held-out") -> "B-X held-out"``: a setting scored on one side of the shift (:data:`SHIFT_PARTS`)."""
    if part not in SHIFT_PARTS:
        raise ValueError(f"{part!r} is not one of {SHIFT_PARTS}")
    return f"{setting} {part}"


#: the suffix of a setting scored without the unseen tags a frozen backbone was supervised on (stage 05)
NON_LEAKY = "non-leaky"


def non_leaky_setting_name(setting: str) -> str:
    """``"(B+C)-Y" -> "(B+C)-Y non-leaky"``: a setting scored again without the leaky unseen tags
    (:mod:`zslkit.data.leakage`)."""
    return f"{setting} {NON_LEAKY}"


def head_label(label: str, head: str) -> str:
    """The ``model`` column of a model scored by a zero-shot head: ``"embedding glove conse"``; the
    learned head keeps the model's own label."""
    return label if head == "learned" else f"{label} {head}"


#: how the ``model`` label of the supervised-source peer begins (:func:`source_conse_label`)
SOURCE_PEER = "supervised-source"


def source_conse_label(source: str, kind: str) -> str:
    """The ``model`` column of the supervised-source ConSE peer (:mod:`zslkit.evaluate.source_conse`):
    ``("MTT_musicnn", "glove") -> "supervised-source conse glove (MTT_musicnn)"``. Never ``embedding ...``: it is
    no model of the run, and not zero-shot on the tags its source was supervised on."""
    return f"{SOURCE_PEER} conse {kind} ({source})"


def draws_label(control: str, head: str, n_draws: int) -> str:
    """The ``model`` column of a control's summary over its draws: ``"embedding random, 3 draws"``."""
    return f"{head_label(f'embedding {control}', head)}, {n_draws} draws"


def base_kind(name: str) -> str:
    """The registered side-information kind of a table name: ``random@2`` (draw 2) -> ``random``."""
    return name.split("@", 1)[0]


def draw_names(kind: str, sideinfo: Mapping[str, Any]) -> list[str]:
    """The table names of a kind: ``[kind]``, or ``[kind, kind@1, ...]`` for a kind with ``draws``.

    Parameters
    ----------
    kind : str
        A registered side-information kind.
    sideinfo : mapping
        The resolved ``sideinfo`` section (its ``<kind>.draws``, when the kind has draws).
    """
    draws = sideinfo.get(kind, {}).get("draws", 1)
    return [kind] + [f"{kind}@{d}" for d in range(1, draws)]


def left_out_kinds(params: Mapping[str, Any]) -> dict[str, str]:
    """The kinds of ``sideinfo.kinds`` that stage 02 found no model of the run can train on (not buildable for
    the dataset, or without a vector for a seen tag), and why (its ``<kind>.unavailable.json`` records beside
    the split's tables); empty before stage 02 has run.

    Parameters
    ----------
    params : mapping
        Resolved parameters (``run.data_dir``, ``data.name``, ``split.name``, ``sideinfo.kinds``).
    """
    layout = DatasetLayout.from_params(params)
    out = {}
    for kind in params["sideinfo"]["kinds"]:
        path = layout.sideinfo_unavailable(params["split"]["name"], kind)
        if path.is_file():
            out[kind] = str(json.loads(path.read_text(encoding="utf-8")).get("reason", "no reason recorded"))
    return out


@dataclass(frozen=True)
class ModelPlan:
    """One model of a run.

    Attributes
    ----------
    name : str
        Its folder under ``train/`` and the stem of ``embeddings/<name>.npz``.
    kind : str
        ``"joint"`` (joint embedding model) or ``"classifier"`` (supervised baseline).
    sideinfo : str or None
        The side-information table its tag branch reads (``"glove"``, ``"random@1"``); None for the
        classifier.
    control : str or None
        The control kind of ``train.controls`` it stands for (``"random"``), else None.
    seed : int
        Seed of initialisation and sampling (``train.seed``, or ``run.seed`` when that is null).
    label : str
        Its ``model`` column in ``results.csv``.
    """

    name: str
    kind: str
    sideinfo: str | None
    control: str | None
    seed: int
    label: str

    @property
    def is_joint(self) -> bool:
        return self.kind == "joint"

    def head_label(self, head: str) -> str:
        """The ``model`` column of this model scored by a zero-shot head (the learned head: :attr:`label`)."""
        return head_label(self.label, head)


@dataclass(frozen=True)
class RunPlan:
    """Every model a run trains, embeds and scores, in that order, and the setting they train on.

    Build it with :meth:`from_params`; index it by model name (``plan["joint"]``).
    """

    models: tuple[ModelPlan, ...]
    setting: str
    seed: int
    #: models the parameters ask for that this run cannot train, each with why (:meth:`of_run`)
    left_out: tuple[tuple[ModelPlan, str], ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, Any], unavailable: Mapping[str, str] | None = None) -> "RunPlan":
        """The plan of resolved parameters (:func:`zslkit.config.resolve`).

        Parameters
        ----------
        params : mapping
        unavailable : mapping of str -> str, optional
            Side-information kinds no model can train on, and why (:func:`left_out_kinds`): the models on
            them go to :attr:`left_out`.

        Raises
        ------
        ParamError
            ``model.sideinfo`` is one of ``unavailable`` (the message names the kinds that can be used).
        """
        tr = params["train"]
        seed = params["run"]["seed"] if tr["seed"] is None else tr["seed"]
        main = params["model"]["sideinfo"]
        unavailable = dict(unavailable or {})
        if main in unavailable:
            usable = [k for k in params["sideinfo"]["kinds"] if k not in unavailable
                      and k not in SIDEINFO.names(control=True)]
            raise ParamError(f"model.sideinfo: {main!r} is left out: {unavailable[main]}; "
                             + (f"or use one of {', '.join(repr(k) for k in usable)}, which were built"
                                if usable else "or add a kind such as 'sentence' to sideinfo.kinds and use it"))
        models = {"joint": ModelPlan("joint", "joint", main, None, seed, f"embedding {main}")}
        for kind in tr["also"]:
            if kind != main:
                models[f"joint-{kind}"] = ModelPlan(f"joint-{kind}", "joint", kind, None, seed, f"embedding {kind}")
        if tr["baseline"]:
            models["classifier"] = ModelPlan("classifier", "classifier", None, None, seed, "classifier")
        for control in tr["controls"]:
            for name in draw_names(control, params["sideinfo"]):
                if name != main:
                    models[f"joint-{name}"] = ModelPlan(f"joint-{name}", "joint", name, control, seed,
                                                        f"embedding {name}")
        kept = tuple(m for m in models.values() if not m.sideinfo or base_kind(m.sideinfo) not in unavailable)
        left_out = tuple((m, f"side information {base_kind(m.sideinfo)!r} is left out: "
                             f"{unavailable[base_kind(m.sideinfo)]}")
                         for m in models.values() if m not in kept)
        return cls(kept, tr["setting"], seed, left_out)

    @classmethod
    def of_run(cls, params: Mapping[str, Any]) -> "RunPlan":
        """The plan stages 03-05 follow: :meth:`from_params` less the models whose side information stage 02
        left out (:func:`left_out_kinds`; the models are listed in :attr:`left_out`)."""
        return cls.from_params(params, left_out_kinds(params))

    def notes(self) -> list[str]:
        """One sentence per model left out (:attr:`left_out`), for the notebooks."""
        return [f"{m.name} ({m.label}) is left out: {why}" for m, why in self.left_out]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def main(self) -> ModelPlan:
        """The run's main model (``joint``)."""
        return self["joint"]

    @property
    def train_setting(self) -> str:
        """The paper's name of the training setting (``"(A+B)-X"``)."""
        return train_setting_name(self.setting)

    def joint(self) -> list[ModelPlan]:
        """The joint models (every model but the classifier)."""
        return [m for m in self.models if m.is_joint]

    def controls(self) -> dict[str, list[ModelPlan]]:
        """Control kind -> its models (one per draw)."""
        out: dict[str, list[ModelPlan]] = {}
        for m in self.models:
            if m.control:
                out.setdefault(m.control, []).append(m)
        return out

    def sideinfo_kinds(self) -> list[str]:
        """The registered side-information kinds the run trains on (draws folded: ``random@1`` -> ``random``)."""
        return list(dict.fromkeys(base_kind(m.sideinfo) for m in self.models if m.sideinfo))

    def __getitem__(self, name: str) -> ModelPlan:
        for m in self.models:
            if m.name == name:
                return m
        raise ParamError(f"model {name!r} is not in this run; its models: {', '.join(self.names)}")

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)
