"""Figures. Each function returns a matplotlib Figure; notebooks show it and save it to the run."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import patheffects

from .style import model_colour


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
    """Train/valid loss, learning rate and seconds per epoch for one or more models, keyed by their
    ``results.csv`` labels (each in its colour, :func:`zslkit.show.style.model_colour`)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for name, c in curves.items():
        colour = model_colour(name)
        axes[0].plot(c.epoch, c.train_loss, color=colour, ls="--", label=f"{name} train")
        axes[0].plot(c.epoch, c.valid_loss, color=colour, label=f"{name} valid")
        if best_epochs and name in best_epochs:
            axes[0].axvline(best_epochs[name], color=colour, lw=0.7, ls=":")
        axes[1].plot(c.epoch, c.lr, color=colour, label=name)
        axes[2].plot(c.epoch, c.seconds, color=colour, label=name)
    axes[0].set_ylabel("loss per segment")
    axes[1].set_ylabel("learning rate")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("seconds per epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- UMAP maps

def group_colours(groups: Sequence[str]) -> dict[str, tuple]:
    """A colour per group in first-seen order (tab10, or tab20 past ten groups): the same in every
    static figure and interactive map."""
    cmap = plt.get_cmap("tab10" if len(set(groups)) <= 10 else "tab20")
    return {g: cmap(i % cmap.N) for i, g in enumerate(dict.fromkeys(groups))}


#: where a label may sit around its point, in points, tried in this order
LABEL_OFFSETS = ((3, 2), (3, -8), (-3, 2), (-3, -8), (0, 6), (0, -11))


def place_labels(ax, xy: np.ndarray, texts: Sequence[str], colours: Sequence, priority: Sequence[float] | None = None,
                 fontsize: float = 6) -> int:
    """Label points without piling labels up: in order of ``priority`` (highest first), each label takes the
    first place around its point (:data:`LABEL_OFFSETS`) whose box overlaps no label placed before; a label
    with no free place is left out. Returns how many were left out.

    The boxes are estimated from the axes' size and data limits: call it once the figure is laid out
    (after ``tight_layout``)."""
    xy = np.asarray(xy, dtype=float)
    n = len(texts)
    if not n:
        return 0
    order = np.argsort(-np.asarray(priority if priority is not None else np.zeros(n), dtype=float), kind="stable")
    ax.get_xlim(), ax.get_ylim()  # apply any pending autoscaling before reading positions
    to_px = ax.transData.transform
    pt = ax.figure.dpi / 72.0
    char_w, height, pad = 0.62 * fontsize * pt, 1.2 * fontsize * pt, 1.5 * pt
    halo = [patheffects.withStroke(linewidth=2, foreground="white")]  # readable over the tracks' dots
    placed: list[tuple[float, float, float, float]] = []
    left_out = 0
    for i in order:
        if not np.isfinite(xy[i]).all():
            continue
        px, py = to_px(xy[i])
        width = char_w * len(str(texts[i]))
        for dx, dy in LABEL_OFFSETS:
            x0 = px + dx * pt - (width if dx < 0 else width / 2 if dx == 0 else 0)
            y0 = py + dy * pt
            box = (x0 - pad, y0 - pad, x0 + width + pad, y0 + height + pad)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in placed):
                placed.append(box)
                ax.annotate(texts[i], tuple(xy[i]), fontsize=fontsize, xytext=(dx, dy), textcoords="offset points",
                            ha="right" if dx < 0 else "center" if dx == 0 else "left", color=colours[i], zorder=4,
                            path_effects=halo)
                break
        else:
            left_out += 1
    return left_out


def _tag_scatter(ax, xy: np.ndarray, tags: Sequence[str], groups: Sequence[str], seen: np.ndarray,
                 colours: dict, labels: bool = True, size: float = 40):
    for g, c in colours.items():
        for is_seen, marker in ((True, "o"), (False, "^")):
            m = (np.asarray(groups) == g) & (np.asarray(seen) == is_seen)
            if m.any():
                ax.scatter(xy[m, 0], xy[m, 1], s=size, c=[c], marker=marker, edgecolors="k",
                           linewidths=0.4 if is_seen else 1.0, zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])


def _tag_labels(ax, xy: np.ndarray, tags: Sequence[str], seen: np.ndarray) -> int:
    """Every tag's label where it has room, unseen tags (red, ``*``) first (:func:`place_labels`)."""
    seen = np.asarray(seen, dtype=bool)
    return place_labels(ax, xy, [t if s else f"{t}*" for t, s in zip(tags, seen)],
                        ["k" if s else "C3" for s in seen], priority=~seen)


def _tag_legend(ax, colours: dict, extra: Sequence = ()):
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], ls="", marker="o", color=c, label=g) for g, c in colours.items()]
    handles += [Line2D([], [], ls="", marker="o", mfc="w", mec="k", label="seen (X)"),
                Line2D([], [], ls="", marker="^", mfc="w", mec="k", label="unseen (Y) *"), *extra]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def tag_space(xy: np.ndarray, tags: Sequence[str], groups: Sequence[str], seen: np.ndarray,
              title: str = "learned tag space (UMAP)"):
    """Tags on a 2-D map: colour = tag group, circle = seen (X), triangle = unseen (Y, red label)."""
    colours = group_colours(groups)
    fig, ax = plt.subplots(figsize=(9, 7))
    _tag_scatter(ax, xy, tags, groups, seen, colours)
    _tag_legend(ax, colours)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _tag_labels(ax, xy, tags, seen)
    return fig


def side_vs_learned(side_xy: np.ndarray, learned_xy: np.ndarray, tags: Sequence[str],
                    groups: Sequence[str], seen: np.ndarray, side_name: str = "side information"):
    """The side-information space before training beside the learned tag space (same tags)."""
    colours = group_colours(groups)
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    _tag_scatter(axes[0], side_xy, tags, groups, seen, colours)
    axes[0].set_title(f"before training: {side_name} (UMAP)", fontsize=10)
    _tag_scatter(axes[1], learned_xy, tags, groups, seen, colours)
    axes[1].set_title("after training: tag branch output (UMAP)", fontsize=10)
    _tag_legend(axes[1], colours)
    fig.tight_layout()
    _tag_labels(axes[0], side_xy, tags, seen)
    _tag_labels(axes[1], learned_xy, tags, seen)
    return fig


def joint_space(tag_xy: np.ndarray, tags: Sequence[str], groups: Sequence[str], seen: np.ndarray,
                track_xy: np.ndarray, track_labels: Sequence[str], colour_group: str):
    """Tracks (small dots, coloured by their tag in ``colour_group``; grey when they have none or
    several) and tags (large markers, labelled) on one map."""
    from matplotlib.lines import Line2D
    fig, ax = plt.subplots(figsize=(10, 7.5))
    track_labels = np.asarray(track_labels, dtype=object)
    classes = [c for c in dict.fromkeys(track_labels) if c not in ("", None)]
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    grey = track_labels == ""
    ax.scatter(track_xy[grey, 0], track_xy[grey, 1], s=4, c="0.8", zorder=1)
    handles = [Line2D([], [], ls="", marker=".", color="0.7", label="tracks: none or several")]
    for i, c in enumerate(sorted(classes)):
        m = track_labels == c
        colour = cmap(i % cmap.N)
        ax.scatter(track_xy[m, 0], track_xy[m, 1], s=6, color=colour, alpha=0.7, zorder=2)
        handles.append(Line2D([], [], ls="", marker="o", color=colour, label=f"tracks: {c}"))
    in_group = np.asarray(groups) == colour_group
    ax.scatter(tag_xy[~in_group, 0], tag_xy[~in_group, 1], s=30, c="w", edgecolors="k",
               marker="s", zorder=3)
    ax.scatter(tag_xy[in_group, 0], tag_xy[in_group, 1], s=60, c="k", marker="s", zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])
    handles += [Line2D([], [], ls="", marker="s", color="k", label=f"tags in {colour_group}"),
                Line2D([], [], ls="", marker="s", mfc="w", mec="k", label="other tags (* unseen)"),
                Line2D([], [], ls="", label="labels: unseen tags and tags in\n"
                                           f"{colour_group} first, others where\nthey do not overlap")]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_title(f"joint space of tracks and tags (UMAP), tracks coloured by {colour_group}", fontsize=10)
    fig.tight_layout()
    # labels never piled up: unseen tags and the colouring group's tags first, the others where there is room
    # (tracks crowd the map; every tag is named in the interactive map)
    seen = np.asarray(seen, dtype=bool)
    place_labels(ax, tag_xy, [t if s else f"{t}*" for t, s in zip(tags, seen)],
                 ["k" if s else "C3" for s in seen], priority=2 * ~seen + in_group)
    return fig


def per_tag_auc(table: pd.DataFrame, metric: str = "AUC-l", title: str = ""):
    """Per-tag values (one dot per tag) by tag group, seen (X, circles) vs unseen (Y, red
    triangles); chance (0.5) dashed. ``table`` has columns ``id, group, split, <metric>``."""
    groups = list(dict.fromkeys(table.sort_values("group").group))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) + 2), 4))
    rng = np.random.default_rng(0)
    for i, g in enumerate(groups):
        sub = table[table.group == g]
        for split, marker, colour in (("X", "o", "C0"), ("Y", "^", "C3")):
            s = sub[sub.split == split]
            ax.scatter(i + rng.uniform(-0.18, 0.18, len(s)), s[metric], marker=marker, color=colour,
                       s=28, edgecolors="k", linewidths=0.3, zorder=3,
                       label=("seen (X)" if split == "X" else "unseen (Y)") if i == 0 else None)
        mean = sub[metric].mean()
        ax.hlines(mean, i - 0.3, i + 0.3, color="k", lw=1.2, zorder=4)
    ax.axhline(0.5, color="0.4", ls="--", lw=0.8)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.set_title(title or f"per-tag {metric} by group (bar = group mean, dashed = chance)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
