"""Zero-shot heads: how every tag, seen or unseen, gets a place in the joint space from its side
information.

Heads are registered in :data:`zslkit.registry.HEADS`, compared in stage 05 by
``evaluate.heads``, each with its own section ``heads.<name>``. A head is a function
``head(inp, params) -> (n_tags, d)`` tag embeddings, scored against track embeddings by cosine:

- ``inp`` is a :class:`HeadInput` built from one model's frozen embeddings (stage 04). What a head
  may fit on is seen-tag data only: ``inp.side[inp.seen]``, ``inp.learned[inp.seen]`` and the
  training tracks' seen labels. Unseen rows of ``inp.side`` are only to be mapped, never fitted;
  :func:`apply_head` checks that changing them changes no seen tag's output.
- Flag ``trained``: the head is learned with the audio encoder in stage 03 (the paper's tag
  branch); its section is read by training, and stage 04 stores its output.

Built-in: ``learned``, the paper's tag branch (a linear layer, or an MLP with ``hidden`` units).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .errors import DataError
from .registry import HEADS, Field


@dataclass
class HeadInput:
    """Frozen embeddings a head works from.

    Attributes
    ----------
    side : (n_tags, side_dim) float32, side information (X rows then Y rows; NaN rows have none)
    seen : (n_tags,) bool
    learned : (n_tags, d) float32, the trained tag branch applied to ``side``
    train_tracks : (n_train, d) float32, embeddings of the training tracks
    train_labels : (n_train, n_seen) bool, their seen-tag labels, columns in ``seen`` order
    """

    side: np.ndarray
    seen: np.ndarray
    learned: np.ndarray
    train_tracks: np.ndarray
    train_labels: np.ndarray


@HEADS.register("learned", params={"hidden": Field("int", None, "hidden width of an MLP tag branch; "
                                                   "null = linear (the paper)", nullable=True, lo=1)},
                trained=True, doc="the paper's tag branch, trained with the audio encoder")
def learned(inp: HeadInput, params: Mapping[str, Any]) -> np.ndarray:
    return inp.learned


def apply_head(name: str, inp: HeadInput, params: Mapping[str, Any]) -> np.ndarray:
    """Run head ``name`` and check its output shape and that unseen side information cannot reach
    the seen tags' output (a head that fits on unseen rows fails here)."""
    head: Callable = HEADS[name].obj
    out = np.asarray(head(inp, params), dtype=np.float32)
    if out.shape[0] != len(inp.side) or out.ndim != 2:
        raise DataError(f"head {name!r} returned shape {out.shape} for {len(inp.side)} tags")
    if (~inp.seen).any() and inp.seen.any():
        probe = HeadInput(inp.side.copy(), inp.seen, inp.learned, inp.train_tracks, inp.train_labels)
        rng = np.random.default_rng(0)
        probe.side[~inp.seen] = rng.standard_normal(probe.side[~inp.seen].shape).astype(np.float32)
        again = np.asarray(head(probe, params), dtype=np.float32)
        if not np.allclose(again[inp.seen], out[inp.seen], atol=1e-4, equal_nan=True):
            raise DataError(f"head {name!r} uses unseen tags' side information for seen tags: "
                            "it fits on unseen tags")
    return out
