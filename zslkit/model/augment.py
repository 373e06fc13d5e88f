"""Training-time augmentation (``train.augment``): masks, gain, tilt and mixup of training batches.

The bundled m21 clips are dry renders of one timbre bank; real recordings come louder or softer, through
other microphones, rooms and mixes. These augmentations show the model some of that variety while it trains.
They are the built-in entries of the registry ``AUGMENTS`` (:mod:`zslkit.builtins`); docs/extending.md
shows how to add one.

Conventions
-----------
- An augmentation is a function ``f(batch, p, ctx, rng) -> batch``: ``batch`` a :class:`Batch` on the training
  device, ``p`` its item of ``train.augment`` (without ``name``, defaults filled in), ``ctx`` the
  :class:`Context`, ``rng`` a ``numpy.random.Generator`` of its own for this step (draw the per-segment
  numbers from it on the host, a few bytes; for large draws seed a ``torch.Generator`` on ``ctx.device`` from it).
- ``batch.x`` is ``(batch, segment_frames, n_mels)`` float32, time-major, **before** standardisation: the
  stored log-mels ``x = log10(1 + g * mel)`` of the magnitude mel spectrogram (``g = audio.log_gain``).
  ``g * mel = 10**x - 1`` (:func:`linear`), so a change of the magnitudes is computed exactly and
  logged back (:func:`relog`) whatever ``g`` is. ``pos (b,)`` and ``neg (b, K)`` are X indices (``K`` is 0
  for the contrastive loss and the classifier), ``positives (b, n_X)`` bool.
- The trainer (:class:`Augmenter`) applies the list in order to every training batch, after it reaches the
  device and before standardisation; validation batches are never augmented. ``rng`` is seeded by
  ``(train seed, step, position in the list, process rank)``: a run is reproducible, a resumed run goes on
  exactly as an uninterrupted one, and adding an augmentation does not change the draws of the others.
  Under ``torchrun`` each process augments its own rows (mixup partners come from its own rows).
- ``train.augment: []`` (the default) builds no :class:`Augmenter`: training is bit for bit what it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from ..registry import AUGMENTS

#: mixed into every augmentation's seed, so its stream differs from the batch sampling's
SEED_KEY = 0x617567
_LN10 = math.log(10.0)


class Batch(NamedTuple):
    """A training batch as the trainer's loss reads it (the order of :class:`zslkit.model.sampling.BatchSource`'s)."""

    x: torch.Tensor          # (b, frames, n_mels) float32 log-mels, not standardised
    pos: torch.Tensor        # (b,) int64: the positive X tag of each segment
    neg: torch.Tensor        # (b, K) int64: its negative X tags (K = 0 without the hinge loss)
    positives: torch.Tensor  # (b, n_X) bool: every positive X tag of each segment


@dataclass(frozen=True)
class Context:
    """What an augmentation may need besides the batch.

    Parameters
    ----------
    device : torch.device
        The training device (where ``batch`` is).
    fill : float
        The standardisation mean: the value of a masked region (0 once standardised).
    sample_rate : int
        The mels' sample rate (for the bands' frequencies: :func:`band_hz`).
    """

    device: torch.device
    fill: float
    sample_rate: int


def linear(x: torch.Tensor) -> torch.Tensor:
    """``g * mel`` from log-mels ``x = log10(1 + g * mel)``."""
    return torch.expm1(x * _LN10)


def relog(m: torch.Tensor) -> torch.Tensor:
    """Log-mels ``log10(1 + m)`` of ``m = g * mel`` (the inverse of :func:`linear`)."""
    return torch.log1p(m.clamp_min(0.0)) / _LN10


def scale_db(x: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    """Log-mels whose magnitudes are scaled by ``db`` decibels (``db`` broadcasts against ``x``): an amplitude
    factor ``10**(db / 20)`` on the mel magnitudes, under the log."""
    return relog(linear(x) * torch.pow(10.0, db / 20.0))


@lru_cache(maxsize=8)
def band_hz(sample_rate: int, n_mels: int) -> np.ndarray:
    """Centre frequencies (Hz) of the Slaney mel bands of :func:`zslkit.data.audio.mel_filterbank`."""
    import librosa
    return librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]


def _uniform(rng: np.random.Generator, most: float, n: int, device) -> torch.Tensor:
    return torch.as_tensor(rng.uniform(-most, most, n), dtype=torch.float32, device=device)


# ----------------------------------------------------------------------------- the built-in augmentations

def specaugment(batch: Batch, p: Mapping[str, Any], ctx: Context, rng: np.random.Generator) -> Batch:
    """SpecAugment's masks (Park et al. 2019): per segment, ``time_masks`` runs of frames and ``freq_masks``
    runs of mel bands, each ``w ~ U{0..width}`` wide at a uniform start, set to ``ctx.fill`` (0 once
    standardised)."""
    x = batch.x
    b = len(x)
    for axis, n, width in ((1, p["time_masks"], p["time_width"]), (2, p["freq_masks"], p["freq_width"])):
        size = x.shape[axis]
        if n == 0 or width == 0:
            continue
        w = rng.integers(0, min(width, size) + 1, (b, n))
        start = (rng.random((b, n)) * (size - w + 1)).astype(np.int64)
        start, stop = (torch.as_tensor(a, device=x.device) for a in (start, start + w))
        at = torch.arange(size, device=x.device)
        hit = ((at >= start[..., None]) & (at < stop[..., None])).any(dim=1)  # (b, size)
        x = x.masked_fill(hit[:, :, None] if axis == 1 else hit[:, None, :], ctx.fill)
    return batch._replace(x=x)


def gain(batch: Batch, p: Mapping[str, Any], ctx: Context, rng: np.random.Generator) -> Batch:
    """A gain of ``U(-db, db)`` decibels per segment, on the mel magnitudes (not added to the logs: the front
    end is ``log10(1 + g * mel)``, where a gain is no constant)."""
    db = _uniform(rng, p["db"], len(batch.x), batch.x.device)
    return batch._replace(x=scale_db(batch.x, db[:, None, None]))


def tilt(batch: Batch, p: Mapping[str, Any], ctx: Context, rng: np.random.Generator) -> Batch:
    """A spectral tilt of ``U(-db_per_octave, db_per_octave)`` decibels per octave per segment: band ``m``
    (centre ``f_m``, taken as at least 20 Hz) is scaled by ``slope * log2(f_m / pivot_hz)`` dB, on the magnitudes."""
    x = batch.x
    octaves = np.log2(np.maximum(band_hz(ctx.sample_rate, x.shape[2]), 20.0) / p["pivot_hz"])
    octaves = torch.as_tensor(octaves, dtype=torch.float32, device=x.device)
    slope = _uniform(rng, p["db_per_octave"], len(x), x.device)
    return batch._replace(x=scale_db(x, slope[:, None, None] * octaves[None, None, :]))


def mixup(batch: Batch, p: Mapping[str, Any], ctx: Context, rng: np.random.Generator) -> Batch:
    """Each segment, with probability ``p``, mixed with a partner drawn from the batch (a random permutation):
    mel magnitudes ``w * a + (1 - w) * b`` (as the sum of the two recordings, scaled), ``w`` from
    ``Beta(alpha, alpha)`` scaled into ``min_weight..1 - min_weight``.

    The mix's positives are the union of both tracks' (the classifier's targets too). Its positive tag is
    the segment's own with probability ``w``, else the partner's (each already a uniform draw from that
    track's tags); its ``K`` negatives are drawn again among the tags positive for neither, so no tag of
    either track stays a negative. A segment whose union leaves fewer than ``K`` negatives is not mixed.
    """
    x, pos, neg, positives = batch
    b, dev = len(x), x.device
    order = rng.permutation(b)
    weight = p["min_weight"] + (1 - 2 * p["min_weight"]) * rng.beta(p["alpha"], p["alpha"], b)
    own_tag = rng.random(b) < weight
    chosen = (rng.random(b) < p["p"]) & (order != np.arange(b))
    partner = torch.as_tensor(order, device=dev)
    mixed = torch.as_tensor(chosen, device=dev)
    union = positives | positives[partner]
    k = neg.shape[1]
    if k:
        mixed &= (~union).sum(dim=1) >= k
        keys = torch.as_tensor(rng.random(positives.shape), dtype=torch.float32, device=dev)
        fresh = keys.masked_fill(union, math.inf).topk(k, dim=1, largest=False).indices
        neg = torch.where(mixed[:, None], fresh.to(neg.dtype), neg)
    rows = torch.as_tensor(np.flatnonzero(chosen), device=dev)  # only these are mixed (the magnitudes cost)
    w = torch.as_tensor(weight, dtype=torch.float32, device=dev)[rows, None, None]
    mix = relog(w * linear(x[rows]) + (1 - w) * linear(x[partner[rows]]))
    x = x.index_copy(0, rows, torch.where(mixed[rows, None, None], mix, x[rows]))
    pos = torch.where(mixed & ~torch.as_tensor(own_tag, device=dev), pos[partner], pos)
    positives = torch.where(mixed[:, None], union, positives)
    return Batch(x, pos, neg, positives)


# ----------------------------------------------------------------------------- the trainer's side

class Augmenter:
    """``train.augment``'s list applied to training batches, in order, on the training device.

    Parameters
    ----------
    items : sequence of mapping
        The resolved ``train.augment``: ``{"name": ..., its parameters}`` each.
    ctx : Context
    seed : int
        The training seed.
    rank : int
        This process's rank under ``torchrun`` (0 alone).
    """

    def __init__(self, items: Sequence[Mapping[str, Any]], ctx: Context, seed: int, rank: int = 0):
        self.ctx, self.seed, self.rank = ctx, int(seed), int(rank)
        self.steps = [(AUGMENTS[item["name"]].obj, {k: v for k, v in item.items() if k != "name"})
                      for item in items]

    def rng(self, step: int, position: int) -> np.random.Generator:
        """The generator of the ``position``-th augmentation at training step ``step``."""
        return np.random.default_rng([self.seed, SEED_KEY, int(step), position, self.rank])

    def __call__(self, batch: Sequence[torch.Tensor], step: int) -> tuple[torch.Tensor, ...]:
        """The augmented ``(x, pos, neg, positives)`` of training step ``step``, on ``ctx.device``; ``x`` float32
        log-mels, still to be standardised."""
        x, pos, neg, positives = (t.to(self.ctx.device, non_blocking=True) for t in batch)
        out = Batch(x.float(), pos, neg, positives.bool())
        for position, (fn, p) in enumerate(self.steps):
            out = fn(out, p, self.ctx, self.rng(step, position))
        return tuple(out)
