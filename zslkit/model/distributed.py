"""Training on several processes (GPUs, nodes) with ``torchrun`` and DistributedDataParallel.

Conventions
-----------
- A process learns its place from the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``); with none set it is rank 0 of 1 and nothing here changes training.
- The process group uses NCCL when the training device is CUDA (each process on
  ``cuda:<LOCAL_RANK>``), gloo otherwise (CPU: how the tests run two processes).
- **Batches**: every rank draws the same seeded ``(epoch, batch)`` plan of ``train.batch_size``
  crops (:mod:`zslkit.model.sampling`) and keeps its share of the rows (rank ``r`` of ``W``: rows
  ``r*B//W`` to ``(r+1)*B//W``), so the global batch is the single-process batch, whatever ``W``.
- **Gradients**: the losses are sums over the batch; DDP averages gradients over ranks, so each
  rank's loss is scaled by ``W`` and the summed gradient equals the single-process one (up to the
  order of float additions). The L2 term is added once per rank and averaged, i.e. counted once.
  Batch norm layers become SyncBatchNorm on CUDA (statistics over the global batch); on CPU they
  normalise per rank (torch has no CPU SyncBatchNorm), so only encoders without batch norm match a
  single process exactly there.
- **Validation** is split the same way and its sums are added over ranks; checkpoints, curves and
  progress bars come from rank 0 only. Every rank reads ``last.pt`` to resume.
- :func:`launch` starts ``torchrun`` on this node for ``train.nproc`` processes; several nodes are
  started by hand, one ``torchrun`` per node (docs/models.md).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as dist

from ..errors import ParamError, RunError


@dataclass(frozen=True)
class Context:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> slice:
        """The rows of an ``n``-row batch this rank keeps."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)


def context() -> Context:
    """The context ``torchrun`` set up (rank 0 of 1 without it)."""
    env = os.environ
    if "WORLD_SIZE" not in env or int(env["WORLD_SIZE"]) <= 1:
        return Context()
    return Context(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))


def init(device: torch.device) -> Context:
    """Join the process group (once) for training on ``device``; returns the context."""
    ctx = context()
    if ctx.active and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx


def finish() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def training_device(device: torch.device, ctx: Context) -> torch.device:
    """``cuda:<LOCAL_RANK>`` for a CUDA device under torchrun; the device otherwise."""
    if ctx.active and device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def total(values, ctx: Context, device: torch.device) -> np.ndarray:
    """Sums of ``values`` over every rank (as float64); the values themselves in one process."""
    arr = np.asarray(values, dtype=np.float64)
    if not ctx.active:
        return arr
    t = torch.as_tensor(arr, device=device)
    dist.all_reduce(t)
    return t.cpu().numpy()


def broadcast_buffers(net: torch.nn.Module, ctx: Context) -> None:
    """Copy rank 0's buffers (batch norm statistics) to every rank."""
    if ctx.active:
        for b in net.buffers():
            dist.broadcast(b, 0)


def launch(params_file: str | os.PathLike, run_dir: str | os.PathLike, nproc: int,
           device: str = "cpu") -> None:
    """Run stage 03 of ``run_dir`` in ``nproc`` processes on this node (``torchrun --standalone``).

    ``params_file`` holds the resolved parameters; each process runs ``python -m zslkit.model.train``.
    ``device`` is ``train.device``; on CUDA each process takes one GPU, so ``nproc`` may not exceed
    the GPUs torch sees.
    Raises :class:`RunError` naming the exit status when a process fails (their output is shown).
    """
    if nproc < 1:
        raise ParamError(f"train.nproc: {nproc} is below the minimum 1")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda and nproc > torch.cuda.device_count():
        raise ParamError(f"train.nproc: {nproc} processes, one per GPU, but torch sees "
                         f"{torch.cuda.device_count()} GPU(s); lower train.nproc or set train.device: cpu")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "zslkit.model.train", str(params_file), "--run-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1)
                                                                                        // nproc)))}
    done = subprocess.run(cmd, env=env, cwd=str(Path.cwd()))
    if done.returncode:
        raise RunError(f"distributed training ({nproc} processes) failed with exit status {done.returncode}: "
                       f"{' '.join(cmd)}")


def check(params: Mapping[str, Any], ctx: Context) -> None:
    """Refuse settings that cannot be split over ``ctx.world`` processes."""
    if ctx.active and params["train"]["batch_size"] < ctx.world:
        raise ParamError(f"train.batch_size: {params['train']['batch_size']} is smaller than the {ctx.world} "
                         "training processes (each needs at least one crop per batch)")
