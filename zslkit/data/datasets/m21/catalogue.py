"""The m21 builder's knowledge, read from ``catalogue.yaml``: instruments, ensembles, forms,
annotation coverage and the music21 corpus repertories. Data, not code: extending m21's vocabulary
or repertories is an edit of that file.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ....errors import ParamError

CATALOGUE = Path(__file__).with_name("catalogue.yaml")


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int           # General MIDI program
    family: str | None     # None: no family tag
    lo: int                # comfortable MIDI range
    hi: int
    excitation: str | None = None   # bowed, plucked, struck, reed, blown, sung; None: no tag
    register: str = "middle"        # low, middle, high


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """The catalogue as a dict (read once)."""
    data = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    data["instruments"] = [Instrument(name, *spec) for name, spec in data["instruments"].items()]
    return data


def instruments() -> list[Instrument]:
    return load()["instruments"]


def repertories() -> dict[str, dict[str, Any]]:
    return load()["repertories"]


def repertory(name: str) -> dict[str, Any]:
    reps = repertories()
    if name not in reps:
        raise ParamError(f"data.m21.pieces: unknown repertory {name!r}; known: {', '.join(reps)}")
    return reps[name]


def shares() -> dict[str, float]:
    """Share of clips per repertory (renormalised over what is available)."""
    return {name: float(r["share"]) for name, r in repertories().items()}


def forms() -> dict[str, str]:
    return load()["forms"]


def ensembles() -> dict[int, str]:
    return load()["ensembles"]


def tempo_thresholds() -> tuple[float, float]:
    lo, hi = load()["tempo_thresholds"]
    return float(lo), float(hi)


def coverage() -> dict[str, float]:
    return dict(load()["coverage"])


def templates() -> dict[str, dict[str, Any]]:
    """Real ensembles: name -> ``{"tag", "play"}`` or ``{"tag", "pool", "size"}``."""
    return load()["ensemble_templates"]


def template_instruments(name: str) -> list[str]:
    """Every instrument an ensemble template can use."""
    t = templates()[name]
    return list(dict.fromkeys(t.get("play") or t["pool"]))


def form_styles() -> dict[str, list[str]]:
    return load()["form_styles"]


def origin_styles() -> dict[str, list[str]]:
    return load()["origin_styles"]


def instrument(name: str) -> Instrument:
    return {i.name: i for i in instruments()}[name]
