"""``model.encoder: musicnn_tuned``: the musicnn port fine-tuned, a trainable encoder on musicnn's own front end.

Where ``model.encoder: musicnn`` keeps the pretrained network frozen and trains a projection of features cached once,
this encoder trains the whole network with the joint model: the pretrained layers up to ``bn_dense`` (200-d), then
one linear layer to the 100-d joint space. It reads log-mel segments from the dataset's mel store like the paper's
CNN, so every stage, ``zslkit tag``, ``transfer`` and :mod:`zslkit.hear` treat it as any encoder; its mels must be
musicnn's front end (its registry flag ``front_end``: 16 kHz, 512-point FFT, hop 256, 96 Slaney bands,
``log10(1 + 10000 x)``),
which training checks, and they are fed as they are (a pretrained network was trained on raw log-mels, so the
trainer does not standardise them).

- The pretrained weights learn at ``train.finetune`` (null: ``train.lr``; 0: kept as they are), the projection and
  the tag branch at ``train.lr``; the learning-rate schedule scales both alike.
- Batch norm keeps the pretrained running statistics (its layers stay in eval mode while training; their scale
  and shift still learn): batches of a few segments would otherwise replace them.
- ``train.l2`` applies to the projection only.
- What it was supervised on (:func:`supervised_on`) is recorded with every checkpoint (``arch["pretrained"]``), so
  stage 05 and transfer mark leaky unseen tags as for a frozen backbone.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ...errors import ParamError
from ...registry import ENCODERS
from ..encoders import EMBED_DIM
from . import musicnn


class MusicnnTuned(nn.Module):
    """musicnn's pretrained layers up to ``bn_dense`` and a linear projection: ``(batch, frames, 96)`` -> ``(batch,
    100)`` (module doc).

    Parameters
    ----------
    n_mels : int
        Must be 96 (musicnn's bands).
    variant : str
        ``MTT_musicnn`` or ``MSD_musicnn`` (the vgg variants take only 187-frame patches; ``model.musicnn`` has them
        frozen).
    out_dim : int
    """

    min_frames = 8

    def __init__(self, n_mels: int = musicnn.N_MELS, variant: str = "MTT_musicnn", out_dim: int = EMBED_DIM):
        super().__init__()
        if n_mels != musicnn.N_MELS:
            front = ENCODERS["musicnn_tuned"].flags["front_end"]
            raise ParamError(f"audio.n_mels: {n_mels}; model.encoder musicnn_tuned needs musicnn's front end: "
                             + ", ".join(f"audio.{k}: {v}" for k, v in front.items()))
        if variant not in musicnn.VARIANTS or not variant.endswith("_musicnn"):
            raise ParamError(f"model.musicnn_tuned.variant: {variant!r} is not one of MTT_musicnn, MSD_musicnn")
        self.variant = variant
        self.backbone = musicnn.load(variant, layer="bn_dense")
        self.projection = nn.Linear(self.backbone.embedding_size("bn_dense"), out_dim)
        nn.init.xavier_uniform_(self.projection.weight)
        nn.init.zeros_(self.projection.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(x))

    def train(self, mode: bool = True) -> "MusicnnTuned":
        super().train(mode)
        for m in self.backbone.modules():  # the pretrained running statistics stay (module doc)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def kernels(self) -> list[torch.Tensor]:
        """What ``train.l2`` regularises: the projection's weight."""
        return [self.projection.weight]

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The weights read from musicnn's checkpoint (they learn at ``train.finetune``)."""
        return list(self.backbone.parameters())

    @staticmethod
    def supervised_on(section: Mapping[str, Any]) -> dict[str, Any]:
        """``{"key", "supervised_on"}`` of the encoder built from its section ``model.musicnn_tuned``."""
        variant = section.get("variant", "MTT_musicnn")
        return {"key": f"musicnn-{variant}-tuned", "supervised_on": musicnn.supervised_on(variant)}
