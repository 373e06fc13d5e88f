"""Figures. Each function returns a matplotlib Figure; notebooks show it and save it to the run."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def tag_counts_by_group(counts: pd.DataFrame, min_count: int | None = None):
    """Horizontal bars of positive tracks per tag, one panel per tag group.

    ``counts`` has columns ``tag, group, count`` (``Dataset.tag_counts()``).
    """
    groups = list(dict.fromkeys(counts.group))
    heights = [max(1, (counts.group == g).sum()) for g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 0.22 * sum(heights) + 0.6 * len(groups)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, g in zip(axes[:, 0], groups):
        sub = counts[counts.group == g].sort_values("count")
        ax.barh(sub.tag, sub["count"], color="C0")
        ax.set_title(f"{g} ({len(sub)} tags)", fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if min_count:
            ax.axvline(min_count, color="C3", lw=0.8, ls="--")
    axes[-1, 0].set_xlabel("positive tracks")
    fig.tight_layout()
    return fig


def mel_grid(mels: Sequence[np.ndarray], titles: Sequence[str], hop_seconds: float,
             segment_frames: int | None = 130):
    """Log-mel spectrograms (time-major arrays) side by side, segment boundaries marked."""
    n = len(mels)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.0 * n), squeeze=False)
    for ax, mel, title in zip(axes[:, 0], mels, titles):
        mel = np.asarray(mel, dtype=np.float32)
        ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, mel.shape[0] * hop_seconds, 0, mel.shape[1]))
        if segment_frames:
            for k in range(1, mel.shape[0] // segment_frames + 1):
                ax.axvline(k * segment_frames * hop_seconds, color="w", lw=0.6, ls=":")
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_ylabel("mel band", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def split_shares(preview: pd.DataFrame):
    """Stacked bars of the A/B/C shares for several tag-split seeds."""
    fig, ax = plt.subplots(figsize=(6, 2.6))
    bottom = np.zeros(len(preview))
    for k, colour in zip("ABC", ("C0", "C1", "C2")):
        vals = preview[f"share_{k}"].to_numpy()
        ax.bar(preview.split_seed.astype(str), vals, bottom=bottom, label=k, color=colour)
        bottom += vals
    ax.axhline(1 / 3, color="k", lw=0.8, ls="--")
    ax.set_xlabel("tag split seed")
    ax.set_ylabel("share of tracks")
    ax.legend(ncol=3, fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def similarity_heatmap(sim: np.ndarray, tags: pd.DataFrame, unseen: Sequence[str], title: str = ""):
    """Tag-to-tag cosine similarity, ordered by group, unseen tags marked in red with '*'."""
    unseen = set(unseen)
    order = tags.assign(u=tags.tag.isin(unseen)).sort_values(["group", "u", "tag"]).index.to_numpy()
    sub = sim[np.ix_(order, order)]
    labels = [f"{t} *" if t in unseen else t for t in tags.tag.iloc[order]]
    n = len(order)
    fig, ax = plt.subplots(figsize=(0.16 * n + 2.5, 0.16 * n + 2))
    im = ax.imshow(sub, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(n), labels, fontsize=6)
    for tick_x, tick_y, t in zip(ax.get_xticklabels(), ax.get_yticklabels(), tags.tag.iloc[order]):
        if t in unseen:
            tick_x.set_color("C3")
            tick_y.set_color("C3")
    groups = tags.group.iloc[order].to_numpy()
    for k in np.flatnonzero(groups[1:] != groups[:-1]) + 0.5:
        ax.axhline(k, color="k", lw=0.6)
        ax.axvline(k, color="k", lw=0.6)
    fig.colorbar(im, ax=ax, fraction=0.03, label="cosine")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def training_curves(curves: dict[str, pd.DataFrame], best_epochs: dict[str, int] | None = None):
    """Train/valid loss, learning rate and seconds per epoch for one or more models."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for k, (name, c) in enumerate(curves.items()):
        axes[0].plot(c.epoch, c.train_loss, color=f"C{k}", ls="--", label=f"{name} train")
        axes[0].plot(c.epoch, c.valid_loss, color=f"C{k}", label=f"{name} valid")
        if best_epochs and name in best_epochs:
            axes[0].axvline(best_epochs[name], color=f"C{k}", lw=0.7, ls=":")
        axes[1].plot(c.epoch, c.lr, color=f"C{k}", label=name)
        axes[2].plot(c.epoch, c.seconds, color=f"C{k}", label=name)
    axes[0].set_ylabel("loss per segment")
    axes[1].set_ylabel("learning rate")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("seconds per epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
