"""A trained run as a HEAR 2021 module, so that hear-eval-kit, MARBLE or zslkit itself can evaluate its encoder.

The HEAR API (Turian et al., "HEAR: Holistic Evaluation of Audio Representations") asks a module for
``load_model(model_file_path)``, and of the model it returns ``sample_rate``, ``scene_embedding_size`` and
``timestamp_embedding_size``, with ``get_scene_embeddings(audio, model)`` and ``get_timestamp_embeddings(audio,
model)``. Here the model file is a run folder (or one checkpoint in it), and the embeddings are the run's
*joint space*: the audio branch's 100-d output, where the run scores tags by cosine::

    import zslkit.hear as hear
    model = hear.load_model("reports/demo")                  # train/joint/best.pt of the run
    scene = hear.get_scene_embeddings(audio, model)          # audio: (n_sounds, n_samples) at model.sample_rate
    frames, ms = hear.get_timestamp_embeddings(audio, model)

- A run trained on log-mels (``paper``, ``paper_bn``, ``shortchunk``): ``sample_rate`` is the run's
  ``audio.sample_rate``; a sound's log-mel (the run's front end, in float16 as stored) is cut into the run's
  segments, each standardised with the checkpoint's constants, and the scene embedding is the mean of the segment
  embeddings (:func:`zslkit.model.inference.track_embeddings`: exactly what stage 04 computes for a track). A timestamp
  embedding is the segment centred on a frame (the log-mel padded with silence at both ends), every
  ``hop_ms`` milliseconds (50 by default, HEAR's largest hop), timestamps the centres in milliseconds.
- A run on a frozen backbone (``model.encoder: musicnn``, ``hear``): ``sample_rate`` is the backbone's; the scene
  embedding is the projection of the backbone's vector of the sound (what stage 04 computes from the cached
  features); a timestamp embedding is that of the ``window_s`` seconds centred on the timestamp (silence beyond
  the ends).

So ``model.encoder: hear`` with ``model.hear.module: zslkit.hear`` and ``weights: reports/<run>`` uses one run's
joint space as the frozen backbone of another (tests/test_backbones.py does).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.audio import MelSpec, logmel
from .errors import DataError, ParamError
from .layout import RunLayout
from .model.checkpoints import load_checkpoint
from .model.encoders import EMBED_DIM
from .model.frozen import backbone_spec, frozen_arch
from .model.inference import segments, standardise, track_embeddings
from .tagging import source_params

__all__ = ["load_model", "get_scene_embeddings", "get_timestamp_embeddings", "RunEncoder"]


class RunEncoder(nn.Module):
    """A run's joint-space audio encoder with the HEAR attributes (module doc).

    Attributes
    ----------
    audio : nn.Module
        The run's audio branch (``train/<model>/best.pt``), in eval mode.
    sample_rate : int
    scene_embedding_size, timestamp_embedding_size : int
        100 (the joint space).
    run, model_name : str
        Where it comes from.
    hop_ms : float
        Milliseconds between timestamp embeddings.
    window_s : float
        A frozen backbone's window for a timestamp embedding, in seconds.
    """

    scene_embedding_size = timestamp_embedding_size = EMBED_DIM

    def __init__(self, run_dir: str | os.PathLike, model_name: str = "joint", hop_ms: float = 50.0,
                 window_s: float = 3.0):
        super().__init__()
        path = RunLayout.at(run_dir).checkpoint(model_name)
        net, info = load_checkpoint(path)
        if info["kind"] != "joint":
            raise ParamError(f"{path}: a {info['kind']}, not a joint model: its output is not the joint space")
        self.audio, self.info = net.audio.eval(), info
        self.run, self.model_name = str(run_dir), model_name
        self.hop_ms, self.window_s = float(hop_ms), float(window_s)
        self.frozen = frozen_arch(info["arch"])
        if self.frozen:
            self.backbone = backbone_spec(info["arch"]).build()
            self.sample_rate = int(self.backbone.sample_rate)
        else:
            params = source_params(run_dir, what="model_file_path")
            self.spec = MelSpec.from_params(params["audio"])
            self.normalize_segments = bool(params["embed"]["normalize_segments"])
            self.sample_rate = int(self.spec.sample_rate)

    @property
    def device(self) -> torch.device:
        return next(self.audio.parameters()).device

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """:func:`get_scene_embeddings` of ``audio`` (n_sounds, n_samples)."""
        return get_scene_embeddings(audio, self)

    # -- a frozen backbone's vectors through the projection
    def _project(self, clips: list[np.ndarray]) -> np.ndarray:
        vectors = np.asarray(self.backbone.embed(clips), dtype=np.float32)
        with torch.no_grad():
            return self.audio(torch.from_numpy(vectors)[:, None, :].to(self.device)).float().cpu().numpy()

    # -- segments of log-mels through the encoder
    def _segments(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        out = []
        with torch.no_grad():
            for a in range(0, len(x), batch):
                seg = standardise(torch.from_numpy(x[a:a + batch]).to(self.device), self.info["mean"], self.info["std"])
                out.append(self.audio(seg).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, EMBED_DIM), np.float32)


def load_model(model_file_path: str = "", model: str = "joint", hop_ms: float = 50.0,
               window_s: float = 3.0) -> RunEncoder:
    """The HEAR entry point: a trained run's joint-space encoder.

    Parameters
    ----------
    model_file_path : str
        A run folder (``reports/<run>``; its ``train/<model>/best.pt``), or a checkpoint in one
        (``reports/<run>/train/joint-table/best.pt``: that model).
    model : str
        The run's joint model, when a folder is given (``joint``, ``joint-<kind>``).
    hop_ms : float
        Milliseconds between timestamp embeddings.
    window_s : float
        Seconds a frozen backbone hears for one timestamp embedding.

    Returns
    -------
    RunEncoder
    """
    if not model_file_path:
        raise ParamError("zslkit.hear.load_model: give the run folder (reports/<run>) as model_file_path")
    path = Path(model_file_path)
    if path.is_file() and path.suffix == ".pt":
        path, model = path.parents[2], path.parent.name
    if not RunLayout.at(path).checkpoint(model).is_file():
        raise DataError(f"zslkit.hear.load_model: {RunLayout.at(path).checkpoint(model)} not found (a run folder "
                        "after stage 03)")
    return RunEncoder(path, model, hop_ms, window_s)


def _logmel(y: np.ndarray, spec: MelSpec) -> np.ndarray:
    """The run's log-mel, rounded to float16 as the mel store keeps it (what the run was trained and embedded on)."""
    return logmel(y, spec).astype(np.float16)


def _sounds(audio: Any) -> np.ndarray:
    if not isinstance(audio, torch.Tensor) or audio.dim() != 2:
        raise ParamError(f"HEAR audio must be a torch.Tensor (n_sounds, n_samples), not "
                         f"{getattr(audio, 'shape', type(audio).__name__)}")
    return audio.detach().float().cpu().numpy()


def get_scene_embeddings(audio: torch.Tensor, model: RunEncoder) -> torch.Tensor:
    """One joint-space embedding per sound (module doc).

    Parameters
    ----------
    audio : torch.Tensor, shape (n_sounds, n_samples)
        Mono audio at ``model.sample_rate``.
    model : RunEncoder

    Returns
    -------
    torch.Tensor, shape (n_sounds, 100), float32, on ``audio``'s device
    """
    sounds = _sounds(audio)
    if model.frozen:
        emb = model._project(list(sounds))
    else:
        mels = {i: _logmel(y, model.spec) for i, y in enumerate(sounds)}
        emb = track_embeddings(model.audio, mels, list(mels), model.info["mean"], model.info["std"],
                               model.info["arch"]["segment_frames"], normalize_segments=model.normalize_segments,
                               device=model.device)
    return torch.from_numpy(np.asarray(emb, dtype=np.float32)).to(audio.device)


def get_timestamp_embeddings(audio: torch.Tensor, model: RunEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint-space embeddings along time (module doc).

    Parameters
    ----------
    audio : torch.Tensor, shape (n_sounds, n_samples)
        Mono audio at ``model.sample_rate``.
    model : RunEncoder

    Returns
    -------
    embeddings : torch.Tensor, shape (n_sounds, n_timestamps, 100), float32
    timestamps : torch.Tensor, shape (n_sounds, n_timestamps), float32
        Window centres in milliseconds, ``0, hop, 2·hop, ...`` up to the end of the sounds.
    """
    sounds = _sounds(audio)
    n = sounds.shape[1]
    if model.frozen:
        hop = max(1, int(round(model.hop_ms / 1000 * model.sample_rate)))
        half = int(round(model.window_s * model.sample_rate / 2))
        centres = np.arange(0, max(n, 1), hop)
        out = []
        for y in sounds:
            padded = np.pad(y, (half, half))
            out.append(model._project([padded[c:c + 2 * half] for c in centres]))
        stamps = centres / model.sample_rate * 1000
    else:
        spec, length = model.spec, model.info["arch"]["segment_frames"]
        hop = max(1, int(round(model.hop_ms / 1000 * spec.sample_rate / spec.hop_length)))
        out = []
        for y in sounds:
            mel = _logmel(y, spec)
            padded = np.pad(mel, ((length // 2, length - 1 - length // 2), (0, 0)))  # 0: the log-mel of silence
            centres = np.arange(0, len(mel), hop)
            out.append(model._segments(np.stack([segments(padded[c:c + length], length)[0] for c in centres])))
        stamps = centres * spec.hop_length / spec.sample_rate * 1000
    emb = torch.from_numpy(np.stack(out).astype(np.float32)).to(audio.device)
    ts = torch.from_numpy(np.asarray(stamps, dtype=np.float32)).unsqueeze(0).expand(len(sounds), -1).contiguous()
    return emb, ts.to(audio.device)
