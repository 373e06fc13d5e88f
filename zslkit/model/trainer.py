"""The trainer: one model, one setting, resumable, with a deterministic validation loss.

Conventions
-----------
- Batches come from :mod:`zslkit.model.sampling`; losses from :mod:`zslkit.model.losses`. The joint loss
  adds ``l2 * sum(w^2)`` over the encoder's ``kernels()`` (Keras' kernel regulariser). The
  classifier uses binary cross-entropy, averaged over the X tags of a segment and summed over the
  batch. A non-finite loss stops training with an error. Logged losses are per segment.
- Optimiser: SGD, lr 1e-3, momentum 0.9, Nesterov, Keras time decay ``lr / (1 + decay * step)``;
  the learning rate drops x0.2 after ``plateau_patience`` epochs without a better validation loss
  (floor ``min_lr``); training stops after ``early_stop`` such epochs. Adam is an option.
- The validation loss picks ``best.pt``; ``last.pt`` holds the optimiser state for resuming, and
  is refused when the run's parameters changed. Training never evaluates beyond this loss.
- No unseen (Y) tag reaches training: only X side-information rows exist in the trainer, and a
  split that lists a tag both ways is refused (:class:`~zslkit.errors.DataError`).
- ``train.augment`` (:mod:`zslkit.model.augment`) changes each training batch on the device, before it is
  standardised, seeded by the step; validation batches never. ``[]`` builds nothing and leaves the checkpoint
  digest as it was, so runs made before the key existed resume.
- ``train.ema`` (:mod:`zslkit.model.ema`): a moving average of the weights is validated, picks ``best.pt`` and
  is what ``best.pt`` holds; ``0`` builds none and leaves the digest as it was.
- ``train.tag_dropout`` (joint models): dropout on the tag branch's input while training, its mask seeded by
  ``(train seed, step, process rank)``; ``0`` draws nothing and leaves the digest as it was; the classifier,
  which has no tag branch, leaves it out of its digest.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import config
from ..data.audio import PAPER_MEAN, PAPER_STD
from ..data.melstore import MelStore
from ..errors import DataError, ParamError, RunError
from ..io import write_csv
from ..layout import DatasetLayout
from ..registry import ENCODERS
from . import distributed
from .adapt import RealAudio
from .augment import Augmenter, Context
from .checkpoints import build_model, save_checkpoint
from .ema import WeightAverage
from .feed import DeviceBatches, DevicePack, choose_feed
from .frozen import SEGMENT, FeaturePack, backbone_spec, check_encoder, check_front_end, dataset_features
from .inference import resolve_device, standardise
from .losses import contrastive_loss, hinge_loss
from .sampling import BatchSource, EpochKeys, pack_tracks, track_set

#: train keys that say how batches travel or where they run, not what they hold (``Field(neutral=True)``; left
#: out of the checkpoint digest: a run resumes on another feed or another number of processes)
FEED_KEYS = config.keys("train", neutral=True)
#: train keys added after checkpoints began to carry a digest, with the value that means "not used": left out of
#: the digest at that value, so a checkpoint made before the key existed still resumes
UNSET_SINCE_DIGEST = {"precision": "fp32", "augment": [], "finetune": None, "ema": 0.0, "tag_dropout": 0.0,
                      "adapt": "none", "adapt_weight": 100.0}
#: train keys that only a joint model reads: left out of the classifier's digest
JOINT_ONLY = ("tag_dropout",)
#: mixed into the seed of the tag branch's dropout masks, so they are not the augmentations' draws
TAG_DROPOUT_KEY = 0x746472


def fitted_batch(n_train: int, batch_size: int) -> int:
    """The batch stage 03 trains with: ``train.batch_size``, or, when the setting has fewer training tracks,
    the largest batch they fill (one crop of each), so that small data trains by default.

    Parameters
    ----------
    n_train : int
        Training tracks of the setting.
    batch_size : int
        ``train.batch_size``.

    Returns
    -------
    int
        ``min(batch_size, n_train)``; :class:`~zslkit.errors.DataError` when there is no training track.
    """
    if n_train < 1:
        raise DataError("no training track: no batch can be formed (see the split's train/valid parts in notebook 02)")
    return min(batch_size, n_train)


class _Step(torch.nn.Module):
    """The loss of one batch as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, net: torch.nn.Module, loss):
        super().__init__()
        self.net, self._loss = net, loss

    def forward(self, batch):
        return self._loss(batch, self.net)


def normalisation(ds, choice: str) -> tuple[float, float]:
    if choice == "paper":
        return PAPER_MEAN, PAPER_STD
    norm = ds.meta.get("normalisation")
    if not norm:
        raise DataError(f"{ds.root}/dataset.json: no normalisation constants; run notebook 01")
    return float(norm["mean"]), float(norm["std"])


def _flat(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train.lr": 0.001, ...}`` from nested mappings (lists kept whole)."""
    out = {}
    for k, v in obj.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
    return out


def params_digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Trainer:
    """Train one model (``kind='joint'`` or ``'classifier'``) on one setting, resumably.

    Parameters
    ----------
    ds : Dataset
    split : splits.Split
    seen_vectors : (n_X, d) array, the side information of the seen tags in ``split.seen`` order
        (joint model only). Unseen tags are never given to the trainer.
    params : the resolved params (sections ``train``, ``model``, ``audio``, ``heads`` are read)
    out_dir : folder for ``last.pt``, ``best.pt``, ``curves.csv``
    seed : seed of initialisation and sampling
    kind : ``"joint"`` or ``"classifier"``
    sideinfo : the side-information kind of ``seen_vectors`` (stored with the checkpoint)
    """

    def __init__(self, ds, split, seen_vectors: np.ndarray | None, params: Mapping[str, Any],
                 out_dir: str | os.PathLike, seed: int, kind: str = "joint", sideinfo: str | None = None):
        train = params["train"]
        self.p, self.kind, self.seed = dict(train), kind, seed
        self.out = Path(out_dir)
        self._join_processes(params)
        self.seen = self._seen_tags(split)
        # a frozen backbone (model.encoder: musicnn, hear, ...): the projection trains on stage 01's cached features
        self.features = dataset_features(ds, backbone_spec(params)) if check_encoder(params) else None
        self.segment = SEGMENT if self.features is not None else params["audio"]["segment_frames"]
        self.train_set, self.valid_set = self._track_sets(ds, split)
        # features are standardised per dimension inside the projection (FeatureProjection.set_standardisation); a
        # pretrained encoder on its own front end takes its log-mels as they are
        raw = self.features is not None or check_front_end(params)
        self.mean, self.std = (0.0, 1.0) if raw else normalisation(ds, train["normalisation"])
        torch.manual_seed(seed)  # before the network is built: its initialisation draws from it
        self.net, self.vectors, self.arch = self._network(ds, params, seen_vectors, sideinfo)
        self.opt = self._optimiser()
        self.ema = WeightAverage(self.net, train["ema"]) if train.get("ema") else None
        self.made_with, self.digest = self._made_with()
        self.state = {"epoch": 0, "step": 0, "plateau_lr": train["lr"], "best": math.inf, "best_epoch": 0,
                      "bad_epochs": 0, "history": []}
        self.train_src, self.valid_src, self.feed = self._batch_sources(ds)
        self.augment = self._augmenter(ds, params)
        self.real = self._real_audio(params)
        self.autocast = dict(device_type=self.device.type, dtype=torch.bfloat16, enabled=train["precision"] == "bf16")
        self._loaders: dict = {}
        self._step = None  # the loss module, wrapped in DistributedDataParallel under torchrun

    # -- set-up, one part each -------------------------------------------------------------------
    def _join_processes(self, params: Mapping[str, Any]) -> None:
        """This process's place in a ``torchrun`` launch (or alone), and its training device."""
        device = resolve_device(params["train"]["device"])
        self.dist = distributed.init(device)
        distributed.check(params, self.dist)
        self.device = distributed.training_device(device, self.dist)

    @staticmethod
    def _seen_tags(split) -> list[str]:
        """The split's seen tags; a split listing a tag both seen and unseen is refused."""
        seen = list(split.seen)
        leaked = set(seen) & set(split.unseen)
        if leaked:
            raise DataError(f"split {split.name!r}: unseen tag {sorted(leaked)[0]!r} is also listed as seen; "
                            "no unseen tag may reach training")
        return seen

    def _track_sets(self, ds, split):
        """The training setting's train and valid tracks with their seen labels."""
        setting = self.p["setting"]
        train_set = track_set(ds, split.train_tracks(setting), self.seen, self.features)
        valid_set = track_set(ds, split.valid_tracks(setting), self.seen, self.features)
        self.batch_size = fitted_batch(len(train_set), self.p["batch_size"])
        return train_set, valid_set

    def _network(self, ds, params: Mapping[str, Any], seen_vectors: np.ndarray | None, sideinfo: str | None):
        """The model on the training device, the seen tags' side information there, and the architecture
        recorded with every checkpoint."""
        model = params["model"]
        store = ds.mels if self.features is None else self.features
        arch = {"encoder": model["encoder"], "encoder_params": dict(model[model["encoder"]]),
                "segment_frames": self.segment, "hidden": params["heads"]["learned"]["hidden"],
                "sideinfo": sideinfo if self.kind == "joint" else None,
                "n_mels": int(store[self.train_set.track_ids[0]].shape[1])}
        entry = ENCODERS[model["encoder"]]
        if entry.flags.get("pretrained"):  # what it was supervised on: stage 05's and transfer's leakage
            arch["pretrained"] = entry.obj.supervised_on(model[model["encoder"]])
        if self.features is not None:  # what stage 04, tag, transfer and zslkit.hear need to embed other audio
            described = ("encoder", "params", "key", "dim", "sample_rate", "supervised_on")
            arch.update(backbone={**{k: self.features.meta[k] for k in described},
                                  "plugins": list(params["run"]["plugins"])},
                        projection=model["projection"])
        vectors = None
        if self.kind == "joint":
            if seen_vectors is None or len(seen_vectors) != len(self.seen):
                raise ParamError("the joint model needs one side-information row per seen tag")
            if np.isnan(seen_vectors).any():
                raise DataError("a seen tag has no side-information vector; drop it from the split")
            vectors = torch.as_tensor(seen_vectors, dtype=torch.float32, device=self.device)
            arch["side_dim"] = int(seen_vectors.shape[1])
        net = build_model(self.kind, arch, len(self.seen), self.p.get("tag_dropout", 0.0))
        if self.features is not None:
            net.audio.set_standardisation(self.features.matrix(self.train_set.track_ids))
        if self.dist.active and self.device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        if self.segment < net.audio.min_frames:
            raise ParamError(f"audio.segment_frames: {self.segment} is shorter than encoder "
                             f"{model['encoder']!r} accepts ({net.audio.min_frames} frames)")
        return net.to(self.device), vectors, arch

    def _optimiser(self) -> torch.optim.Optimizer:
        p = self.p
        groups = self._param_groups()
        if p["optimizer"] == "sgd":
            return torch.optim.SGD(groups, lr=p["lr"], momentum=p["momentum"], nesterov=p["nesterov"])
        return torch.optim.Adam(groups, lr=p["lr"])

    def _param_groups(self) -> list[dict[str, Any]]:
        """One group at ``train.lr``; an encoder with pretrained weights (``pretrained_parameters()``) puts them in a
        second group at ``train.finetune`` (``lr_scale`` = finetune / lr, kept by the schedule; 0 freezes them)."""
        audio = self.net.audio
        pretrained = list(audio.pretrained_parameters()) if hasattr(audio, "pretrained_parameters") else []
        if not pretrained:
            return [{"params": list(self.net.parameters()), "lr_scale": 1.0}]
        mine = {id(q) for q in pretrained}
        rest = [q for q in self.net.parameters() if id(q) not in mine]
        finetune = self.p["finetune"]
        if finetune == 0:
            for q in pretrained:
                q.requires_grad_(False)
            return [{"params": rest, "lr_scale": 1.0}]
        scale = 1.0 if finetune is None else finetune / self.p["lr"]
        return [{"params": rest, "lr_scale": 1.0}, {"params": pretrained, "lr_scale": scale}]

    def _made_with(self) -> tuple[dict[str, Any], str]:
        """What the checkpoints are made with, and its digest: a checkpoint resumes only under the same."""
        # how batches travel changes no number; the keys added after the digest existed are recorded only when
        # set, so older checkpoints still resume
        digested = {k: v for k, v in self.p.items()
                    if k not in FEED_KEYS and not (k in UNSET_SINCE_DIGEST and v == UNSET_SINCE_DIGEST[k])
                    and not (k in JOINT_ONLY and self.kind != "joint")}
        made_with = {"train": digested, "arch": self.arch, "kind": self.kind, "seed": self.seed, "seen": self.seen,
                     "n_train": len(self.train_set)}
        return made_with, params_digest(made_with)

    def _batch_sources(self, ds):
        """The seeded train and valid batch plans (this process's share of each batch) and the feed that
        brings their crops to the device."""
        p = self.p
        negatives = p["negatives"] if self.kind == "joint" and p["loss"] == "hinge" else 0
        if self.features is not None:  # the vectors are already one small array in memory
            packs = [FeaturePack(self.features, s.track_ids) for s in (self.train_set, self.valid_set)]
        else:
            packs = [pack_tracks(ds, s) if p["pack"] else None for s in (self.train_set, self.valid_set)]
        part = (self.dist.rank, self.dist.world)
        train_src = BatchSource(self.train_set, self.batch_size, negatives, self.seed, self.segment,
                                crops_per_track=p["crops_per_track"], pack=packs[0], part=part)
        valid_src = BatchSource(self.valid_set, self.batch_size, negatives, self.seed, self.segment,
                                valid=True, pack=packs[1], part=part)
        if self.features is not None:
            return train_src, valid_src, "host"
        return train_src, valid_src, choose_feed(p["feed"], self.device, packs[0], p["device_pack_gb"])

    def _augmenter(self, ds, params: Mapping[str, Any]) -> Augmenter | None:
        """``train.augment``'s augmentations of the training batches; None when none are listed."""
        items = self.p.get("augment") or []
        if not items:
            return None
        rate = (ds.meta.get("mel_spec") or {}).get("sample_rate") or params["audio"]["sample_rate"]
        return Augmenter(items, Context(self.device, self.mean, int(rate)), self.seed, self.dist.rank)

    def _real_audio(self, params: Mapping[str, Any]) -> RealAudio | None:
        """``train.adapt``'s unlabelled real audio (stage 01's ``<data_dir>/unlabelled`` mels); None without it."""
        if self.p["adapt"] == "none":
            return None
        if self.features is not None:
            raise ParamError(f"train.adapt: {self.p['adapt']} needs an encoder trained from the mels; "
                             f"model.encoder {params['model']['encoder']!r} is a frozen backbone")
        if not params["data"]["unlabelled"]:
            raise ParamError(f"train.adapt: {self.p['adapt']} needs real audio without labels: set data.unlabelled "
                             "(e.g. [singularity-music, supertux-data, hedgewars-data, warzone2100-music]) and rerun "
                             "stage 01")
        folder = DatasetLayout.unlabelled(params).mels
        if not folder.is_dir():
            raise DataError(f"train.adapt: {folder} not found: stage 01 prepares data.unlabelled's mels; rerun it")
        return RealAudio(MelStore.from_dir(folder), self.segment, self.batch_size, self.seed, self.dist.rank,
                         self.p["adapt_weight"])

    # -- one batch -----------------------------------------------------------------------------
    def loss(self, batch, net: torch.nn.Module | None = None) -> torch.Tensor:
        """The summed loss of a batch (of this process's rows) under ``net`` (default: the model); in training,
        with ``train.adapt``'s loss on the real crops of this step added (:mod:`zslkit.model.adapt`)."""
        net = self.net if net is None else net
        x, pos, neg, positives = (t.to(self.device, non_blocking=True) for t in batch)
        x = standardise(x, self.mean, self.std)
        task = self._task_loss(net, x, pos, neg, positives)
        if self.real is None or not net.training:
            return task
        real = standardise(torch.from_numpy(self.real.batch_at(self.state["step"])).to(self.device), self.mean,
                           self.std)
        return task + self.real.loss(net.audio, x, real)

    def _task_loss(self, net, x, pos, neg, positives) -> torch.Tensor:
        if self.kind == "classifier":
            bce = F.binary_cross_entropy_with_logits(net(x), positives.float(), reduction="none")
            return bce.mean(dim=1).sum()  # per segment: mean over tags; summed over the batch
        if self.p["loss"] == "hinge":
            index = torch.cat([pos[:, None], neg], dim=1)
            return hinge_loss(net.pair_scores(x, self.vectors, index), self.p["margin"])
        return contrastive_loss(net.scores(x, self.vectors), pos, positives, self.p["temperature"])

    def step_module(self) -> torch.nn.Module:
        """The training loss as a module: plain, or wrapped in DDP when several processes train."""
        if self._step is None:
            self._step = _Step(self.net, self.loss)
            if self.dist.active:
                ids = [self.device.index] if self.device.type == "cuda" else None
                self._step = torch.nn.parallel.DistributedDataParallel(self._step, device_ids=ids)
        return self._step

    def regulariser(self) -> torch.Tensor:
        return self.p["l2"] * sum((w ** 2).sum() for w in self.net.audio.kernels())

    def _loader(self, source):
        """The batches of a source (:mod:`zslkit.model.feed`): gathered on the device from its pack, or one
        DataLoader per source, workers kept alive across epochs, pinned memory on CUDA; the sampler
        (main process) hands out ``(epoch, batch)`` keys, so workers never need to be told the epoch."""
        if source not in self._loaders:
            if self.feed == "device" and source.pack is not None:
                self._loaders[source] = DeviceBatches(source, DevicePack(source.pack, self.device))
            else:
                workers = self.p["workers"]
                self._loaders[source] = torch.utils.data.DataLoader(
                    source, batch_size=None, sampler=EpochKeys(source), num_workers=workers,
                    persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
                    pin_memory=self.device.type == "cuda")
        return self._loaders[source]

    def run_epoch(self, progress: bool = True) -> dict[str, float]:
        self.net.train()
        epoch = self.state["epoch"]
        self.train_src.set_epoch(epoch)
        total, n, wait = 0.0, 0, 0.0
        t0 = time.perf_counter()
        tick = time.perf_counter()
        for batch in tqdm(self._loader(self.train_src), total=len(self.train_src), leave=False,
                          desc=f"epoch {epoch + 1}", disable=not progress):
            wait += time.perf_counter() - tick
            if self.augment is not None:
                batch = self.augment(batch, self.state["step"])
            if self.kind == "joint" and self.net.tag.dropout > 0:
                self.net.tag.dropout_seed = int(np.random.default_rng(
                    [self.seed, TAG_DROPOUT_KEY, self.state["step"], self.dist.rank]).integers(2 ** 62))
            lr = self.state["plateau_lr"] / (1 + self.p["decay"] * self.state["step"])
            for group in self.opt.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            with torch.autocast(**self.autocast):
                loss = self.step_module()(batch)
            self.opt.zero_grad(set_to_none=True)
            # DDP averages gradients over the processes; the loss is a sum over the batch, so scale it back
            (loss * self.dist.world + self.regulariser()).backward()
            self.opt.step()
            if self.ema is not None:
                self.ema.update(self.net, self.state["step"])
            self.state["step"] += 1
            total += loss.item()
            n += len(batch[0])
            tick = time.perf_counter()
        seconds = time.perf_counter() - t0
        total, n = distributed.total([total, n], self.dist, self.device)
        return {"train_loss": total / n, "lr": lr, "seconds": seconds, "data_wait": wait / seconds,
                "segments_per_s": n / seconds}

    @torch.no_grad()
    def validate(self) -> float:
        """The validation loss of the model, or of its weight average with ``train.ema``."""
        self.net.eval()
        distributed.broadcast_buffers(self.net, self.dist)  # every rank validates with rank 0's statistics
        net = self.net if self.ema is None else self.ema.module
        total, n = 0.0, 0
        for batch in self._loader(self.valid_src):
            with torch.autocast(**self.autocast):
                total += self.loss(batch, net).item()
            n += len(batch[0])
        total, n = distributed.total([total, n], self.dist, self.device)
        return total / max(n, 1)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, progress: bool = True, max_epochs: int | None = None, log=None) -> pd.DataFrame:
        """Train until early stopping or ``max_epochs``; resume from ``last.pt`` when present.

        A projection on a frozen backbone's features trains on one CPU thread: its matrices are too small for
        threads to pay (twice as fast on 2 busy cores); the process's setting is restored afterwards."""
        threads = torch.get_num_threads()
        if self.features is not None and self.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            return self._fit(progress, max_epochs, log)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, progress: bool, max_epochs: int | None, log) -> pd.DataFrame:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.p["resume"] and (self.out / "last.pt").is_file():
            self.load_last()
        max_epochs = max_epochs or self.p["max_epochs"]
        progress = progress and self.dist.main
        bar = tqdm(total=max_epochs, initial=self.state["epoch"], desc=f"{self.kind} {self.p['setting']}-X",
                   unit="epoch", disable=not progress)
        while self.state["epoch"] < max_epochs and self.state["bad_epochs"] < self.p["early_stop"]:
            row = self.run_epoch(progress)
            row["valid_loss"] = self.validate()
            if not (math.isfinite(row["train_loss"]) and math.isfinite(row["valid_loss"])):
                raise RunError(f"{self.kind} training diverged in epoch {self.state['epoch'] + 1} (train loss "
                               f"{row['train_loss']}, valid loss {row['valid_loss']}); lower train.lr or "
                               "use train.optimizer: adam")
            self.state["epoch"] += 1
            row["epoch"] = self.state["epoch"]
            improved = row["valid_loss"] < self.state["best"] - 1e-6
            if improved:
                self.state.update(best=row["valid_loss"], best_epoch=row["epoch"], bad_epochs=0)
                if self.dist.main:
                    self.save(self.out / "best.pt", full=False)
            else:
                self.state["bad_epochs"] += 1
                if self.state["bad_epochs"] % self.p["plateau_patience"] == 0:
                    self.state["plateau_lr"] = max(self.state["plateau_lr"] * self.p["plateau_factor"],
                                                   self.p["min_lr"])
            self.state["history"].append(row)
            if self.dist.main:  # one writer; every rank holds the same state
                self.save(self.out / "last.pt", full=True)
                write_csv(self.out / "curves.csv", self.curves())
            bar.update()
            bar.set_postfix(train=f"{row['train_loss']:.3f}", valid=f"{row['valid_loss']:.3f}")
            if log:
                log(row)
        bar.close()
        return self.curves()

    def curves(self) -> pd.DataFrame:
        cols = ["epoch", "train_loss", "valid_loss", "lr", "seconds", "data_wait", "segments_per_s"]
        return pd.DataFrame(self.state["history"], columns=cols)

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self, path: Path, full: bool) -> None:
        """``last.pt`` (``full``): the trained weights, the optimiser, the state and the weight average;
        ``best.pt``: the weights evaluated later (the average's with ``train.ema``)."""
        extra = None
        if full:
            extra = {"optimizer": self.opt.state_dict(), "state": json.dumps(self.state),
                     "made_with": json.dumps(self.made_with, default=str)}
            if self.ema is not None:
                extra["ema"] = self.ema.state_dict()
        net = self.net if full or self.ema is None else self.ema.module
        save_checkpoint(path, net, self.kind, self.arch, self.seen, self.mean, self.std,
                        self.state["epoch"], self.digest, extra)

    def load_last(self) -> None:
        blob = torch.load(self.out / "last.pt", map_location=self.device, weights_only=True)
        if blob["digest"] != self.digest:
            old = _flat(json.loads(blob.get("made_with", "{}")))
            new = _flat(json.loads(json.dumps(self.made_with, default=str)))
            diff = [f"  {k}: {old.get(k)!r} in the checkpoint, {new.get(k)!r} now" for k in sorted(set(old) | set(new))
                    if old.get(k) != new.get(k)] if old else ["  (a checkpoint of an older zslkit: no record)"]
            raise ParamError(f"{self.out / 'last.pt'} was trained with other parameters:\n" + "\n".join(diff[:12])
                             + "\nset train.resume: false, use another run name, or set them back")
        self.net.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(blob["ema"])
        self.state = json.loads(blob["state"])

    def load_best(self) -> None:
        blob = torch.load(self.out / "best.pt", map_location=self.device, weights_only=True)
        self.net.load_state_dict(blob["model"])
