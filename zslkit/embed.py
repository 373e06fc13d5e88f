"""Track and tag embeddings (paper_spec §4.8).

A track's embedding is the mean of its segment embeddings: non-overlapping 130-frame segments,
``floor(n_frames / 130)`` of them (clips shorter than one segment are tiled), standardised like
the training input. By default the raw segment embeddings are averaged, as the original code;
``normalize_segments=True`` averages L2-normalised ones instead.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .audio import MelStore
from .train import SEGMENT


def segments(mel: np.ndarray, length: int = SEGMENT) -> np.ndarray:
    """Non-overlapping segments of a (frames, mels) array: ``(floor(frames / length), length, mels)``."""
    mel = np.asarray(mel, dtype=np.float32)
    if len(mel) < length:
        mel = np.tile(mel, (int(np.ceil(length / len(mel))), 1))
    n = len(mel) // length
    return mel[: n * length].reshape(n, length, mel.shape[1])


@torch.no_grad()
def track_embeddings(encoder: torch.nn.Module, store: MelStore, track_ids: Sequence[str], mean: float,
                     std: float, batch_segments: int = 512, normalize_segments: bool = False,
                     device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """Embeddings of ``track_ids``: ``(n_tracks, dim)`` float32."""
    from tqdm.auto import tqdm
    encoder.eval()
    out, pending, owners = [], [], []

    def flush():
        x = torch.from_numpy((np.concatenate(pending) - mean) / std).to(device)
        emb = encoder(x)
        if normalize_segments:
            emb = torch.nn.functional.normalize(emb, dim=1)
        out.append((np.concatenate(owners), emb.cpu().numpy()))
        pending.clear()
        owners.clear()

    count = 0
    for i, t in enumerate(tqdm(track_ids, desc="embed", unit="track", disable=not progress)):
        seg = segments(store[t])
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


def cosine_scores(track_emb: np.ndarray, tag_emb: np.ndarray) -> np.ndarray:
    """(n_tracks, n_tags) cosine similarity."""
    a = track_emb / np.linalg.norm(track_emb, axis=1, keepdims=True)
    b = tag_emb / np.linalg.norm(tag_emb, axis=1, keepdims=True)
    return a @ b.T
