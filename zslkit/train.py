"""Training the joint embedding model (and the supervised classifier baseline).

Conventions (paper_spec §4.5-4.7)
---------------------------------
- An epoch is a seeded shuffle of the setting's training tracks (A, B or A+B train), each listed
  ``crops_per_track`` times (paper: once), cut into ``floor(n * crops_per_track / batch_size)``
  batches. Each entry gives one random 130-frame crop (clips shorter than 130 frames are tiled),
  standardised with the dataset's mean/std (or the paper's). Crops are read from a pack of the
  tracks' mels (:mod:`zslkit.melpack`, ``train.pack``) or from per-track memory maps; both give
  identical batches.
- Each crop gets one positive drawn uniformly from the track's seen (X) tags and ``negatives``
  (K) distinct tags drawn uniformly from the X tags it is not annotated with.
- Loss ``hinge``: ``sum_b sum_k max(0, margin - cos(a_b, p_b) + cos(a_b, n_bk))`` (summed, as the
  original), plus ``l2 * sum(w^2)`` over the convolution kernels (Keras' kernel regulariser).
  ``contrastive``: softmax cross-entropy over all X tags (other positives masked), temperature
  ``temperature``, summed. The classifier uses binary cross-entropy, averaged over the X tags of
  a segment and summed over the batch. A non-finite loss stops training with an error.
  Logged losses are per segment (sum / batch).
- Optimiser: SGD, lr 1e-3, momentum 0.9, Nesterov, Keras time decay ``lr / (1 + decay * step)``;
  the learning rate drops x0.2 after ``plateau_patience`` epochs without a better validation loss
  (floor ``min_lr``); training stops after ``early_stop`` such epochs. Adam is an option.
- Validation is deterministic: batch ``b`` of every epoch uses the same crops and negatives
  (seeded by ``(seed, 'valid', b)``), so the validation loss can select the checkpoint.
- Batches are seeded by ``(seed, epoch, b)``: the same data whatever the number of workers, and a
  resumed run continues exactly where an uninterrupted run would be.
- No unseen (Y) tag reaches training: only X side-information rows exist in the trainer, which
  asserts it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .audio import PAPER_MEAN, PAPER_STD
from .errors import DataError, ParamError, RunError
from .io import atomic_path, write_csv
from .model import Classifier, JointModel, TagBranch, make_encoder

SEGMENT = 130


# ----------------------------------------------------------------------------- data

@dataclass
class TrackSet:
    """Training or validation tracks with their seen-tag positives (X indices)."""

    track_ids: list[str]
    files: list[str]
    n_frames: np.ndarray
    positives: np.ndarray      # bool (n_tracks, n_X)

    def __len__(self) -> int:
        return len(self.track_ids)


def track_set(ds, track_ids: Sequence[str], seen: Sequence[str]) -> TrackSet:
    """Tracks with mels and at least one seen positive, with their X-label matrix."""
    store = ds.mels
    keep = [t for t in track_ids if t in store]
    labels = ds.labels(keep, seen)
    ok = labels.any(axis=1)
    keep = [t for t, k in zip(keep, ok) if k]
    index = pd.read_csv(ds.root / "mels" / "index.csv", dtype={"track_id": str}).set_index("track_id")
    return TrackSet(keep, [str(store.files[t]) for t in keep],
                    index.loc[keep, "n_frames"].to_numpy(dtype=np.int64) if keep else np.zeros(0, np.int64),
                    labels[ok])


def pack_tracks(ds, tracks: TrackSet, progress: bool = True):
    """The tracks' mels in one memory map under ``<dataset>/mels/packs/`` (built once, then reused)."""
    from .melpack import build_pack
    if not len(tracks):
        return None
    return build_pack(tracks.track_ids, tracks.files, ds.root / "mels" / "packs", progress=progress)


_MAPS: dict[str, np.ndarray] = {}


def open_mel(path: str) -> np.ndarray:
    """A memory map of a mel file, kept open per process (opening costs more than reading a crop)."""
    mel = _MAPS.get(path)
    if mel is None:
        if len(_MAPS) >= 8192:
            _MAPS.clear()
        mel = _MAPS[path] = np.load(path, mmap_mode="r")
    return mel


def crop(path: str, n_frames: int, start: int, length: int = SEGMENT) -> np.ndarray:
    """Frames ``start:start+length`` of a memory-mapped mel (in its dtype), tiling clips shorter
    than ``length``."""
    mel = open_mel(path)
    if n_frames < length:
        mel = np.tile(np.asarray(mel), (math.ceil(length / n_frames), 1))
    return np.array(mel[start:start + length])


def sample_batch(tracks: TrackSet, idx: np.ndarray, rng: np.random.Generator, negatives: int):
    """Vectorised draws for one batch: crop starts, one positive and K negatives per track.

    Returns ``starts (b,)``, ``pos (b,)``, ``neg (b, K)`` as X indices.
    """
    pos_mat = tracks.positives[idx]
    span = np.maximum(tracks.n_frames[idx] - SEGMENT, 0) + 1
    starts = (rng.random(len(idx)) * span).astype(np.int64)
    counts = pos_mat.sum(axis=1)
    pick = (rng.random(len(idx)) * counts).astype(np.int64)  # the pick-th positive of each row
    pos = np.argmax(np.cumsum(pos_mat, axis=1) > pick[:, None], axis=1)
    if negatives:
        if (pos_mat.shape[1] - counts < negatives).any():
            raise DataError(f"a track has fewer than {negatives} seen negative tags")
        keys = rng.random(pos_mat.shape)
        keys[pos_mat] = np.inf  # positives are never drawn as negatives
        neg = np.argpartition(keys, negatives - 1, axis=1)[:, :negatives]
    else:
        neg = np.zeros((len(idx), 0), dtype=np.int64)
    return starts, pos, neg


class BatchSource(torch.utils.data.Dataset):
    """Batch ``b`` of an epoch (or of the fixed validation pass), built in the main process or a
    DataLoader worker (``train.workers``)."""

    def __init__(self, tracks: TrackSet, batch_size: int, negatives: int, seed: int, mean: float,
                 std: float, valid: bool = False, crops_per_track: int = 1, pack=None):
        self.pack = pack  # a melpack.MelPack of these tracks, in order, or None: per-file memory maps
        self.tracks, self.batch_size, self.negatives = tracks, batch_size, negatives
        self.seed, self.mean, self.std, self.valid = seed, mean, std, valid
        self.crops = 1 if valid else crops_per_track
        self.epoch = 0
        n = len(tracks)
        self.n_batches = math.ceil(n / batch_size) if valid else n * self.crops // batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, key):
        """Batch ``key = (epoch, b)`` (or ``b`` of the current epoch)."""
        epoch, b = key if isinstance(key, tuple) else (self.epoch, key)
        if self.valid:
            idx = np.arange(b * self.batch_size, min((b + 1) * self.batch_size, len(self.tracks)))
            rng = np.random.default_rng([self.seed, 999_983, b])
        else:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.tracks) * self.crops)
            order %= len(self.tracks)  # each track `crops` times, each with its own crop
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            rng = np.random.default_rng([self.seed, epoch, b])
        starts, pos, neg = sample_batch(self.tracks, idx, rng, self.negatives)
        if self.pack is not None:
            x = self.pack.crops(idx, starts, SEGMENT)
        else:
            x = np.stack([crop(self.tracks.files[i], int(self.tracks.n_frames[i]), int(s))
                          for i, s in zip(idx, starts)])
        # crops travel in the store's dtype (half the bytes for float16); the trainer standardises
        return (torch.from_numpy(x), torch.from_numpy(pos), torch.from_numpy(neg),
                torch.from_numpy(self.tracks.positives[idx]))


def standardise(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Crops as float32, ``(x - mean) / std`` (on the device the model runs on)."""
    return x.float().sub_(mean).div_(std) if x.dtype != torch.float32 else (x - mean).div_(std)


class EpochKeys(torch.utils.data.Sampler):
    """Yields ``(epoch, b)`` for every batch of the source's current epoch."""

    def __init__(self, source: BatchSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        return iter([(self.source.epoch, b) for b in range(len(self.source))])


# ----------------------------------------------------------------------------- losses

def hinge_loss(scores: torch.Tensor, margin: float = 0.4) -> torch.Tensor:
    """Summed hinge loss; ``scores[:, 0]`` is the positive, ``scores[:, 1:]`` the negatives."""
    return F.relu(margin - scores[:, :1] + scores[:, 1:]).sum()


def contrastive_loss(scores: torch.Tensor, pos: torch.Tensor, positives: torch.Tensor,
                     temperature: float = 0.1) -> torch.Tensor:
    """Summed softmax cross-entropy over all X tags; the track's other positives are masked."""
    logits = scores / temperature
    others = positives.clone()
    others[torch.arange(len(pos)), pos] = False
    logits = logits.masked_fill(others, float("-inf"))
    return F.cross_entropy(logits, pos, reduction="sum")


# ----------------------------------------------------------------------------- trainer

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamError("train.device: 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)


def normalisation(ds, choice: str) -> tuple[float, float]:
    if choice == "paper":
        return PAPER_MEAN, PAPER_STD
    norm = ds.meta.get("normalisation")
    if not norm:
        raise DataError(f"{ds.root}/dataset.json: no normalisation constants; run notebook 01")
    return float(norm["mean"]), float(norm["std"])


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
    train, model : the resolved ``train`` and ``model`` params
    out_dir : folder for ``last.pt``, ``best.pt``, ``curves.csv``
    """

    def __init__(self, ds, split, seen_vectors: np.ndarray | None, train: Mapping[str, Any],
                 model: Mapping[str, Any], out_dir: str | os.PathLike, seed: int, kind: str = "joint"):
        self.p, self.kind, self.seed = dict(train), kind, seed
        self.out = Path(out_dir)
        self.device = resolve_device(train["device"])
        self.seen = list(split.seen)
        assert not set(self.seen) & set(split.unseen), "an unseen tag is listed as seen"
        setting = train["setting"]
        self.train_set = track_set(ds, split.tracks[f"{setting}_train"], self.seen)
        self.valid_set = track_set(ds, split.tracks[f"{setting}_valid"], self.seen)
        if len(self.train_set) < train["batch_size"]:
            raise DataError(f"setting {setting}: {len(self.train_set)} training tracks, fewer than "
                            f"one batch of {train['batch_size']}")
        self.mean, self.std = normalisation(ds, train["normalisation"])
        torch.manual_seed(seed)
        encoder = make_encoder(model["encoder"], n_mels=ds.mels[self.train_set.track_ids[0]].shape[1])
        if kind == "joint":
            if seen_vectors is None or len(seen_vectors) != len(self.seen):
                raise ParamError("the joint model needs one side-information row per seen tag")
            if np.isnan(seen_vectors).any():
                raise DataError("a seen tag has no side-information vector; drop it from the split")
            self.vectors = torch.as_tensor(seen_vectors, dtype=torch.float32, device=self.device)
            self.net = JointModel(encoder, TagBranch(seen_vectors.shape[1], hidden=model["tag_hidden"]))
        else:
            self.vectors = None
            self.net = Classifier(encoder, len(self.seen))
        self.net.to(self.device)
        lr = train["lr"]
        if train["optimizer"] == "sgd":
            self.opt = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=train["momentum"],
                                       nesterov=train["nesterov"])
        else:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.digest = params_digest({"train": self.p, "model": dict(model), "kind": kind, "seed": seed,
                                     "seen": self.seen, "n_train": len(self.train_set)})
        self.state = {"epoch": 0, "step": 0, "plateau_lr": lr, "best": math.inf, "best_epoch": 0,
                      "bad_epochs": 0, "history": []}
        negatives = train["negatives"] if kind == "joint" and train["loss"] == "hinge" else 0
        packs = [pack_tracks(ds, s) if train["pack"] else None for s in (self.train_set, self.valid_set)]
        self.train_src = BatchSource(self.train_set, train["batch_size"], negatives, seed, self.mean, self.std,
                                     crops_per_track=train["crops_per_track"], pack=packs[0])
        self.valid_src = BatchSource(self.valid_set, train["batch_size"], negatives, seed, self.mean,
                                     self.std, valid=True, pack=packs[1])
        self._loaders: dict = {}

    # -- one batch -----------------------------------------------------------------------------
    def loss(self, batch) -> torch.Tensor:
        x, pos, neg, positives = (t.to(self.device) for t in batch)
        x = standardise(x, self.mean, self.std)
        if self.kind == "classifier":
            bce = F.binary_cross_entropy_with_logits(self.net(x), positives.float(), reduction="none")
            return bce.mean(dim=1).sum()  # per segment: mean over tags; summed over the batch
        if self.p["loss"] == "hinge":
            index = torch.cat([pos[:, None], neg], dim=1)
            return hinge_loss(self.net.pair_scores(x, self.vectors, index), self.p["margin"])
        return contrastive_loss(self.net.scores(x, self.vectors), pos, positives, self.p["temperature"])

    def regulariser(self) -> torch.Tensor:
        return self.p["l2"] * sum((w ** 2).sum() for w in self.net.audio.kernels())

    def _loader(self, source):
        """One DataLoader per source, workers kept alive across epochs; the sampler (main process)
        hands out ``(epoch, batch)`` keys, so workers never need to be told the epoch."""
        if source not in self._loaders:
            workers = self.p["workers"]
            self._loaders[source] = torch.utils.data.DataLoader(
                source, batch_size=None, sampler=EpochKeys(source), num_workers=workers,
                persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
        return self._loaders[source]

    def run_epoch(self, progress: bool = True) -> dict[str, float]:
        from tqdm.auto import tqdm
        self.net.train()
        epoch = self.state["epoch"]
        self.train_src.set_epoch(epoch)
        total, n, wait = 0.0, 0, 0.0
        t0 = time.perf_counter()
        tick = time.perf_counter()
        for batch in tqdm(self._loader(self.train_src), total=len(self.train_src), leave=False,
                          desc=f"epoch {epoch + 1}", disable=not progress):
            wait += time.perf_counter() - tick
            lr = self.state["plateau_lr"] / (1 + self.p["decay"] * self.state["step"])
            for group in self.opt.param_groups:
                group["lr"] = lr
            loss = self.loss(batch)
            self.opt.zero_grad(set_to_none=True)
            (loss + self.regulariser()).backward()
            self.opt.step()
            self.state["step"] += 1
            total += loss.item()
            n += len(batch[0])
            tick = time.perf_counter()
        seconds = time.perf_counter() - t0
        return {"train_loss": total / n, "lr": lr, "seconds": seconds, "data_wait": wait / seconds,
                "segments_per_s": n / seconds}

    @torch.no_grad()
    def validate(self) -> float:
        self.net.eval()
        total, n = 0.0, 0
        for batch in self._loader(self.valid_src):
            total += self.loss(batch).item()
            n += len(batch[0])
        return total / max(n, 1)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, progress: bool = True, max_epochs: int | None = None, log=None) -> pd.DataFrame:
        """Train until early stopping or ``max_epochs``; resume from ``last.pt`` when present."""
        from tqdm.auto import tqdm
        self.out.mkdir(parents=True, exist_ok=True)
        if self.p["resume"] and (self.out / "last.pt").is_file():
            self.load_last()
        max_epochs = max_epochs or self.p["max_epochs"]
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
                self.save(self.out / "best.pt", full=False)
            else:
                self.state["bad_epochs"] += 1
                if self.state["bad_epochs"] % self.p["plateau_patience"] == 0:
                    self.state["plateau_lr"] = max(self.state["plateau_lr"] * self.p["plateau_factor"],
                                                   self.p["min_lr"])
            self.state["history"].append(row)
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
        blob = {"model": self.net.state_dict(), "digest": self.digest, "kind": self.kind,
                "seen": self.seen, "mean": self.mean, "std": self.std, "epoch": self.state["epoch"]}
        if full:
            blob["optimizer"] = self.opt.state_dict()
            blob["state"] = json.dumps(self.state)
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(blob, tmp)

    def load_last(self) -> None:
        blob = torch.load(self.out / "last.pt", map_location=self.device, weights_only=True)
        if blob["digest"] != self.digest:
            raise ParamError(f"{self.out / 'last.pt'} was trained with other parameters; set "
                             "train.resume: false or use another run name")
        self.net.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["optimizer"])
        self.state = json.loads(blob["state"])

    def load_best(self) -> None:
        blob = torch.load(self.out / "best.pt", map_location=self.device, weights_only=True)
        self.net.load_state_dict(blob["model"])


def load_checkpoint(path: str | os.PathLike, model_params: Mapping[str, Any], side_dim: int | None = None,
                    n_mels: int = 128, device: str | torch.device = "cpu"):
    """A trained model from ``best.pt`` or ``last.pt`` (read with ``weights_only=True``), in eval mode.

    Returns ``(model, info)``; ``info`` has ``kind, seen, mean, std, epoch``. A joint model needs
    ``side_dim``, the dimension of the side information its tag branch reads.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found; run notebook 03 first")
    blob = torch.load(path, map_location=device, weights_only=True)
    encoder = make_encoder(model_params["encoder"], n_mels=n_mels)
    if blob["kind"] == "joint":
        if side_dim is None:
            raise ParamError(f"{path}: a joint model needs the side-information dimension")
        net = JointModel(encoder, TagBranch(side_dim, hidden=model_params["tag_hidden"]))
    else:
        net = Classifier(encoder, len(blob["seen"]))
    try:
        net.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise ParamError(f"{path} does not fit model params {dict(model_params)} "
                         f"(side dim {side_dim}): {str(exc).splitlines()[0]}") from None
    net.to(device).eval()
    return net, {k: blob[k] for k in ("kind", "seen", "mean", "std", "epoch")}


@torch.no_grad()
def classifier_scores(net, store, track_ids: Sequence[str], mean: float, std: float,
                      device: str | torch.device = "cpu") -> np.ndarray:
    """The supervised classifier's logits ``(n_tracks, n_seen)`` on segment-averaged embeddings.

    The linear output commutes with the segment mean, so this equals averaging segment logits.
    """
    from .embed import track_embeddings
    emb = track_embeddings(net.audio, store, track_ids, mean, std, device=device)
    return net.out(torch.as_tensor(emb, device=device)).cpu().numpy()


# ----------------------------------------------------------------------------- stage 03

def seen_vectors(ds, split, kind: str) -> np.ndarray:
    """Side-information rows of the seen tags, in ``split.seen`` order."""
    from .sideinfo import load_table
    table = load_table(ds, split.name, kind)
    row = {t: i for i, t in enumerate(table.tags)}
    missing = [t for t in split.seen if t not in row]
    if missing:
        raise DataError(f"side information {kind!r} has no row for seen tag {missing[0]!r}")
    return table.vectors[[row[t] for t in split.seen]]


def seen_tag_auc(trainer: Trainer, ds, track_ids: Sequence[str], complete: bool = False) -> dict:
    """Retrieval ROC-AUC over the seen tags on ``track_ids`` (whole tracks, segment-averaged).

    ``complete=True`` scores against m21's complete labels instead of the annotation.
    """
    from .embed import cosine_scores, track_embeddings
    from .metrics import roc_auc, summarise
    ids = [t for t in track_ids if t in ds.mels]
    emb = track_embeddings(trainer.net.audio, ds.mels, ids, trainer.mean, trainer.std,
                           device=trainer.device)
    labels = ds.labels(ids, trainer.seen)
    if complete:
        labels = ds.complete_labels(ids, trainer.seen)
        if labels is None:
            return {"value": float("nan"), "n": 0, "n_excluded": len(trainer.seen), "per_tag": {}}
    with torch.no_grad():
        if trainer.kind == "joint":
            tags = trainer.net.embed_tags(trainer.vectors).cpu().numpy()
            scores = cosine_scores(emb, tags)
        else:
            scores = trainer.net.out(torch.as_tensor(emb, device=trainer.device)).cpu().numpy()
    per_tag = roc_auc(scores, labels, axis=0)
    return {**summarise(per_tag), "per_tag": dict(zip(trainer.seen, per_tag))}


def train_seed(params: Mapping[str, Any]) -> int:
    """``train.seed``, or ``run.seed`` when it is null."""
    return params["run"]["seed"] if params["train"]["seed"] is None else params["train"]["seed"]


def train_stage(ds, split, params: Mapping[str, Any], run_dir: str | os.PathLike,
                progress: bool = True) -> dict[str, Any]:
    """Stage 03: train the joint model (and the classifier if ``train.baseline``), keep the best
    checkpoints, and measure seen-tag retrieval AUC on the setting's valid tracks and on B (B-X).

    Returns ``{name: {"trainer", "curves", "auc_valid", "auc_B"}}`` for ``joint`` (and ``classifier``).
    """
    t, m = params["train"], params["model"]
    seed = train_seed(params)
    for group in ("train", "valid"):
        if not split.tracks[f"{t['setting']}_{group}"]:
            raise DataError(f"setting {t['setting']}-X: no {group} tracks in split {split.name!r}")
    out = {}
    kinds = ["joint"] + (["classifier"] if t["baseline"] else [])
    for kind in kinds:
        vectors = seen_vectors(ds, split, m["sideinfo"]) if kind == "joint" else None
        trainer = Trainer(ds, split, vectors, t, m, Path(run_dir) / "train" / kind, seed, kind)
        curves = trainer.fit(progress=progress)
        trainer.load_best()
        out[kind] = {"trainer": trainer, "curves": curves,
                     "auc_valid": seen_tag_auc(trainer, ds, split.tracks[f"{t['setting']}_valid"]),
                     "auc_B": seen_tag_auc(trainer, ds, split.tracks["B"])}
        if ds.complete_truth() is not None:
            out[kind]["auc_B_complete"] = seen_tag_auc(trainer, ds, split.tracks["B"], complete=True)
    return out


def results_rows(result: Mapping[str, Any], setting: str) -> list[dict]:
    """Stage 03's numbers for ``results.csv``."""
    from .model import count_parameters
    rows = []
    for kind, r in result.items():
        tr, c = r["trainer"], r["curves"]
        model_name = "embedding" if kind == "joint" else "classifier"
        for test, key, labels in ((f"{setting}-valid-X", "auc_valid", "annotation"), ("B-X", "auc_B", "annotation"),
                                  ("B-X", "auc_B_complete", "complete")):
            if key in r:
                auc = r[key]
                rows.append({"model": model_name, "train_setting": f"{setting}-X", "test_setting": test,
                             "task": "retrieval", "labels": labels, "metric": "AUC-l", "value": auc["value"],
                             "n": auc["n"], "n_excluded": auc["n_excluded"]})
        common = {"model": model_name, "train_setting": f"{setting}-X", "task": "training"}
        rows += [{**common, "metric": "parameters", "value": count_parameters(tr.net)},
                 {**common, "metric": "epochs", "value": len(c)},
                 {**common, "metric": "best_epoch", "value": tr.state["best_epoch"]},
                 {**common, "metric": "best_valid_loss", "value": tr.state["best"]},
                 {**common, "metric": "seconds_per_epoch", "value": float(c.seconds.mean())},
                 {**common, "metric": "data_wait_share", "value": float(c.data_wait.mean())}]
    return rows
