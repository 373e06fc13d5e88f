"""Checkpoints: a trained model with everything needed to rebuild and use it.

A checkpoint (``best.pt``, ``last.pt``; read with ``weights_only=True``) holds the weights, the
model kind (``joint`` or ``classifier``), its architecture (encoder name and section, side-information
kind and dimension, tag-branch width, ``segment_frames``, ``n_mels``; on a frozen backbone also ``backbone``,
what :meth:`zslkit.data.features.Backbone.describe` says, and ``projection``), the seen tags in order, the
standardisation constants, the epoch and the digest of the training parameters; ``last.pt`` adds
the optimiser and the trainer's state.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import DataError, ParamError
from ..io import atomic_path
from ..registry import ENCODERS
from .encoders import make_encoder
from .frozen import FeatureProjection, frozen_arch
from .networks import Classifier, JointModel, TagBranch

INFO = ("kind", "seen", "mean", "std", "epoch", "arch")


def build_model(kind: str, arch: Mapping[str, Any], n_seen: int, tag_dropout: float = 0.0) -> torch.nn.Module:
    """An untrained model of ``kind`` with the architecture ``arch`` (as stored in checkpoints); on a frozen
    backbone (``arch["backbone"]``) the audio branch is the projection of its features (:mod:`.frozen`).
    ``tag_dropout`` (``train.tag_dropout``) acts in training only, so a loaded checkpoint needs none."""
    if frozen_arch(arch):
        encoder = FeatureProjection(arch["n_mels"], hidden=arch.get("projection"))
    else:
        encoder = make_encoder(arch["encoder"], n_mels=arch["n_mels"], params=arch["encoder_params"])
    if kind == "joint":
        return JointModel(encoder, TagBranch(arch["side_dim"], hidden=arch["hidden"], dropout=tag_dropout))
    return Classifier(encoder, n_seen)


def save_checkpoint(path: Path, net: torch.nn.Module, kind: str, arch: Mapping[str, Any], seen: Sequence[str],
                    mean: float, std: float, epoch: int, digest: str, extra: Mapping[str, Any] | None = None) -> None:
    blob = {"model": net.state_dict(), "digest": digest, "kind": kind, "arch": dict(arch), "seen": list(seen),
            "mean": mean, "std": std, "epoch": epoch, **(extra or {})}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(blob, tmp)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """A trained model from ``best.pt`` or ``last.pt``, in eval mode.

    Returns ``(model, info)``; ``info`` has ``kind, seen, mean, std, epoch, arch``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found; run notebook 03 first")
    blob = torch.load(path, map_location=device, weights_only=True)
    if "arch" not in blob:
        raise DataError(f"{path}: written by an older zslkit without the model's architecture; "
                        "retrain it (notebook 03)")
    net = build_model(blob["kind"], blob["arch"], len(blob["seen"]))
    try:
        net.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise ParamError(f"{path} does not fit its stored architecture {blob['arch']}: "
                         f"{str(exc).splitlines()[0]}") from None
    net.to(device).eval()
    return net, {k: blob[k] for k in INFO}


def arch_differences(arch: Mapping[str, Any], params: Mapping[str, Any],
                     sideinfo: str | None = None) -> dict[str, tuple[Any, Any]]:
    """``{"section.key": (in the checkpoint, in params)}`` for the parameters that shape the model and differ."""
    model = params["model"]
    wanted = {"model.encoder": (arch["encoder"], model["encoder"])}
    if frozen_arch(arch):  # a projection of a backbone's features: one "frame" a segment, whatever audio.* says
        wanted["model.projection"] = (arch.get("projection"), model["projection"])
    else:
        wanted["audio.segment_frames"] = (arch["segment_frames"], params["audio"]["segment_frames"])
    if arch["encoder"] == model["encoder"]:
        # a parameter added to the encoder since the checkpoint was written counts at its default
        stored = {**{k: f.default for k, f in ENCODERS[arch["encoder"]].params.items()}, **arch["encoder_params"]}
        wanted[f"model.{arch['encoder']}"] = (stored, dict(model[model["encoder"]]))
    if sideinfo is not None and arch.get("sideinfo") is not None:
        wanted["model.sideinfo"] = (arch["sideinfo"], sideinfo)
    if arch.get("sideinfo") is not None:  # the tag branch's width (the classifier has none)
        wanted["heads.learned.hidden"] = (arch["hidden"], params["heads"]["learned"]["hidden"])
    return {k: v for k, v in wanted.items() if v[0] != v[1]}


def check_fits(path: str | os.PathLike, arch: Mapping[str, Any], params: Mapping[str, Any],
               sideinfo: str | None = None, run_params: str | os.PathLike | None = None) -> None:
    """Raise :class:`ParamError` listing every model-shaping parameter where the checkpoint at ``path``
    and ``params`` differ (and, when given, where the run's ``params.yaml`` is)."""
    diff = arch_differences(arch, params, sideinfo)
    if diff:
        lines = "\n".join(f"  {k}: {a!r} in the checkpoint, {b!r} in these parameters" for k, (a, b) in diff.items())
        where = f"; the run's parameters are in {run_params}" if run_params else ""
        raise ParamError(f"{path} was trained with other parameters than these:\n{lines}\n"
                         f"use the run's parameter file, or retrain (notebook 03){where}")
