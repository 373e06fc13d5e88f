"""Parameters: the schema, YAML loading, validation and resolution.

A parameter file is YAML with one mapping per section (``run``, ``data``, ``audio``, ``split``, ...).
:func:`resolve` fills in defaults and validates every value; any problem raises
:class:`~zslkit.errors.ParamError` naming ``section.key``, the bad value and, when known, the file.

Conventions
-----------
- Relative paths are taken from the project root (the folder holding ``params/`` and ``notebooks/``,
  found by walking up from the working directory, or ``$ZSLKIT_ROOT``), so a notebook gives the same
  answer from JupyterLab (cwd ``notebooks/``) and from papermill (cwd the project root).
- Each notebook's ``parameters`` cell declares every section as a dict; papermill injects the YAML's
  sections over them and the notebook calls ``config.resolve(...)``.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import builtins  # noqa: F401  (declares the built-in entries; imports none of their code)
from .errors import ParamError
from .plan import TRAIN_SETTINGS
from .registry import AUGMENTS, DATASETS, ENCODERS, HEADS, SIDEINFO, Field, Registry, load_plugins

#: the sections, each with the first stage (notebook) that reads it; a ``Field(stage=...)`` names a later one
STAGE_OF_SECTION = {"run": "01", "data": "01", "audio": "01", "split": "02", "sideinfo": "02", "model": "03",
                    "train": "03", "embed": "04", "evaluate": "05", "heads": "05", "compare": "06", "transfer": "07"}
SECTIONS = tuple(STAGE_OF_SECTION)

#: choices that code outside the schema checks too (one list each, here)
LAYOUTS = ("shards", "files")       # audio.layout: how a mel store keeps its mels
BACKENDS = ("numpy", "torch")       # evaluate.backend: where the metric suite runs
DEVICES = ("auto", "cpu", "cuda")   # train.device, evaluate.device


BASE: dict[str, dict[str, Any]] = {
    "run": {
        "name": Field("str", "demo", "run folder name under reports_dir",
                      check=(lambda v: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v) is not None,
                             "letters, digits, '_', '.', '-' only"), neutral=True),
        "seed": Field("int", 0, "global seed: data build, splits, training", lo=0),
        "reports_dir": Field("path", "reports", "where run folders go", neutral=True),
        "data_dir": Field("path", "data", "where datasets are built or imported"),
        "workers": Field("int", 0, "processes for parallel work; 0 = all cores", lo=0, hi=256, neutral=True),
        "progress": Field("bool", True, "show progress bars", neutral=True),
        "cell_timeout": Field("int", None, "seconds a notebook cell may run before the run fails, naming the "
                              "notebook and the cell (null: no limit, as training cells may run for hours; a "
                              "kernel that goes idle without replying is failed either way: docs/pipeline.md)",
                              nullable=True, lo=1, neutral=True),
        "real_check": Field("path", None, "a transfer target's parameter file (params/realmusic.yaml): after stage "
                            "06, the run's models are applied to it into <run>/real/ and the report page says how "
                            "they do on real recordings; skipped, and said, when its packages are not installed",
                            nullable=True, exists=True, neutral=True),
        "plugins": Field("list", [], "your modules that register entries (importers, side-information "
                         "kinds, encoders, heads): module names or .py files, imported first", item="str"),
    },
    "data": {
        "source": Field("str", "m21", "the dataset importer (registry DATASETS)",
                        choices=lambda: DATASETS.names()),
        "name": Field("str", "m21-demo", "dataset folder name under run.data_dir",
                      check=(lambda v: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v) is not None,
                             "letters, digits, '_', '.', '-' only")),
        "unlabelled": Field("list", [], "Debian packages of real music whose clips stage 01 prepares without labels "
                            "for train.adapt (singularity-music, supertux-data, hedgewars-data, warzone2100-music; "
                            "never a package of run.real_check's check set), into <data_dir>/unlabelled, cut as "
                            "data.realmusic says", item="str"),
    },
    "audio": {
        "sample_rate": Field("int", 22050, "decode rate (paper: 22,050)", lo=8000, hi=96000, recorded_in="mels"),
        "n_fft": Field("int", 1024, "STFT size (paper: 1024)", lo=64, hi=16384, recorded_in="mels"),
        "hop_length": Field("int", 512, "STFT hop (paper: 512)", lo=16, hi=16384, recorded_in="mels"),
        "n_mels": Field("int", 128, "Slaney mel bands (paper: 128)", lo=8, hi=512, recorded_in="mels"),
        "log_gain": Field("float", 10.0, "log10(1 + gain * mel) (paper: 10)", lo=1e-6, recorded_in="mels"),
        "pad_mode": Field("str", "constant", "STFT centre padding (librosa >= 0.10 default)",
                          choices=("constant", "reflect"), recorded_in="mels"),
        "max_duration": Field("float", None, "seconds decoded per file (paper MSD: 30)",
                              nullable=True, lo=0.1, recorded_in="mels"),
        "min_duration": Field("float", 1.0, "shorter files are skipped and reported", lo=0.0),
        "segment_frames": Field("int", 130, "frames per model segment, in training and embedding; "
                                "stored with each checkpoint (paper: 130)", lo=8, stage="03",
                                recorded_in="checkpoint"),
        "n_examples": Field("int", 4, "spectrograms shown in notebook 01", lo=0, hi=64),
        "layout": Field("str", "shards", "how mels are stored: 'shards' (many tracks per memory-mapped file, with an "
                        "index) or 'files' (one .npy per track); both stay readable", choices=LAYOUTS,
                        neutral=True),
        "shard_tracks": Field("int", 512, "most tracks per shard, and per preprocessing task (a task holds its "
                              "shard in memory: ~170 MB for 512 30-s clips)", lo=1, hi=1_000_000, neutral=True),
        "scheduler": Field("str", "local", "where mels are computed: 'local' (run.workers processes) or the "
                           "address of a Dask scheduler (tcp://host:8786, or a scheduler file) whose workers see "
                           "the data folder", neutral=True),
    },
    "split": {
        "name": Field("str", "s0", "tag split name (several per dataset)",
                      check=(lambda v: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v) is not None,
                             "letters, digits, '_', '.', '-' only")),
        "ratio": Field("float", 0.8, "share of tags that are seen (X)", lo=0.05, hi=0.95),
        "seed": Field("int", 0, "tag split seed", lo=0),
        "stratify": Field("str", "group", "keep the seen share per tag group",
                          choices=("group", "none")),
        "unseen": Field("list", None, "explicit unseen tags (texts); overrides ratio/seed",
                        nullable=True, item="str"),
        "track_seed": Field("int", 0, "seed of the 90/10 train/valid split of A, B, A+B", lo=0),
        "train_ratio": Field("float", 0.9, "train share of A, B and A+B", lo=0.05, hi=0.99),
        "tracks": Field("str", "random", "train/valid parts of A, B, A+B: 'random' (seeded cut at train_ratio, "
                        "as the paper) or 'dataset' (the dataset's own train/valid split; its test tracks are "
                        "used for neither)", choices=("random", "dataset")),
        "original": Field("path", None, "folder with the original tag_key_split_<name>.p and "
                          "track_keys_*_<original_trs>_<name>.p files to import instead",
                          nullable=True, exists=True),
        "original_trs": Field("str", "TRSPP", "track split name inside the original file names"),
    },
    "sideinfo": {
        "kinds": Field("list", ["glove", "sentence", "attributes", "random"],
                       "side-information tables to build (registry SIDEINFO)", item="str",
                       check=(lambda v: len(v) > 0 and set(v) <= set(SIDEINFO.names()),
                              lambda: f"a non-empty subset of {', '.join(SIDEINFO.names())}")),
        "show": Field("str", "glove", "kind shown in the similarity heatmap and neighbours"),
    },
    "model": {
        "encoder": Field("str", "paper", "audio encoder (registry ENCODERS)", choices=lambda: ENCODERS.names(),
                         recorded_in="checkpoint"),
        "sideinfo": Field("str", "glove", "side-information kind the tag branch reads",
                          choices=lambda: SIDEINFO.names(), recorded_in="checkpoint"),
        "projection": Field("int", None, "frozen backbones only (model.encoder: musicnn, hear): hidden width of the "
                            "MLP from the backbone's cached features to the 100-d joint space, trained in stage 03; "
                            "null = one linear layer", nullable=True, lo=1),
    },
    "train": {
        "setting": Field("str", "A", "training tracks: A-X, B-X or (A+B)-X", choices=tuple(TRAIN_SETTINGS)),
        "device": Field("str", "auto", "auto = CUDA when present, else CPU", choices=DEVICES),
        "batch_size": Field("int", 64, "segments per batch (paper: 64)", lo=2),
        "crops_per_track": Field("int", 1, "random crops of each training track per epoch (paper: 1)",
                                 lo=1, hi=64),
        "augment": Field("list", [], "augmentations of each training batch on the training device, in this order "
                         "(registry AUGMENTS): items {name: <augmentation>, <its parameters>} or bare names, e.g. "
                         "[specaugment, {name: mixup, p: 0.5}]; [] = none, as the paper (docs/models.md)",
                         entries=AUGMENTS),
        "tag_dropout": Field("float", 0.0, "joint models: each side-information entry of a training tag zeroed with "
                             "this probability at every step (dropout on the tag branch's input, training only); "
                             "0 = none, as the paper (docs/models.md)", lo=0.0, hi=0.9),
        "ema": Field("float", 0.0, "decay per step of a moving average of the weights, which is validated, picks "
                     "and becomes best.pt (e.g. 0.998: about 500 steps); 0 = none, as the paper (docs/models.md)",
                     lo=0.0, hi=0.9999),
        "loss": Field("str", "hinge", "hinge (paper) or contrastive (softmax over all X)",
                      choices=("hinge", "contrastive")),
        "margin": Field("float", 0.4, "hinge margin (paper: 0.4)", lo=0.0, hi=2.0),
        "negatives": Field("int", 1, "negatives per segment for the hinge loss (paper: 1)", lo=1),
        "temperature": Field("float", 0.1, "softmax temperature of the contrastive loss", lo=1e-3),
        "optimizer": Field("str", "sgd", "sgd (paper) or adam", choices=("sgd", "adam")),
        "lr": Field("float", 1e-3, "learning rate (paper: 1e-3)", lo=1e-7, hi=10.0),
        "finetune": Field("float", None, "learning rate of a pretrained encoder's own weights (model.encoder: "
                          "musicnn_tuned), under the same schedule as train.lr; null = train.lr, 0 = kept as they "
                          "are. A frozen backbone (musicnn, hear) has none: it trains a projection of cached "
                          "features", nullable=True, lo=0.0, hi=10.0),
        "momentum": Field("float", 0.9, "SGD momentum (paper: 0.9)", lo=0.0, hi=0.999),
        "nesterov": Field("bool", True, "Nesterov momentum (paper: true)"),
        "decay": Field("float", 1e-6, "Keras time decay per update (paper: 1e-6)", lo=0.0),
        "l2": Field("float", 1e-5, "L2 on convolution kernels, added to the loss (paper: 1e-5)", lo=0.0),
        "plateau_factor": Field("float", 0.2, "lr factor after a plateau (paper: 0.2)", lo=0.01, hi=1.0),
        "plateau_patience": Field("int", 5, "epochs without improvement before a drop (paper: 5)", lo=1),
        "min_lr": Field("float", 1.6e-7, "floor of the plateau drops (paper: 1.6e-7)", lo=0.0),
        "early_stop": Field("int", 20, "epochs without improvement before stopping (paper: 20)", lo=1),
        "max_epochs": Field("int", 200, "upper bound on epochs", lo=1),
        "normalisation": Field("str", "dataset", "mel standardisation: this dataset's mean/std or "
                               "the paper's MSD constants", choices=("dataset", "paper")),
        "workers": Field("int", 0, "DataLoader worker processes; 0 = in the main process (with the "
                         "pack a batch takes ~2 ms, less than a worker's hand-over on a small CPU)",
                         lo=0, hi=64),
        "pack": Field("bool", True, "copy the setting's mels into one memory map under "
                      "<dataset>/mels/packs/ for fast crops (costs their size on disk once); "
                      "false = read per-track files"),
        "feed": Field("str", "auto", "how batches reach the device: 'device' gathers crops from the pack copied to "
                      "the training device, 'host' builds them on the host (pinned memory on CUDA); 'auto' = device "
                      "on CUDA when the pack fits train.device_pack_gb", choices=("auto", "device", "host"),
                      neutral=True),
        "device_pack_gb": Field("float", 8.0, "largest pack copied to the GPU for the device feed (GB)", lo=0.0,
                                neutral=True),
        "precision": Field("str", "fp32", "fp32, or bf16 autocast for the forward pass and loss",
                           choices=("fp32", "bf16")),
        "nproc": Field("int", 1, "training processes on this node (torchrun, DistributedDataParallel): one per GPU; "
                       "on CPU, gloo processes. The global batch stays train.batch_size", lo=1, hi=1024,
                       neutral=True),
        "resume": Field("bool", True, "continue from the run's last checkpoint when it matches"),
        "baseline": Field("bool", False, "also train the supervised classifier on X"),
        "also": Field("list", [], "other side-information kinds to train the same joint model on, side by side "
                      "(into train/joint-<kind>)", item="str",
                      check=(lambda v: set(v) <= set(SIDEINFO.names()),
                             lambda: f"kinds from {', '.join(SIDEINFO.names())}")),
        "controls": Field("list", ["random"], "control side-information kinds: the same joint model trained "
                          "again on each (e.g. [random]), into train/joint-<kind>", item="str",
                          check=(lambda v: set(v) <= set(SIDEINFO.names(control=True)),
                                 lambda: f"kinds flagged as controls: {', '.join(SIDEINFO.names(control=True))}")),
        "seed": Field("int", None, "seed of initialisation and sampling; null = run.seed (sweeps vary "
                      "this, not run.seed, which also seeds the data build)", nullable=True, lo=0),
        "adapt": Field("str", "none", "learning from real audio without labels (data.unlabelled): coral = the "
                       "CORAL loss between the encoder's embeddings of each training batch and of as many real "
                       "crops (docs/models.md); none = the training data only", choices=("none", "coral")),
        "adapt_weight": Field("float", 100.0, "weight of train.adapt's loss beside the task loss (the CORAL term "
                              "is about 0.01 on the demo: 100 makes it a third of the task loss)", lo=0.0),
    },
    "embed": {
        "normalize_segments": Field("bool", False, "average L2-normalised segment embeddings "
                                    "(the paper averages raw ones)"),
        "batch_segments": Field("int", 512, "segments per forward pass", lo=1),
        "umap": {
            "n_neighbors": Field("int", 15, "UMAP neighbourhood size", lo=2),
            "min_dist": Field("float", 0.1, "UMAP minimum distance", lo=0.0, hi=1.0),
            "metric": Field("str", "cosine", "UMAP metric", choices=("cosine", "euclidean")),
            "max_tracks": Field("int", 1500, "tracks drawn (seeded) into the joint-space map", lo=0),
        },
        "color_group": Field("str", None, "tag group that colours tracks in the joint-space map; null: the "
                             "dataset's group with the most tags", nullable=True),
        "queries": Field("list", ["piano", "fast violin music", "a sad song in a minor key"],
                         "free-text queries shown in notebook 04 (texts need not be tags)", item="str"),
        "example_tracks": Field("int", 3, "tracks annotated in notebook 04", lo=0, hi=50),
        "top_k": Field("int", 10, "rows in the explorer's tables", lo=1, hi=200),
        "maps": Field("bool", True, "draw the UMAP maps of notebook 04 (skipped, with a note, when fewer than 4 tags "
                      "have side information)"),
        "widget": Field("bool", True, "show the ipywidgets explorer (false for headless runs)"),
        "interactive": Field("bool", True, "linked interactive (bokeh) maps of every joint model in notebook 04, "
                             "its HTML and figures/04_maps.html; they work offline (BokehJS embedded, ~1.7 MB)"),
    },
    "evaluate": {
        "bootstrap": Field("int", 1000, "bootstrap resamples for 95 % confidence intervals (0 = none)",
                           lo=0, hi=100_000),
        "ks": Field("list", [1, 3, 5, 10], "cut-offs of hit@k, P@k and AP@k", item="int",
                    check=(lambda v: len(v) > 0 and all(k >= 1 for k in v), "positive integers")),
        "backend": Field("str", "numpy", "the metric suite on numpy (threads) or torch (on evaluate.device, e.g. the "
                         "GPU); the same numbers either way", choices=BACKENDS, neutral=True),
        "device": Field("str", "auto", "device of the torch metric backend: auto = CUDA when present",
                        choices=DEVICES, neutral=True),
        "complete_labels": Field("bool", True, "also score m21 against its complete labels"),
        "permutations": Field("int", 10_000, "permutations of the unseen tags' side information in "
                              "the test of tag-specific transfer on (B+C)-Y (0 = none)", lo=0,
                              hi=1_000_000),
        "examples": Field("int", 4, "tracks shown with their top-10 annotation", lo=0, hi=50),
        "classifier": Field("bool", True, "evaluate the supervised classifier when it was trained"),
        "diagnostics": Field("bool", True, "upper bounds, side-audio alignment and AUC by group for each joint "
                             "model (rows with task 'diagnostic')"),
        "heads": Field("list", ["learned", "conse", "ridge", "eszsl"], "zero-shot heads compared on the frozen "
                       "embeddings "
                       "(registry HEADS)", item="str",
                       check=(lambda v: len(v) > 0 and set(v) <= set(HEADS.names()),
                              lambda: f"a non-empty subset of {', '.join(HEADS.names())}")),
        "source_conse": {
            "sideinfo": Field("list", [], "the supervised-source ConSE peer, one per free-text side-information kind "
                              "listed (e.g. [glove]): musicnn's own tag probabilities mixed through the side "
                              "information of its tag names (docs/models.md); [] = none. Not zero-shot on the tags "
                              "the source was supervised on (its 'non-leaky' rows are)", item="str",
                              check=(lambda v: set(v) <= set(SIDEINFO.names(free_text=True)),
                                     lambda: f"free-text kinds from {', '.join(SIDEINFO.names(free_text=True))}")),
            "source": Field("str", "MTT_musicnn", "the pretrained tagger whose 50 tag probabilities are mixed (its "
                            "outputs are computed once per dataset and cached; the .[backbones] extra)",
                            choices=builtins.MUSICNN_VARIANTS),
            "top": Field("int", 10, "source tags mixed per track (ConSE's T)", lo=1),
        },
    },
    "heads": {},
    "compare": {
        "runs": Field("list", [], "run folders (names or glob patterns under run.reports_dir) compared "
                      "by notebook 06; empty = every run there with stage-05 results except lab runs (*-lab)",
                      item="str"),
        "metrics": Field("list", ["AUC-i", "MAP-i", "AUC-l", "MAP-l"], "metrics tabulated", item="str"),
        "tests": Field("list", ["(B+C)-Y", "(B+C)-(X+Y)", "(A+B+C)-Y", "B-X"], "test settings tabulated",
                       item="str"),
    },
    "transfer": {
        "source": Field("path", None, "the trained run applied by notebook 07 (a folder reports/<run>); "
                        "`zslkit transfer RUN PARAMS.yaml` sets it", nullable=True, exists=True),
        "models": Field("list", ["joint"], "the source run's joint models applied (joint, joint-<kind>, "
                        "joint-random ...)", item="str"),
        "adapt": Field("list", ["none"], "each model applied once per entry: none = as trained; adabn = its "
                       "batch-norm statistics re-estimated on the target's own audio first (AdaBN)", item="str",
                       check=(lambda v: len(v) > 0 and set(v) <= {"none", "adabn"} and len(set(v)) == len(v),
                              "a non-empty list of distinct values from none, adabn")),
        "agreement": Field("str", None, "a supervised tagger (MTT_musicnn, MSD_musicnn) each model's scores of the "
                           "source run's own tags are compared with on the target's clips, for the tags both know: "
                           "Spearman's rho, reported as agreement, never as truth; null: none",
                           nullable=True, choices=("MTT_musicnn", "MSD_musicnn")),
    },
}

def schema() -> dict[str, dict[str, Any]]:
    """The full schema: :data:`BASE` plus the section of every registered entry.

    Entry sections sit beside their selector: ``data.<importer>``, ``sideinfo.<kind>``,
    ``model.<encoder>``, ``heads.<head>``.
    """
    out = copy.deepcopy(BASE)
    for section, registry in (("data", DATASETS), ("sideinfo", SIDEINFO), ("model", ENCODERS),
                              ("heads", HEADS)):
        for entry in registry:
            out[section][entry.name] = dict(entry.params)
    return out


def fields(spec: Mapping[str, Any] | None = None, prefix: str = "") -> dict[str, Field]:
    """Every parameter of ``spec`` (default: :func:`schema`) by its dotted name, entry sections included:
    ``{"audio.n_fft": Field(...), "heads.learned.hidden": Field(...), ...}``."""
    out = {}
    for key, fld in (schema() if spec is None else spec).items():
        name = f"{prefix}{key}"
        out.update(fields(fld, f"{name}.") if isinstance(fld, dict) else {name: fld})
    return out


def _under(name: str, known: Mapping[str, Field]) -> list[tuple[str, Field]]:
    """The parameter ``name``, or every parameter of the sub-section ``name`` (``heads.learned``)."""
    if name in known:
        return [(name, known[name])]
    return [(k, f) for k, f in known.items() if k.startswith(f"{name}.")]


def stage_of(name: str, known: Mapping[str, Field] | None = None) -> str:
    """The first stage that reads parameter ``name`` (``"audio.segment_frames"`` -> ``"03"``).

    A sub-section (``"heads.learned"``) is read from the first stage that reads any of its keys; a name
    the schema lacks (kept in an older run's ``params.yaml``) from its section's stage. ``known`` is
    :func:`fields`, passed by a caller that asks many times.
    """
    under = _under(name, fields() if known is None else known)
    if not under:
        return STAGE_OF_SECTION.get(name.split(".")[0], "01")
    return min(f.stage or STAGE_OF_SECTION[k.split(".")[0]] for k, f in under)


def is_neutral(name: str, known: Mapping[str, Field] | None = None) -> bool:
    """True when no number depends on parameter ``name`` (for a sub-section: on any of its keys)."""
    under = _under(name, fields() if known is None else known)
    return bool(under) and all(f.neutral for _, f in under)


def keys(section: str, **attributes) -> tuple[str, ...]:
    """The keys of ``section`` whose Field attributes equal ``attributes``, in schema order:
    ``keys("train", neutral=True)`` -> ``("feed", "device_pack_gb", "nproc")``."""
    return tuple(k for k, f in schema()[section].items()
                 if isinstance(f, Field) and all(getattr(f, a) == v for a, v in attributes.items()))


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding ``params/`` and ``notebooks/`` at or above ``start`` (default: cwd)."""
    env = os.environ.get("ZSLKIT_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here


def defaults() -> dict[str, dict[str, Any]]:
    """Every section filled with its defaults."""
    return {name: _defaults_of(spec) for name, spec in schema().items()}


def _defaults_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_defaults_of(v) if isinstance(v, dict) else copy.deepcopy(v.default))
            for k, v in spec.items()}


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a parameter file; raise :class:`ParamError` naming the file if it is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamError(f"parameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load, validate and resolve a parameter file."""
    return resolve(load_yaml(path), root=root, source=str(path))


def resolve(params: Mapping[str, Any], root: str | os.PathLike | None = None,
            source: str | None = None) -> dict[str, Any]:
    """Merge ``params`` over the defaults and validate every value.

    Parameters
    ----------
    params : mapping of section name -> mapping of key -> value
        Missing sections and keys take their defaults; ``None`` or ``{}`` sections are allowed.
    root : path, optional
        Where relative paths are resolved; default :func:`project_root`.
    source : str, optional
        Named in error messages (the YAML file).

    Returns
    -------
    dict
        All sections, all keys, paths made absolute (as strings).
    """
    where = f" (in {source})" if source else ""
    root = Path(root) if root is not None else project_root()
    unknown = set(params) - set(SECTIONS)
    if unknown:
        raise ParamError(f"unknown section {sorted(unknown)[0]!r}{where}; "
                         f"known sections: {', '.join(SECTIONS)}")
    run = params.get("run") or {}
    plugins = run.get("plugins", []) if isinstance(run, Mapping) else []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ParamError(f"run.plugins: expected a list of module names or .py files, got {plugins!r}{where}")
    load_plugins(plugins, root)
    out = {}
    for name, spec in schema().items():
        given = {} if params.get(name) is None else params[name]
        if not isinstance(given, Mapping):
            raise ParamError(f"section {name!r}: expected a mapping, got {given!r}{where}")
        out[name] = _resolve_section(spec, given, name, root, where)
    return out


def _resolve_section(spec, given, prefix, root, where):
    unknown = set(given) - set(spec)
    if unknown:
        key = sorted(unknown)[0]
        raise ParamError(f"unknown key {prefix}.{key}{where}; known keys in {prefix}: "
                         f"{', '.join(sorted(spec))}")
    out = {}
    for key, fld in spec.items():
        name = f"{prefix}.{key}"
        if isinstance(fld, dict):
            sub = {} if given.get(key) is None else given[key]
            if not isinstance(sub, Mapping):
                raise ParamError(f"{name}: expected a mapping, got {sub!r}{where}")
            out[key] = _resolve_section(fld, sub, name, root, where)
        else:
            value = given[key] if key in given else copy.deepcopy(fld.default)
            out[key] = _check(fld, value, name, root, where)
    return out


_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool, "list": list,
          "dict": dict, "path": str}


def _check(fld: Field, value, name, root, where):
    if value is None:
        if fld.nullable or fld.default is None:
            return None
        raise ParamError(f"{name}: may not be null{where}")
    expected = _TYPES[fld.kind]
    is_bool = isinstance(value, bool)
    if not isinstance(value, expected) or (is_bool and fld.kind in ("int", "float")):
        raise ParamError(f"{name}: expected {fld.kind}, got {value!r} ({type(value).__name__}){where}")
    if fld.kind == "float":
        value = float(value)
    if fld.lo is not None and value < fld.lo:
        raise ParamError(f"{name}: {value!r} is below the minimum {fld.lo}{where}")
    if fld.hi is not None and value > fld.hi:
        raise ParamError(f"{name}: {value!r} is above the maximum {fld.hi}{where}")
    choices = fld.choices() if callable(fld.choices) else fld.choices
    if choices is not None and value not in choices:
        raise ParamError(f"{name}: {value!r} is not one of {list(choices)}{where}")
    if fld.kind == "list" and fld.item:
        for v in value:
            ok = isinstance(v, _TYPES[fld.item]) and not isinstance(v, bool)
            if not ok:
                raise ParamError(f"{name}: list item {v!r} is not {fld.item}{where}")
    if fld.kind == "list" and fld.entries is not None:
        value = [_entry_item(fld.entries, v, f"{name}[{i}]", root, where) for i, v in enumerate(value)]
    if fld.kind == "dict" and isinstance(fld.default, dict) and fld.default:
        value = {**fld.default, **value}
    if fld.check is not None and not fld.check[0](value):
        message = fld.check[1]() if callable(fld.check[1]) else fld.check[1]
        raise ParamError(f"{name}: {value!r} is invalid: {message}{where}")
    if fld.kind == "path":
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else root / path
        if fld.exists and not path.exists():
            raise ParamError(f"{name}: file or folder not found: {path}{where}")
        value = str(path)
    return value


def _entry_item(registry: Registry, item, name: str, root, where) -> dict[str, Any]:
    """One item of a list of ``registry``'s entries (``Field(entries=...)``): ``{name: <entry>, <its parameters>}``
    or the bare name, returned as ``{"name": ..., every parameter}`` with the entry's defaults filled in."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise ParamError(f"{name}: expected a name or {{name: <{registry.what}>, its parameters...}}, "
                         f"got {item!r}{where}")
    if item["name"] not in registry:
        raise ParamError(f"{name}.name: {item['name']!r} is not a registered {registry.what}; "
                         f"known: {', '.join(registry.names())}{where}")
    entry = registry[item["name"]]
    given = {k: v for k, v in item.items() if k != "name"}
    return {"name": entry.name, **_resolve_section(entry.params, given, name, root, where)}


def dump(params: Mapping[str, Any]) -> str:
    """YAML text of resolved parameters (what a run saves as ``params.yaml``)."""
    return yaml.safe_dump(dict(params), sort_keys=False, default_flow_style=None)


def describe() -> str:
    """Every parameter with its default and meaning, for ``zslkit params --describe``; in brackets, a stage
    later than its section's that first reads it, ``neutral`` (no number depends on it) and what records it."""
    lines = []

    def walk(spec, prefix):
        for key, fld in spec.items():
            name = f"{prefix}.{key}"
            if isinstance(fld, dict):
                walk(fld, name)
            else:
                facts = ([f"read from stage {fld.stage}"] if fld.stage else []) + (["neutral"] if fld.neutral else []) \
                    + ([f"recorded in the {fld.recorded_in}"] if fld.recorded_in else [])
                lines.append(f"{name:32s} {fld.kind:5s} default={fld.default!r}  {fld.doc}"
                             + (f"  [{'; '.join(facts)}]" if facts else ""))

    for section, spec in schema().items():
        walk(spec, section)
    for registry in (DATASETS, SIDEINFO, ENCODERS, HEADS, AUGMENTS):
        lines += ["", f"{registry.selector}: registered {registry.what}s"]
        for e in registry:
            flags = ", ".join(k for k, v in e.flags.items() if v is True)
            lines.append(f"  {e.name:14s} {e.doc}{f'  [{flags}]' if flags else ''}")
            if registry is AUGMENTS:  # their parameters live in list items, not in a section of the schema
                lines += [f"    {k:28s} {f.kind:5s} default={f.default!r}  {f.doc}" for k, f in e.params.items()]
    return "\n".join(lines)
