"""Models: the paper's audio encoder, the tag branch, the joint embedding model, the classifier.

Conventions (paper_spec §4)
---------------------------
- Input: a batch of log-mel segments, shape ``(batch, 130, 128)`` (time-major, standardised);
  the 1-D encoder treats the 128 mel bands as channels: ``(batch, 128, 130)``.
- Paper encoder: Conv1d 128-k4 → max-pool 4 → 128-k4 → pool 4 → 128-k4 → pool 4 → 128-k2 → pool 2
  → 100-k1 (linear), ReLU between, 'same' padding, He-uniform kernels, zero biases, global average
  → 100-d. 242,788 parameters.
- Tag branch: one linear layer from the side-information dimension to 100-d (Glorot-uniform,
  zero bias); the same layer embeds positives, negatives and unseen tags.
- Score: cosine similarity between the audio and tag embeddings.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

EMBED_DIM = 100


class PaperEncoder(nn.Module):
    """The paper's 1-D CNN over time: ``(batch, frames, 128)`` -> ``(batch, 100)``."""

    def __init__(self, n_mels: int = 128, channels: int = 128, out_dim: int = EMBED_DIM,
                 batch_norm: bool = False):
        super().__init__()
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
        for conv, norm, pool, pad in zip(self.convs, self.norms, self.pools, self.pads):
            x = F.max_pool1d(F.relu(norm(conv(F.pad(x, pad)))), pool)
        return self.out(x).mean(dim=2)

    def kernels(self) -> list[torch.Tensor]:
        """Convolution kernels (the original's L2 regulariser applies to these only)."""
        return [c.weight for c in [*self.convs, self.out]]


class ShortChunkEncoder(nn.Module):
    """A stronger option: a 2-D short-chunk CNN (3x3 convs, batch norm, max-pool), GAP -> 100-d."""

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


class TagBranch(nn.Module):
    """Side-information vector -> joint space: linear (the paper) or a small MLP."""

    def __init__(self, in_dim: int, out_dim: int = EMBED_DIM, hidden: int | None = None):
        super().__init__()
        if hidden:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        else:
            self.net = nn.Linear(in_dim, out_dim)
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v)


class JointModel(nn.Module):
    """Audio encoder + tag branch, scored by cosine similarity."""

    def __init__(self, audio: nn.Module, tag: TagBranch):
        super().__init__()
        self.audio, self.tag = audio, tag

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        return self.audio(x)

    def embed_tags(self, v: torch.Tensor) -> torch.Tensor:
        return self.tag(v)

    def scores(self, x: torch.Tensor, tag_vectors: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each segment with each tag: ``(batch, n_tags)``."""
        a = F.normalize(self.embed_audio(x), dim=1)
        t = F.normalize(self.embed_tags(tag_vectors), dim=1)
        return a @ t.T

    def pair_scores(self, x: torch.Tensor, tag_vectors: torch.Tensor, tag_index: torch.Tensor) -> torch.Tensor:
        """Cosine of segment ``b`` with tags ``tag_index[b, j]``: ``(batch, 1 + K)``."""
        a = F.normalize(self.embed_audio(x), dim=1)
        t = F.normalize(self.embed_tags(tag_vectors), dim=1)
        return torch.einsum("bd,bkd->bk", a, t[tag_index])


class Classifier(nn.Module):
    """The supervised baseline: the same encoder with a sigmoid output over the seen tags."""

    def __init__(self, audio: nn.Module, n_tags: int):
        super().__init__()
        self.audio = audio
        self.out = nn.Linear(EMBED_DIM, n_tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.audio(x))  # logits; BCEWithLogitsLoss applies the sigmoid


def make_encoder(kind: str, n_mels: int = 128) -> nn.Module:
    if kind == "paper":
        return PaperEncoder(n_mels)
    if kind == "paper_bn":
        return PaperEncoder(n_mels, batch_norm=True)
    if kind == "shortchunk":
        return ShortChunkEncoder(n_mels)
    raise ValueError(f"model.encoder: unknown encoder {kind!r}")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
