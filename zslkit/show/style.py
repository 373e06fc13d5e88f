"""How the report pages and figures write a model and a number: one colour per model, the same on every
page and in every figure of every run; the side information a model label stands on; p-values a reader
reads at once. Light (no torch, no notebook machinery): the runner's index page uses it too.

A model's colour is a function of its ``model`` label in ``results.csv`` alone (``"embedding glove"``,
``"embedding table ridge"``, ``"embedding random@1 conse"``, ``"embedding random, 2 draws"``,
``"classifier"``), never of the order in which a plot meets it, so GloVe is the same blue in notebook
03's curves, notebook 06's bars and ``index.html``:

- the **side-information kind** gives the hue (GloVe blue, the knowledge table green, sentence vectors
  purple, attributes orange, the original vectors teal, random vectors red; any other kind a hue drawn
  from its name);
- the **zero-shot head** gives lightness and saturation (the learned head strong, ConSE light, ridge
  dark, ESZSL greyed), and :func:`model_hatch` a hatch for bars, so heads differ without colour too;
- a **draw** of a control (``random@1``) turns the hue a step; a control's summary over draws
  (``", 2 draws"``) has the colour of its first draw; the classifier is near-black.

Labels that follow none of these patterns (a sweep's ``"embedding glove · jamendo"`` is read by its
part before ``" · "``) get a colour drawn from their name.
"""
from __future__ import annotations

import colorsys
import hashlib
import math
import re
from typing import Iterable

#: hue of each side-information kind (0-1 around the colour wheel)
KIND_HUES = {"glove": 0.60, "table": 0.36, "sentence": 0.77, "attributes": 0.09, "original": 0.50,
             "random": 0.95}
#: per head: (hue shift, lightness, saturation)
HEAD_TONES = {"learned": (0.0, 0.40, 0.85), "conse": (0.03, 0.68, 0.80), "ridge": (-0.03, 0.26, 0.75),
              "eszsl": (0.06, 0.55, 0.35)}
HEAD_HATCHES = {"learned": "", "conse": "//", "ridge": "..", "eszsl": "xx"}
DRAW_STEP = 0.06  # hue turn per control draw
CLASSIFIER = "#333333"
_LABEL = re.compile(r"^embedding (?P<kind>[^\s@,]+)(?:@(?P<draw>\d+))?(?: (?P<head>[^\s,]+))?$")


def _unit(text: str) -> float:
    """A number in [0, 1) drawn from ``text`` (the same on every machine and Python run)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 2 ** 32


def _hex(hue: float, lightness: float, saturation: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def parse(label: str) -> tuple[str | None, int, str]:
    """``(kind, draw, head)`` of a model label; kind None when it is not ``embedding <kind>...``."""
    base = re.sub(r", \d+ draws?$", "", str(label).split(" · ")[0].strip())
    m = _LABEL.match(base)
    if not m:
        return None, 0, "learned"
    return m["kind"], int(m["draw"] or 0), m["head"] or "learned"


def model_colour(label: str) -> str:
    """The colour (``"#rrggbb"``) of a model label (module doc)."""
    base = re.sub(r", \d+ draws?$", "", str(label).split(" · ")[0].strip())
    if base == "classifier":
        return CLASSIFIER
    kind, draw, head = parse(base)
    if kind is None:
        return _hex(_unit(base), 0.45, 0.60)
    hue = KIND_HUES.get(kind, _unit(kind)) + DRAW_STEP * draw
    shift, lightness, saturation = HEAD_TONES.get(head, (_unit(head) * 0.1, 0.50, 0.50))
    return _hex(hue + shift, lightness, saturation)


def model_colours(labels: Iterable[str]) -> dict[str, str]:
    """``{label: colour}`` for several labels (:func:`model_colour` each)."""
    return {label: model_colour(label) for label in dict.fromkeys(labels)}


def model_hatch(label: str) -> str:
    """A matplotlib hatch for a model's bars: empty for the learned head, one pattern per other head."""
    return HEAD_HATCHES.get(parse(label)[2], "--")


def swatch(label: str) -> str:
    """A small HTML square in the model's colour, for tables in the report pages."""
    return (f'<span class="swatch" style="display:inline-block;width:0.8em;height:0.8em;margin-right:0.4em;'
            f'vertical-align:-0.05em;background:{model_colour(label)}"></span>')


def side_of(model: str) -> str:
    """The side information a ``model`` label of ``results.csv`` stands on: ``"glove"`` for ``"embedding glove
    ridge"``, ``"random"`` for ``"embedding random@1 conse"`` and ``"embedding random, 2 draws"`` (every
    draw with its kind), ``"classifier"`` for the classifier; the label itself for anything else."""
    kind = parse(model)[0]
    return kind if kind is not None else str(model)


def format_p(p: float | None) -> str:
    """A p-value for reading: three decimals from 0.001 up (``0.018``), else one decimal and a short
    exponent (``4.0e-4``; the permutation test's smallest with 10,000 permutations, 1/10,001, reads
    ``1.0e-4``); empty for a missing value."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    p = float(p)
    if p >= 0.001:
        return f"{p:.3f}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"
