"""Random vectors (``random``): the chance control.

Seeded N(0, 1) vectors with the dimension of the kind they stand in for. A model trained on them
should rank unseen tags at chance; ``train.controls: [random]`` trains that model beside the real
one and stage 05 tests it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import ParamError, SideInfoUnavailable
from .table import Context, SideInfo


def random_table(tags: Sequence[str], dim: int, seed: int = 0) -> SideInfo:
    """Seeded N(0, 1) vectors: the control baseline (unseen tags should score at chance)."""
    rng = np.random.default_rng(seed)
    return SideInfo("random", list(tags), rng.standard_normal((len(tags), dim)).astype(np.float32),
                    {"seed": seed, "distribution": "N(0, 1)"})


def build(ctx: Context, r: Mapping[str, Any]) -> SideInfo:
    dim = r["dim"] or (ctx.built[r["like"]].dim if r["like"] in ctx.built else None)
    if dim is None and r["like"] in ctx.unavailable:
        raise SideInfoUnavailable(f"sideinfo.random.like: {r['like']!r} is left out ({ctx.unavailable[r['like']]}); "
                                  "give sideinfo.random.dim or another like")
    if dim is None:
        raise ParamError(f"sideinfo.random.like: {r['like']!r} is not among the kinds built; "
                         "add it to sideinfo.kinds or give sideinfo.random.dim")
    return random_table(ctx.texts, dim, r["seed"])
