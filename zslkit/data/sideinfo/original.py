"""The original project's own tag vectors (``original``), as imported by the ``seed`` importer.

The ``seed`` importer copies every ``data_tag_vector/<msd|fma>/*.p`` pickle (tag id -> vector) into
``<dataset>/sideinfo/original-<stem>.npz``. This kind lays one of them out in the dataset's tag
order: ``vectors`` names it by a short name (``glove``: the MSD GloVe 300-d vectors; ``random``:
the MSD or FMA random controls; ``inst_count`` / ``inst_conf``: the FMA instrument vectors) or by
its file stem. Tags the pickle lacks get NaN rows. The vectors exist for the dataset's tags only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import DataError, ParamError
from ...io import read_npz
from .table import Context, SideInfo

#: short name -> the original file stems it may stand for (MSD, FMA)
SHORT_NAMES = {
    "glove": ("ttr_ont_tag_1126_to_glove_dict",),
    "random": ("ttr_ont_tag_1126_to_random_dict", "genre_id_to_random_vector_dict"),
    "inst_count": ("genre_id_to_inst_posneg40_cnt_norm_dict",),
    "inst_conf": ("genre_id_to_inst_posneg40_conf_norm_dict",),
}


def available(dataset_root: str | Path) -> list[str]:
    """File stems of the original vectors imported into a dataset."""
    return sorted(p.stem[len("original-"):] for p in (Path(dataset_root) / "sideinfo").glob("original-*.npz"))


def original_table(texts: list[str], dataset_root: str | Path, vectors: str) -> SideInfo:
    """The imported vectors named ``vectors`` (short name or stem), rows in ``texts`` order."""
    have = available(dataset_root)
    stems = [s for s in SHORT_NAMES.get(vectors, (vectors,)) if s in have]
    if not stems:
        raise ParamError(f"sideinfo.original.vectors: {vectors!r} not found in {dataset_root}/sideinfo/ "
                         f"(imported: {', '.join(have) or 'none; import the dataset with data.source: seed'})")
    path = Path(dataset_root) / "sideinfo" / f"original-{stems[0]}.npz"
    z = read_npz(path, "original side information not found")
    row = {t: i for i, t in enumerate(z["tags"].tolist())}
    if not row:
        raise DataError(f"{path}: no vectors")
    out = np.full((len(texts), z["vectors"].shape[1]), np.nan, dtype=np.float32)
    for i, t in enumerate(texts):
        if t in row:
            out[i] = z["vectors"][row[t]]
    return SideInfo("original", list(texts), out, {"source": f"original project: {stems[0]}.p"})


def build(ctx: Context, p: Mapping[str, Any]) -> SideInfo:
    if ctx.dataset_root is None:
        raise ParamError("sideinfo.original: these vectors exist only for the dataset's tags")
    return original_table(ctx.texts, ctx.dataset_root, p["vectors"])
