"""Losses of the joint model.

- ``hinge`` (the paper): ``sum_b sum_k max(0, margin - cos(a_b, p_b) + cos(a_b, n_bk))``, summed as
  the original.
- ``contrastive``: softmax cross-entropy over all X tags (the track's other positives masked),
  temperature ``temperature``, summed.

The classifier uses binary cross-entropy (in :mod:`zslkit.model.trainer`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_loss(scores: torch.Tensor, margin: float = 0.4) -> torch.Tensor:
    """Summed hinge loss; ``scores[:, 0]`` is the positive, ``scores[:, 1:]`` the negatives."""
    return F.relu(margin - scores[:, :1] + scores[:, 1:]).sum()


def contrastive_loss(scores: torch.Tensor, pos: torch.Tensor, positives: torch.Tensor,
                     temperature: float = 0.1) -> torch.Tensor:
    """Summed softmax cross-entropy over all X tags; the track's other positives are masked."""
    logits = scores / temperature
    others = positives.clone()
    others[torch.arange(len(pos)), pos] = False
    logits = logits.masked_fill(others, float("-inf"))
    return F.cross_entropy(logits, pos, reduction="sum")
