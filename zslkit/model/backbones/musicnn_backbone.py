"""``model.encoder: musicnn``: the musicnn port (:mod:`.musicnn`) as a frozen backbone (:mod:`zslkit.data.features`).

A clip's feature is the mean over its non-overlapping 3-s patches of one layer of a pretrained network
(``model.musicnn.variant``, ``model.musicnn.layer``; ``bn_dense``, 200-d, for the musicnn variants), computed
by :func:`.musicnn.embed_clips` from zslkit's 16-kHz decode. The weights are read from the installed musicnn wheel
the first time a clip is embedded, so building one (stage 02 asks what it was supervised on) costs nothing.

What it was supervised on: the MTT variants on MagnaTagATune's 50 tags (``data.source: mtat``), the MSD variants on
the Million Song Dataset's 50 Last.fm tags (``msd``: ``data.source: seed`` with ``data.seed.dataset: msd``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...data.features import Backbone, SupervisedOn
from ...errors import ParamError
from . import musicnn


class Musicnn(Backbone):
    """A pretrained musicnn network, frozen (module doc).

    Parameters
    ----------
    variant : str
        One of :data:`.musicnn.VARIANTS`.
    layer : str, optional
        Any layer of the variant's family (:data:`.musicnn.LAYERS`); None: ``bn_dense`` (musicnn) or ``pool5`` (vgg).
    batch : int
        3-s patches per forward pass.
    """

    sample_rate = musicnn.SAMPLE_RATE

    def __init__(self, variant: str = "MTT_musicnn", layer: str | None = None, batch: int = 64):
        if variant not in musicnn.VARIANTS:
            raise ParamError(f"model.musicnn.variant: {variant!r} is not one of {', '.join(musicnn.VARIANTS)}")
        family = variant.split("_")[1]
        layer = layer or musicnn.DEFAULT_LAYER[family]
        if layer not in musicnn.LAYERS[family]:
            raise ParamError(f"model.musicnn.layer: {layer!r} is not a layer of {variant}; its layers: "
                             f"{', '.join(musicnn.LAYERS[family])}")
        self.variant, self.layer, self.batch = variant, layer, int(batch)
        self.supervised_on = SupervisedOn.of(musicnn.supervised_on(variant))
        self._net = None

    @property
    def net(self):
        """The pretrained network (weights read on first use; ParamError saying how to install musicnn)."""
        if self._net is None:
            self._net = musicnn.load(self.variant, layer=self.layer)
        return self._net

    def load(self) -> None:
        _ = self.net

    @property
    def dim(self) -> int:
        return int(self.net.embedding_size(self.layer))

    @property
    def key(self) -> str:
        return f"musicnn-{self.variant}-{self.layer}"

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        emb, _ = musicnn.embed_clips(self.net, list(clips), self.sample_rate, layer=self.layer, batch_size=self.batch)
        return emb.astype(np.float32, copy=False)
