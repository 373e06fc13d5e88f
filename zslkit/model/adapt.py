"""Learning from real audio that has no labels: the ``train.adapt`` seam.

``train.adapt: coral`` adds, at every training step, the CORAL loss (Sun & Saenko, 2016) between the audio
encoder's embeddings of the training batch and of as many crops of real, unlabelled music (stage 01's
``data.unlabelled`` clips, :func:`zslkit.data.prepare.unlabelled_audio`): the squared Frobenius distance of the
two batches' feature covariances, over ``4 d^2``. It pulls the second-order statistics of rendered and recorded
audio together without any label of the real audio. The embeddings are taken as the cosine scores see them,
unit length, scaled by ``sqrt(d)`` (:func:`scaled_unit`): the raw embeddings' length is free under the cosine,
and shrinking it would zero the term without aligning anything. ``train.adapt_weight`` scales it; the loss is
summed over the batch like the task loss (``weight * batch * coral``). On the demo's trained encoder the term is
about 0.01 between a batch of renders and one of real crops (0.004 between two batches of renders), against a
contrastive task loss of 2 to 4 per segment: the default weight, 100, makes it about a third of the task loss.
Validation (early stopping, ``best.pt``) sees the task loss only.

The extra forward passes leave the encoder's batch-norm running statistics as the task step alone would leave
them (saved and restored around them): the model's statistics stay the training data's, and AdaBN at transfer
time (``transfer.adapt``) remains a separate choice.

Crops are drawn from a seeded generator keyed by ``(seed, step, rank)``, so a resumed run draws what an
uninterrupted one would.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.melstore import MelStore
from ..errors import DataError

#: a stream of the seeded generators, apart from the batch plan's and tag dropout's
ADAPT_KEY = 0xAD4
METHODS = ("none", "coral")


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CORAL: ``||C_s - C_t||_F^2 / (4 d^2)`` of two batches of features.

    Parameters
    ----------
    source, target : torch.Tensor [shape=(n_s, d), (n_t, d)]
        At least two rows each.

    Returns
    -------
    loss : torch.Tensor [shape=()]
    """
    d = source.shape[1]
    return ((torch.cov(source.T) - torch.cov(target.T)) ** 2).sum() / (4 * d * d)


def scaled_unit(embeddings: torch.Tensor) -> torch.Tensor:
    """The embeddings as the scores see them, L2-normalised (cosine), times ``sqrt(d)`` so that a feature's mean
    square is 1 on average: a length the cosine ignores cannot shrink the CORAL term."""
    return F.normalize(embeddings.float(), dim=1) * math.sqrt(embeddings.shape[1])


def crops(store: MelStore, track_ids: Sequence[str], n: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops of ``frames`` frames from the tracks (drawn with replacement; a track shorter than
    ``frames`` is tiled): ``np.ndarray [shape=(n, frames, n_mels), dtype=float32]``."""
    out = []
    for i in rng.integers(0, len(track_ids), size=n):
        mel = store[track_ids[i]]
        if len(mel) < frames:
            mel = np.tile(mel, (-(-frames // len(mel)), 1))
        start = int(rng.integers(0, len(mel) - frames + 1))
        out.append(np.asarray(mel[start:start + frames], dtype=np.float32))
    return np.stack(out)


class RealAudio:
    """Unlabelled real audio for one trainer: draws the crops of a step and gives the adaptation loss."""

    def __init__(self, store: MelStore, frames: int, batch: int, seed: int, rank: int, weight: float):
        self.ids = list(store.track_ids)
        if len(self.ids) < 2:
            raise DataError(f"train.adapt: the unlabelled audio has {len(self.ids)} clip(s) with a mel; it needs "
                            "at least two (data.unlabelled, stage 01)")
        self.store, self.frames, self.batch, self.seed, self.rank = store, frames, max(2, batch), seed, rank
        self.weight = float(weight)

    def batch_at(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, ADAPT_KEY, step, self.rank])
        return crops(self.store, self.ids, self.batch, self.frames, rng)

    def loss(self, encoder: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``weight * len(x) * coral(encoder(x), encoder(target))``, the encoder's batch-norm running statistics
        left as they were. ``x`` and ``target``: standardised segments on the encoder's device."""
        # momentum 0 leaves the running statistics as they are (restoring them afterwards would modify, in place,
        # tensors the backward pass still needs); the batch counter is put back
        norms = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                 and m.track_running_stats and m.running_mean is not None]
        saved = [(m.momentum, m.num_batches_tracked.item()) for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            value = coral_loss(scaled_unit(encoder(x)), scaled_unit(encoder(target)))
        finally:
            for m, (momentum, count) in zip(norms, saved):
                m.momentum = momentum
                m.num_batches_tracked.fill_(count)
        return self.weight * len(x) * value
