"""Models around an audio encoder (:mod:`zslkit.model.encoders`): the tag branch, the joint embedding
model, the supervised classifier.

Conventions
-----------
- Tag branch: one linear layer from the side-information dimension to 100-d (Glorot-uniform,
  zero bias), or an MLP with one hidden ReLU layer (``heads.learned.hidden``); the same branch embeds
  positives, negatives and unseen tags. ``train.tag_dropout`` drops side-information entries while
  training only (no parameters, so checkpoints are the same shape with or without it).
- Score: cosine similarity between the audio and tag embeddings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import EMBED_DIM


class TagBranch(nn.Module):
    """Side-information vector -> joint space: linear (the paper) or a small MLP.

    ``dropout`` > 0 zeroes each input entry with that probability in training mode and scales the others by
    ``1 / (1 - dropout)``; in eval mode, and at 0, the input passes unchanged. The mask is drawn from a
    generator seeded with ``dropout_seed`` when it is set (the trainer sets it at every step, so a resumed run
    draws the masks an uninterrupted one would), else from torch's global generator.
    """

    def __init__(self, in_dim: int, out_dim: int = EMBED_DIM, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.dropout, self.dropout_seed = float(dropout), None
        if hidden:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        else:
            self.net = nn.Linear(in_dim, out_dim)
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout > 0:
            gen = None
            if self.dropout_seed is not None:
                gen = torch.Generator(device=v.device)
                gen.manual_seed(self.dropout_seed)
            keep = torch.rand(v.shape, generator=gen, device=v.device) >= self.dropout
            v = v * keep / (1 - self.dropout)
        return self.net(v)


class JointModel(nn.Module):
    """Audio encoder + tag branch, scored by cosine similarity."""

    def __init__(self, audio: nn.Module, tag: TagBranch):
        super().__init__()
        self.audio, self.tag = audio, tag

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        return self.audio(x)

    def embed_tags(self, v: torch.Tensor) -> torch.Tensor:
        return self.tag(v)

    def scores(self, x: torch.Tensor, tag_vectors: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each segment with each tag: ``(batch, n_tags)``."""
        a = F.normalize(self.embed_audio(x), dim=1)
        t = F.normalize(self.embed_tags(tag_vectors), dim=1)
        return a @ t.T

    def pair_scores(self, x: torch.Tensor, tag_vectors: torch.Tensor, tag_index: torch.Tensor) -> torch.Tensor:
        """Cosine of segment ``b`` with tags ``tag_index[b, j]``: ``(batch, 1 + K)``."""
        a = F.normalize(self.embed_audio(x), dim=1)
        t = F.normalize(self.embed_tags(tag_vectors), dim=1)
        return torch.einsum("bd,bkd->bk", a, t[tag_index])


class Classifier(nn.Module):
    """The supervised baseline: the same encoder with a sigmoid output over the seen tags."""

    def __init__(self, audio: nn.Module, n_tags: int):
        super().__init__()
        self.audio = audio
        self.out = nn.Linear(EMBED_DIM, n_tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.audio(x))  # logits; BCEWithLogitsLoss applies the sigmoid


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
