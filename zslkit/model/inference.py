"""Inference on trained models: segments, standardisation, track and tag embeddings, scores.

Conventions
-----------
- A track's log-mel is ``np.ndarray [shape=(n_frames, n_mels)]``, time-major, as the mel store
  holds it. It is cut into non-overlapping segments of ``segment_frames`` frames (the length the
  model was trained on, stored in its checkpoint): ``floor(n_frames / segment_frames)`` of them, the
  remaining frames dropped; clips shorter than one segment are tiled into one.
- Segments are standardised like the training input, ``(x - mean) / std`` with the checkpoint's
  constants, and enter the encoder as ``torch.Tensor [shape=(batch, segment_frames, n_mels)]``.
- A track's embedding is the mean of its segment embeddings: raw by default (the original code),
  or L2-normalised ones with ``normalize_segments=True``.
- A tag's embedding is the tag branch applied to its side-information vector; NaN rows (tags
  without side information) stay NaN.
- Scores are cosine similarities, as in training: ``np.ndarray [shape=(n_tracks, n_tags)]``; the
  classifier's are its logits.

Train, embed, evaluate and transfer all go through these functions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.melstore import MelStore
from ..errors import ParamError
from .encoders import EMBED_DIM


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """The torch device of a device parameter: ``auto`` (CUDA when torch sees it), ``cpu`` or ``cuda``.

    Parameters
    ----------
    name : str
        ``auto``, ``cpu`` or ``cuda`` (any other name is passed to :class:`torch.device` as is).
    key : str
        The parameter's name in the error message.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ParamError
        If ``name`` is ``cuda`` and torch sees no CUDA device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamError(f"{key}: 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)


def standardise(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Segments as float32, ``(x - mean) / std``, on the device ``x`` is on; ``x`` itself is not modified.

    Parameters
    ----------
    x : torch.Tensor [shape=(batch, segment_frames, n_mels)]
        Log-mel segments, any float dtype (float16 from the mel store).
    mean, std : float
        The training input's statistics, stored in the checkpoint.

    Returns
    -------
    x : torch.Tensor [shape=(batch, segment_frames, n_mels), dtype=float32]
    """
    return x.float().sub_(mean).div_(std) if x.dtype != torch.float32 else (x - mean).div_(std)


def segments(mel: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping segments of one track's log-mel (the last, partial segment dropped).

    Parameters
    ----------
    mel : np.ndarray [shape=(n_frames, n_mels)]
        At least one frame; a clip shorter than ``length`` is tiled into one segment.
    length : int
        Frames per segment.

    Returns
    -------
    segments : np.ndarray [shape=(max(1, n_frames // length), length, n_mels), dtype=float32]
    """
    mel = np.asarray(mel, dtype=np.float32)
    if len(mel) < length:
        mel = np.tile(mel, (int(np.ceil(length / len(mel))), 1))
    n = len(mel) // length
    return mel[: n * length].reshape(n, length, mel.shape[1])


@torch.no_grad()
def adapt_batch_norm(encoder: torch.nn.Module, store: MelStore, track_ids: Sequence[str], mean: float,
                     std: float, segment_frames: int, batch_segments: int = 512,
                     device: str | torch.device = "cpu") -> int:
    """AdaBN (Li et al., 2016): every batch-norm layer's running mean and variance re-estimated on the segments of
    ``track_ids``, the learnt weights kept; the encoder is left in eval mode.

    The statistics are the plain average over batches of up to ``batch_segments`` segments (``momentum=None``),
    so they do not depend on the order of the tracks beyond the batching. Arguments as
    :func:`track_embeddings`.

    Returns
    -------
    n_layers : int
        Batch-norm layers adapted (0: the encoder has none, and nothing changed).
    """
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momentum = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    encoder.eval()
    for m in norms:
        m.train()
    pending: list[np.ndarray] = []
    used = 0
    try:
        for i, t in enumerate(track_ids):
            pending.append(segments(store[t], segment_frames))
            if sum(len(p) for p in pending) >= batch_segments or i == len(track_ids) - 1:
                batch = np.concatenate(pending)
                if len(batch) > 1:  # batch norm needs two samples for a variance
                    encoder(standardise(torch.from_numpy(batch).to(device), mean, std))
                    used += len(batch)
                pending.clear()
    finally:
        for m, mom in zip(norms, momentum):
            m.momentum = mom
        encoder.eval()
    if not used:
        raise ParamError(f"transfer.adapt: adabn needs at least two segments to estimate batch statistics; "
                         f"{len(track_ids)} track(s) gave fewer")
    return len(norms)


@torch.no_grad()
def track_embeddings(encoder: torch.nn.Module, store: MelStore, track_ids: Sequence[str], mean: float,
                     std: float, segment_frames: int, batch_segments: int = 512,
                     normalize_segments: bool = False, device: str | torch.device = "cpu",
                     progress: bool = False) -> np.ndarray:
    """Embeddings of ``track_ids``: the mean of each track's segment embeddings (module conventions).

    Parameters
    ----------
    encoder : torch.nn.Module
        The audio encoder (``model.audio``), on ``device``: ``(batch, segment_frames, n_mels)`` ->
        ``(batch, dim)``.
    store : MelStore
        Log-mels by track id, each ``np.ndarray [shape=(n_frames, n_mels)]``.
    track_ids : sequence of str
        At least one.
    mean, std : float
        The checkpoint's standardisation constants.
    segment_frames : int
        Frames per segment, as trained.
    batch_segments : int
        Segments per forward pass; a track's segments stay in one pass, so a pass may hold up to
        one track's segments more.
    normalize_segments : bool
        L2-normalise each segment embedding before the mean.
    device : str or torch.device
    progress : bool
        Show a progress bar.

    Returns
    -------
    tracks : np.ndarray [shape=(n_tracks, dim), dtype=float32]
        Rows in ``track_ids`` order (averaged in float64).
    """
    encoder.eval()
    out, pending, owners = [], [], []

    def flush():
        x = standardise(torch.from_numpy(np.concatenate(pending)).to(device), mean, std)
        emb = encoder(x)
        if normalize_segments:
            emb = torch.nn.functional.normalize(emb, dim=1)
        out.append((np.concatenate(owners), emb.cpu().numpy()))
        pending.clear()
        owners.clear()

    count = 0
    for i, t in enumerate(tqdm(track_ids, desc="embed", unit="track", disable=not progress)):
        seg = segments(store[t], segment_frames)
        pending.append(seg)
        owners.append(np.full(len(seg), i))
        count += len(seg)
        if count >= batch_segments:
            flush()
            count = 0
    if pending:
        flush()
    owner = np.concatenate([o for o, _ in out])
    emb = np.concatenate([e for _, e in out])
    sums = np.zeros((len(track_ids), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, emb)
    return (sums / np.bincount(owner, minlength=len(track_ids))[:, None]).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows (or a vector) scaled to unit length; an all-zero row stays zero, NaN stays NaN.

    Parameters
    ----------
    x : np.ndarray [shape=(..., d)]

    Returns
    -------
    u : np.ndarray [shape=(..., d)]
        Each vector along the last axis divided by its L2 norm.
    """
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def cosine_scores(track_emb: np.ndarray, tag_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity of every track with every tag.

    Parameters
    ----------
    track_emb : np.ndarray [shape=(n_tracks, d)]
    tag_emb : np.ndarray [shape=(n_tags, d)]

    Returns
    -------
    scores : np.ndarray [shape=(n_tracks, n_tags)]
        NaN columns for NaN tag rows, and 0 for an all-zero vector (a head that knows nothing of a
        tag ranks every track alike: AUC 0.5).
    """
    return unit(track_emb) @ unit(tag_emb).T


@torch.no_grad()
def embed_tag_vectors(model, vectors: np.ndarray, device="cpu") -> np.ndarray:
    """The tag branch on side-information rows; NaN rows stay NaN.

    Parameters
    ----------
    model : JointModel
        A trained joint model (its ``embed_tags``), on ``device``.
    vectors : np.ndarray [shape=(n_tags, side_dim)]
        Side information; a row with any NaN has none.
    device : str or torch.device

    Returns
    -------
    tag_emb : np.ndarray [shape=(n_tags, EMBED_DIM), dtype=float32]
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    ok = ~np.isnan(vectors).any(axis=1)
    out = np.full((len(vectors), EMBED_DIM), np.nan, dtype=np.float32)
    if ok.any():
        model.eval()
        out[ok] = model.embed_tags(torch.as_tensor(vectors[ok], device=device)).cpu().numpy()
    return out


@torch.no_grad()
def classifier_logits(net, track_emb: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """The supervised classifier's logits on segment-averaged track embeddings.

    The linear output commutes with the segment mean, so on raw segment means (the default of
    :func:`track_embeddings`) this equals averaging segment logits.

    Parameters
    ----------
    net : Classifier
        The trained classifier (its linear output ``net.out``), on ``device``.
    track_emb : np.ndarray [shape=(n_tracks, EMBED_DIM), dtype=float32]
        Its encoder's track embeddings (:func:`track_embeddings`).
    device : str or torch.device

    Returns
    -------
    logits : np.ndarray [shape=(n_tracks, n_seen), dtype=float32]
    """
    return net.out(torch.as_tensor(track_emb, device=device)).cpu().numpy()
