"""Feeding the training device: batches gathered where the model runs, or staged through pinned memory.

Conventions
-----------
- **device** feed: the setting's mel pack (:mod:`zslkit.data.melpack`) is copied once to the training
  device (float16, as stored) when it is at most ``train.device_pack_gb``; every batch's crops are then
  one gather on device tensors with the same row arithmetic as :meth:`zslkit.data.melpack.MelPack.crops`, so
  a batch holds exactly the values the host path gives. Only the batch plan (track positions, crop
  starts, positive and negative tags: a few KB, drawn on the host from the same seeds) crosses over.
- **host** feed: batches are built on the host (the main process or DataLoader workers) and, on
  CUDA, come through pinned memory and are copied with ``non_blocking=True`` so the copy overlaps
  the previous step.
- ``train.feed: auto`` picks device when the device is CUDA, ``train.pack`` is on and the pack fits
  the cap; host otherwise. ``device`` forces the gather on the training device (on CPU too: it is how
  the tests compare both paths), ``host`` forces the host path.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.melpack import MelPack
from ..errors import ParamError
from .sampling import BatchSource

CHUNK_BYTES = 256 * 2**20


class DevicePack:
    """A :class:`~zslkit.data.melpack.MelPack` held in device memory.

    Parameters
    ----------
    pack : the pack to copy
    device : where the frames go (``torch.device``)
    """

    def __init__(self, pack: MelPack, device: torch.device):
        self.device = device
        src = pack.frames  # a memory map: copied in chunks, so the host never holds a second full copy
        self.frames = torch.empty(src.shape, dtype=getattr(torch, src.dtype.name), device=device)
        step = max(1, CHUNK_BYTES // max(1, src.shape[1] * src.dtype.itemsize))
        for a in range(0, len(src), step):
            self.frames[a:a + step].copy_(torch.from_numpy(np.array(src[a:a + step])))
        self.offsets = torch.as_tensor(pack.offsets, device=device)
        self.n_frames = torch.as_tensor(pack.n_frames, device=device)

    @property
    def nbytes(self) -> int:
        return self.frames.numel() * self.frames.element_size()

    def crops(self, idx: np.ndarray | torch.Tensor, starts: np.ndarray, length: int) -> torch.Tensor:
        """Crops ``(len(idx), length, n_mels)`` on the device, equal to ``MelPack.crops``."""
        idx = torch.as_tensor(idx, dtype=torch.int64, device=self.device)
        starts = torch.as_tensor(starts, dtype=torch.int64, device=self.device)
        steps = torch.arange(length, device=self.device)
        rows = (starts[:, None] + steps) % self.n_frames[idx, None] + self.offsets[idx, None]
        return self.frames[rows.reshape(-1)].reshape(len(idx), length, -1)


class DeviceBatches:
    """The batches of a :class:`~zslkit.model.sampling.BatchSource`, crops gathered from a :class:`DevicePack`.

    Iterating yields the same ``(x, pos, neg, positives)`` tuples as the source (in the same order, for
    its current epoch), every tensor already on the device."""

    def __init__(self, source: BatchSource, pack: DevicePack):
        self.source, self.pack = source, pack
        self.positives = torch.as_tensor(source.tracks.positives, device=pack.device)

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        dev = self.pack.device
        for b in range(len(self.source)):
            idx, starts, pos, neg = self.source.local_plan((self.source.epoch, b))
            rows = torch.as_tensor(idx, dtype=torch.int64, device=dev)  # moved once, used twice
            yield (self.pack.crops(rows, starts, self.source.length), torch.as_tensor(pos, device=dev),
                   torch.as_tensor(neg, device=dev), self.positives[rows])


def choose_feed(feed: str, device: torch.device, pack: MelPack | None, cap_gb: float) -> str:
    """``"device"`` or ``"host"`` for ``train.feed`` (module doc); raises when ``device`` cannot be met."""
    size = 0 if pack is None else int(np.prod(pack.frames.shape)) * pack.frames.dtype.itemsize
    if feed == "device":
        if pack is None:
            raise ParamError("train.feed: 'device' needs train.pack: true (crops are gathered from the pack)")
        return "device"
    if feed == "host" or pack is None or device.type != "cuda":
        return "host"
    return "device" if size <= cap_gb * 1e9 else "host"
