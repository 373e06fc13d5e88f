"""Training on a frozen backbone's cached features: the projection to the joint space, and where features come from.

A run whose ``model.encoder`` is a frozen backbone (:mod:`zslkit.data.features`) never runs the backbone in stage 03
or 04: stage 01 cached one vector per track. The trainable audio branch is :class:`FeatureProjection` (the
backbone's features, standardised per dimension with the training tracks' mean and deviation, then one linear
layer, or an MLP of ``model.projection`` hidden units, to the 100-d joint space). It keeps the encoder contract
(docs/extending.md) on "segments" of one frame: a track's features are a ``(1, dim)`` "mel"
(:class:`~zslkit.data.features.FeatureStore`), so the trainer's batch plans (one positive and K negatives per
track, seeded per batch), its losses, the classifier baseline, checkpoints and stage 04's averaging are the ones
of the CNN encoders.

A checkpoint's architecture records the backbone (``arch["backbone"]``: :meth:`Backbone.describe`), from which
stage 04, ``zslkit tag``, ``zslkit transfer`` and :mod:`zslkit.hear` find (or compute) the features of any audio.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..data.features import BackboneSpec, FeatureStore, compute_features, is_frozen
from ..data.prepare import track_windows
from ..errors import DataError, ParamError
from ..layout import DatasetLayout
from ..registry import ENCODERS
from .encoders import EMBED_DIM

#: the "segment" a frozen run trains and embeds on: one frame, the clip's vector
SEGMENT = 1


class FeatureProjection(nn.Module):
    """A backbone's features -> the joint space: ``(batch, frames, dim)`` -> ``(batch, 100)`` (module doc).

    Parameters
    ----------
    n_mels : int
        The features' dimension (named as the encoder contract names its input width).
    hidden : int, optional
        Hidden units of a two-layer MLP (ReLU); None: one linear layer.
    out_dim : int
    """

    min_frames = SEGMENT

    def __init__(self, n_mels: int, hidden: int | None = None, out_dim: int = EMBED_DIM):
        super().__init__()
        self.register_buffer("mu", torch.zeros(n_mels))
        self.register_buffer("sigma", torch.ones(n_mels))
        layers = [nn.Linear(n_mels, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)] if hidden else \
            [nn.Linear(n_mels, out_dim)]
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def set_standardisation(self, features: np.ndarray) -> None:
        """Per-dimension mean and deviation of ``features`` (the training tracks'); a constant dimension keeps 1."""
        x = np.asarray(features, dtype=np.float64)
        sd = x.std(axis=0)
        self.mu.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
        self.sigma.copy_(torch.as_tensor(np.where(sd > 1e-8, sd, 1.0), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.float().mean(dim=1) - self.mu) / self.sigma)

    def kernels(self) -> list[torch.Tensor]:
        """The linear layers' weights (what ``train.l2`` regularises)."""
        return [m.weight for m in self.net if isinstance(m, nn.Linear)]


class FeaturePack:
    """The features of a training setting's tracks as one array, with a melpack's ``crops`` (one-frame crops)."""

    def __init__(self, store: FeatureStore, track_ids):
        self.x = store.matrix(track_ids)

    def crops(self, idx: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        return self.x[idx][:, None, :]


def frozen_arch(arch: Mapping[str, Any]) -> bool:
    """True when a checkpoint's architecture is a projection on a frozen backbone's features."""
    return bool(arch.get("backbone"))


def supervised_record(arch: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a checkpoint's pretrained encoder was supervised on (``key``, ``supervised_on``, ...): a frozen
    backbone's ``arch["backbone"]`` or a fine-tuned one's ``arch["pretrained"]``; None for an encoder trained here."""
    return arch.get("backbone") or arch.get("pretrained")


def backbone_spec(arch_or_params: Mapping[str, Any]) -> BackboneSpec:
    """The backbone of a checkpoint's architecture (``arch["backbone"]``) or of resolved parameters."""
    if "backbone" in arch_or_params:
        return BackboneSpec.from_record(arch_or_params["backbone"], arch_or_params["backbone"].get("plugins", ()))
    return BackboneSpec.from_params(arch_or_params)


def dataset_features(ds, spec: BackboneSpec, params: Mapping[str, Any] | None = None, compute: bool = False,
                     progress: bool = False) -> FeatureStore:
    """The backbone's features of every track of ``ds`` (its cache, :meth:`DatasetLayout.features`).

    Parameters
    ----------
    ds : Dataset
    spec : BackboneSpec
    params : mapping, optional
        Resolved parameters: ``audio.max_duration``, ``min_duration``, ``scheduler`` and ``run.workers`` for a
        computation (default: their defaults, in this process).
    compute : bool
        Compute what the cache lacks (:func:`zslkit.data.features.compute_features`, resumable); else a missing
        cache is a :class:`DataError` naming stage 01.
    progress : bool
    """
    bb = spec.build()
    folder = DatasetLayout.at(ds.root).features(bb.key)
    if compute:
        a, run = (params or {}).get("audio", {}), (params or {}).get("run", {})
        compute_features([(t, str(ds.audio_path(t))) for t in ds.tracks.track_id], folder, spec,
                         max_duration=a.get("max_duration"), min_duration=a.get("min_duration", 1.0),
                         workers=run.get("workers", 1), progress=progress, windows=track_windows(ds),
                         scheduler=a.get("scheduler", "local"))
    elif not (folder / "features.npz").is_file():
        raise DataError(f"{folder}: no {bb.key} features of {ds.root.name}; stage 01 computes them when "
                        "model.encoder is a frozen backbone (rerun it)")
    return FeatureStore.from_dir(folder)


def track_store(ds, arch: Mapping[str, Any]):
    """Where a checkpoint's audio branch reads a dataset's tracks: its mels, or, on a frozen backbone, the
    backbone's cached features (:func:`dataset_features`)."""
    return dataset_features(ds, backbone_spec(arch)) if frozen_arch(arch) else ds.mels


def check_front_end(params: Mapping[str, Any]) -> bool:
    """True when ``model.encoder`` declares its own front end (registry flag ``front_end``: the ``audio`` settings its
    pretrained weights were trained on, e.g. ``musicnn_tuned``): its log-mels go in unstandardised. Refuses
    ``audio`` settings that differ, naming each."""
    encoder = params["model"]["encoder"]
    front = ENCODERS[encoder].flags.get("front_end")
    if not front:
        return False
    wrong = {k: v for k, v in front.items() if params["audio"][k] != v}
    if wrong:
        raise ParamError(f"model.encoder {encoder!r} reads the log-mels of its pretrained front end; set "
                         + ", ".join(f"audio.{k}: {v} (not {params['audio'][k]})" for k, v in wrong.items())
                         + " (stage 01 computes the dataset's mels with them)")
    return True


def check_encoder(params: Mapping[str, Any]) -> bool:
    """True when ``model.encoder`` is a frozen backbone; refuses the options that only a mel encoder can take."""
    if not is_frozen(params["model"]["encoder"]):
        return False
    if params["train"]["finetune"] is not None:
        raise ParamError(f"train.finetune: {params['train']['finetune']}; model.encoder {params['model']['encoder']!r} "
                         "is frozen (a projection of features cached once); to train musicnn's own weights use "
                         "model.encoder: musicnn_tuned on its front end (docs/models.md), or set train.finetune: null")
    if params["train"]["augment"]:
        raise ParamError("train.augment: augmentations change log-mel batches, and a frozen backbone "
                         f"({params['model']['encoder']!r}) trains on features computed once from the audio; "
                         "set train.augment: []")
    return True
