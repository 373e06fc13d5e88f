"""An exponential moving average of a model's weights (``train.ema``), the copy that is validated and kept.

Conventions
-----------
- After every optimiser step each floating-point entry of the model's ``state_dict`` (weights and the batch
  norms' running statistics alike) moves toward the trained model's: ``avg += (1 - d) * (w - avg)``, with
  ``d = min(decay, (1 + step) / (10 + step))`` so that the first steps, far from the average's horizon, do not
  drag the random initialisation along (the warm-up of TensorFlow's ``ExponentialMovingAverage``). Integer
  entries (a batch norm's batch count) are copied.
- With ``decay`` ``d`` the average spans about ``1 / (1 - d)`` steps: 0.998 is 500 steps, about five epochs of
  the demo (about 95 steps an epoch).
- The trainer validates the average, picks ``best.pt`` by its validation loss and writes its weights there;
  ``last.pt`` holds both, so a resumed run goes on exactly. ``train.ema: 0`` (the default) builds none: training
  is bit for bit what it was without the option.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch


class WeightAverage:
    """The moving average of ``net``'s weights, as a module of its own (``.module``, in eval mode).

    Parameters
    ----------
    net : torch.nn.Module
        The trained model (not wrapped in DistributedDataParallel); copied as it is now.
    decay : float
        The average's decay per step, in ``(0, 1)``.
    """

    def __init__(self, net: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay {decay!r} is not in (0, 1)")
        self.decay = float(decay)
        self.module = copy.deepcopy(net).eval()
        for q in self.module.parameters():
            q.requires_grad_(False)

    def rate(self, step: int) -> float:
        """The decay used after optimiser step ``step`` (0-based): the warm-up's ``(1 + step) / (10 + step)``
        until it reaches ``decay``."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, net: torch.nn.Module, step: int) -> None:
        """Move the average toward ``net`` after optimiser step ``step``."""
        d = self.rate(step)
        mine = self.module.state_dict()
        for name, value in net.state_dict().items():
            avg = mine[name]
            if avg.is_floating_point():
                avg.lerp_(value.to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.module.load_state_dict(state)
