"""Audio encoders: log-mel segments -> the joint space.

Encoders are registered in :data:`zslkit.registry.ENCODERS` (selected by ``model.encoder``, with
their own section ``model.<name>``). The contract every encoder keeps:

- it is a ``torch.nn.Module`` class built as ``cls(n_mels=n_mels, **section)``;
- ``forward(x)`` takes standardised log-mel segments ``(batch, frames, n_mels)``, time-major, with
  ``frames = audio.segment_frames`` (130 in the paper), and returns ``(batch, EMBED_DIM)``;
- ``min_frames`` (class attribute) is the shortest segment it accepts; training refuses a shorter
  ``audio.segment_frames``;
- ``kernels()`` returns the weight tensors the L2 regulariser (``train.l2``) applies to.

Built-in: ``paper`` (the paper's 1-D CNN over time: Conv1d 128-k4 -> max-pool 4 -> 128-k4 -> pool 4
-> 128-k4 -> pool 4 -> 128-k2 -> pool 2 -> 100-k1 linear, ReLU between, 'same' padding, He-uniform
kernels, zero biases, global average -> 100-d; 242,788 parameters), ``paper_bn`` (the same with
batch norm between each convolution and its ReLU) and ``shortchunk`` (a 2-D short-chunk CNN).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..builtins import INPUT_NORMS
from ..errors import ParamError
from ..registry import ENCODERS

EMBED_DIM = 100


class PaperEncoder(nn.Module):
    """The paper's 1-D CNN over time: ``(batch, frames, 128)`` -> ``(batch, 100)``."""

    min_frames = 128  # four poolings (4 * 4 * 4 * 2) must leave at least one frame

    def __init__(self, n_mels: int = 128, channels: int = 128, out_dim: int = EMBED_DIM,
                 batch_norm: bool = False, input_norm: str = "none"):
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ParamError(f"model.<encoder>.input_norm: {input_norm!r} is not one of {', '.join(INPUT_NORMS)}")
        self.input_norm = input_norm
        # option: per-band batch norm of the input (each mel band standardised by training-batch statistics)
        self.in_norm = nn.BatchNorm1d(n_mels) if input_norm == "band" else nn.Identity()
        spec = [(n_mels, channels, 4, 4), (channels, channels, 4, 4), (channels, channels, 4, 4),
                (channels, channels, 2, 2)]
        self.convs = nn.ModuleList(nn.Conv1d(i, o, k) for i, o, k, _ in spec)
        self.pools = [p for *_, p in spec]
        # Keras 'same' with an even kernel pads (k - 1) // 2 on the left and the rest on the right
        self.pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for _, _, k, _ in spec]
        # option (not the paper): batch norm between each convolution and its ReLU
        self.norms = nn.ModuleList(nn.BatchNorm1d(o) if batch_norm else nn.Identity() for _, o, _, _ in spec)
        self.out = nn.Conv1d(channels, out_dim, 1)
        for conv in [*self.convs, self.out]:
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # Keras he_uniform
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (batch, mels, frames)
        if self.input_norm == "segment":  # each band's mean over the segment removed: a static colouring cancels
            x = x - x.mean(dim=2, keepdim=True)
        x = self.in_norm(x)
        for conv, norm, pool, pad in zip(self.convs, self.norms, self.pools, self.pads):
            x = F.max_pool1d(F.relu(norm(conv(F.pad(x, pad)))), pool)
        return self.out(x).mean(dim=2)

    def kernels(self) -> list[torch.Tensor]:
        """Convolution kernels (the original's L2 regulariser applies to these only)."""
        return [c.weight for c in [*self.convs, self.out]]


class ShortChunkEncoder(nn.Module):
    """A stronger option: a 2-D short-chunk CNN (3x3 convs, batch norm, max-pool), GAP -> 100-d."""

    min_frames = 32  # five 2x2 poolings

    def __init__(self, n_mels: int = 128, width: int = 32, out_dim: int = EMBED_DIM):
        super().__init__()
        layers, c_in = [], 1
        for c_out in (width, width, 2 * width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.transpose(1, 2).unsqueeze(1))  # (batch, 1, mels, frames)
        return self.head(h.amax(dim=2).mean(dim=2))

    def kernels(self) -> list[torch.Tensor]:
        return [m.weight for m in self.body if isinstance(m, nn.Conv2d)]


class Paper(PaperEncoder):
    def __init__(self, n_mels: int = 128):
        super().__init__(n_mels)


class PaperBN(PaperEncoder):
    def __init__(self, n_mels: int = 128, channels: int = 128, input_norm: str = "none"):
        super().__init__(n_mels, channels=channels, batch_norm=True, input_norm=input_norm)


def make_encoder(name: str, n_mels: int = 128, params=None) -> nn.Module:
    """Build the registered encoder ``name`` with its section ``params`` (default: its defaults)."""
    entry = ENCODERS[name]
    params = {k: f.default for k, f in entry.params.items()} if params is None else dict(params)
    net = entry.obj(n_mels=n_mels, **params)
    for attr in ("min_frames", "kernels"):
        if not hasattr(net, attr):
            raise ParamError(f"model.encoder: {name!r} lacks {attr!r}, which every encoder must have")
    return net
