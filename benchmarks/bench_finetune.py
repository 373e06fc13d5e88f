"""Fine-tuning musicnn against training on its frozen features: seconds per training step, and per epoch of the demo.

Both train the same joint model (a linear tag branch on 300-d side information, the hinge loss with one negative,
Adam) on batches of ``--batch`` segments; only the audio branch differs:

- **musicnn_tuned** (:class:`zslkit.model.backbones.musicnn_tuned.MusicnnTuned`, ``train.finetune`` > 0): musicnn's
  pretrained layers and the projection, forward and backward on log-mel patches of ``--frames`` x 96 (187: 3 s);
- **baseline, frozen** (``model.encoder: musicnn``): the projection of cached 200-d ``bn_dense`` features
  (:class:`zslkit.model.frozen.FeatureProjection`), what stage 03 trains on a frozen backbone.

A step is one forward pass of the batch and its negatives' tags, the loss, backward and the optimiser step, on the
CPU (``--threads``) after two warm-up steps. Prints seconds per step of each, their ratio, and an epoch of the
demo at the demo's settings (``--tracks`` training tracks x ``--crops`` crops per track, 945 x 4 by default: the
A-X training tracks of ``params/demo.yaml`` on split s0).

Usage: python benchmarks/bench_finetune.py [--batch 64] [--frames 187] [--steps 5] [--threads 0]
                                           [--tracks 945] [--crops 4] [--quick]
``--quick``: batches of 4, 2 steps (seconds; checks that the script runs, the numbers mean little).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zslkit.model.backbones.musicnn_tuned import MusicnnTuned  # noqa: E402
from zslkit.model.frozen import FeatureProjection  # noqa: E402
from zslkit.model.losses import hinge_loss  # noqa: E402
from zslkit.model.networks import TagBranch  # noqa: E402


def seconds_per_step(audio: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    """Mean wall seconds of a joint-model training step (module doc) over ``steps``, after two warm-up steps."""
    torch.manual_seed(0)
    tag = TagBranch(300)
    pos, neg = torch.randn(len(x), 300), torch.randn(len(x), 300)
    params = [q for q in list(audio.parameters()) + list(tag.parameters()) if q.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    audio.train()
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        a = F.normalize(audio(x), dim=1)
        scores = torch.stack([(a * F.normalize(tag(v), dim=1)).sum(1) for v in (pos, neg)], dim=1)
        loss = hinge_loss(scores, 0.4)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--frames", type=int, default=187)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--tracks", type=int, default=945, help="training tracks of an epoch")
    ap.add_argument("--crops", type=int, default=4, help="crops per track and epoch (train.crops_per_track)")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.batch, a.steps = 4, 2
    if a.threads:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    mels = torch.rand(a.batch, a.frames, 96, generator=g) * 4  # log10(1 + 10000 x) lies in [0, ~5]
    feats = torch.randn(a.batch, 1, 200, generator=g)
    tuned = seconds_per_step(MusicnnTuned(), mels, a.steps)
    frozen_net = FeatureProjection(200)
    frozen = seconds_per_step(frozen_net, feats, a.steps)
    steps_per_epoch = -(-a.tracks * a.crops // a.batch)
    print(f"batch {a.batch} segments of {a.frames} frames, {torch.get_num_threads()} torch threads, {a.steps} steps")
    print(f"musicnn_tuned (fine-tuning): {tuned:.4f} s per step; an epoch of {steps_per_epoch} steps "
          f"({a.tracks} tracks x {a.crops} crops): {tuned * steps_per_epoch / 60:.1f} min")
    print(f"frozen features (baseline):  {frozen:.5f} s per step; an epoch: {frozen * steps_per_epoch:.2f} s")
    print(f"ratio fine-tuning / frozen: {tuned / frozen:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
