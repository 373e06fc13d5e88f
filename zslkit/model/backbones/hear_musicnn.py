"""The musicnn port behind the HEAR 2021 API (Turian et al., "HEAR: Holistic Evaluation of Audio
Representations"), so that hear-eval-kit, MARBLE or zslkit's own HEAR seam can use it by module name.

- :func:`load_model` ``(model_file_path="", variant="MTT_musicnn")`` returns a ``torch.nn.Module`` with
  ``sample_rate`` (16,000), ``scene_embedding_size`` and ``timestamp_embedding_size`` (200 for the musicnn
  variants' ``bn_dense``; 256 for vgg's ``pool5``);
- :func:`get_scene_embeddings` ``(audio (n_sounds, n_samples), model) -> (n_sounds, 200)``: the mean of
  ``bn_dense`` over the sound's non-overlapping 3-s patches, exactly
  :func:`zslkit.model.backbones.musicnn.embed_clips` (a sound shorter than 3 s is zero-padded in the log-mel
  domain, i.e. with silence, to one patch);
- :func:`get_timestamp_embeddings` ``(audio, model) -> (embeddings (n_sounds, n_timestamps, 200),
  timestamps (n_sounds, n_timestamps))``: one 3-s patch centred on every ``timestamp_hop_frames``-th mel
  frame (16 frames = 256 ms by default), the spectrogram padded with silence at both ends; timestamps
  are the patch centres in milliseconds, ``frame * 256 / 16000 * 1000``, the same for every sound.

Audio is expected at 16 kHz, mono, as HEAR provides it; the log-mel front end runs on the CPU with
librosa, the network on the model's device.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...errors import ParamError
from . import musicnn

__all__ = ["load_model", "get_scene_embeddings", "get_timestamp_embeddings", "HearMusicnn"]


class HearMusicnn(nn.Module):
    """A pretrained musicnn network with the HEAR attributes.

    Attributes
    ----------
    net : musicnn.MusiCNN or musicnn.VGG
        The port (eval mode).
    sample_rate : int
        16,000.
    scene_embedding_size, timestamp_embedding_size : int
        Dimensions of the embedding layer (200 for ``bn_dense``).
    timestamp_hop_frames : int
        Mel frames (16 ms each) between timestamps.
    """

    sample_rate = musicnn.SAMPLE_RATE

    def __init__(self, net: nn.Module, timestamp_hop_frames: int = 16):
        super().__init__()
        if int(timestamp_hop_frames) < 1:
            raise ParamError(f"timestamp_hop_frames must be >= 1, not {timestamp_hop_frames!r}")
        self.net = net
        self.timestamp_hop_frames = int(timestamp_hop_frames)
        self.scene_embedding_size = self.timestamp_embedding_size = net.embedding_size()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """:func:`get_scene_embeddings` of ``audio`` (n_sounds, n_samples)."""
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "", variant: str = "MTT_musicnn", layer: str | None = None,
               timestamp_hop_frames: int = 16) -> HearMusicnn:
    """The HEAR entry point.

    Parameters
    ----------
    model_file_path : str
        Unused (the weights come from the installed musicnn wheel); HEAR passes ``""`` or a path. A variant
        name (``"MSD_musicnn"``) is accepted here too, so that a HEAR runner's weights argument can choose it.
    variant : str
        One of :data:`zslkit.model.backbones.musicnn.VARIANTS`.
    layer : str, optional
        Embedding layer (``bn_dense`` for musicnn, ``pool5`` for vgg, by default).
    timestamp_hop_frames : int
        Frames between timestamp embeddings (16: 256 ms).

    Returns
    -------
    HearMusicnn

    Raises
    ------
    zslkit.errors.ParamError
        Unknown variant or layer, or musicnn not installed (the message says how to install it).
    """
    if model_file_path and str(model_file_path) in musicnn.VARIANTS:
        variant = str(model_file_path)
    model = HearMusicnn(musicnn.load(variant, layer=layer), timestamp_hop_frames).eval()
    model.supervised_on = musicnn.supervised_on(variant)  # read by zslkit's hear encoder to mark leaky tags
    return model


def _check_audio(audio: torch.Tensor) -> np.ndarray:
    if not isinstance(audio, torch.Tensor) or audio.dim() != 2:
        raise ParamError(f"HEAR audio must be a torch.Tensor (n_sounds, n_samples), not "
                         f"{getattr(audio, 'shape', type(audio).__name__)}")
    return audio.detach().float().cpu().numpy()


def get_scene_embeddings(audio: torch.Tensor, model: HearMusicnn) -> torch.Tensor:
    """One embedding per sound.

    Parameters
    ----------
    audio : torch.Tensor, shape (n_sounds, n_samples)
        Mono audio at ``model.sample_rate`` (16 kHz).
    model : HearMusicnn

    Returns
    -------
    torch.Tensor, shape (n_sounds, model.scene_embedding_size), float32
        The mean over each sound's non-overlapping 3-s patches of the model's layer, on ``audio``'s device.
    """
    clips = _check_audio(audio)
    emb, _ = musicnn.embed_clips(model.net, list(clips), model.sample_rate)
    return torch.from_numpy(emb).to(audio.device)


@torch.no_grad()
def get_timestamp_embeddings(audio: torch.Tensor, model: HearMusicnn,
                             batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings along time.

    Parameters
    ----------
    audio : torch.Tensor, shape (n_sounds, n_samples)
        Mono audio at 16 kHz.
    model : HearMusicnn
    batch_size : int
        Patches per forward pass.

    Returns
    -------
    embeddings : torch.Tensor, shape (n_sounds, n_timestamps, model.timestamp_embedding_size), float32
        For each timestamp, the model's layer for the 3-s patch (187 frames) centred on it (layers with a
        time axis averaged over the patch).
    timestamps : torch.Tensor, shape (n_sounds, n_timestamps), float32
        Patch centres in milliseconds: mel frames ``0, hop, 2·hop, ...`` (``n_timestamps = ceil(n_frames /
        hop)``, ``n_frames = 1 + n_samples // 256``) at 16 ms per frame.
    """
    clips = _check_audio(audio)
    net, hop, half = model.net, model.timestamp_hop_frames, musicnn.PATCH_FRAMES // 2
    device = next(net.parameters()).device
    out = []
    for y in clips:
        mel = musicnn.logmel(y)
        padded = np.pad(mel, ((half, musicnn.PATCH_FRAMES - 1 - half), (0, 0)))
        centres = range(0, mel.shape[0], hop)
        x = torch.from_numpy(np.stack([padded[c:c + musicnn.PATCH_FRAMES] for c in centres]))
        parts = []
        for a in range(0, len(x), batch_size):
            parts.append(musicnn.pool_layer(net(x[a:a + batch_size].to(device))).float().cpu())
        out.append(torch.cat(parts))
    n_frames = len(range(0, 1 + clips.shape[1] // musicnn.HOP, hop))
    stamps = torch.arange(n_frames, dtype=torch.float64) * hop * musicnn.HOP / musicnn.SAMPLE_RATE * 1000
    return (torch.stack(out).to(audio.device),
            stamps.float().unsqueeze(0).expand(len(clips), -1).contiguous().to(audio.device))
