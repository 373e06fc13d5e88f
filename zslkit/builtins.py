"""The built-in registry entries, declared: name, parameter section, doc, flags, and where the code is.

Each entry names its object by a ``"module:attribute"`` reference (:meth:`zslkit.registry.Registry.register`),
imported when the entry first works. So this module imports no torch, pandas or librosa, and
:mod:`zslkit.config` (which imports it) knows every built-in section, choice and flag at once: ``zslkit --help``
and ``zslkit params --describe`` start in a fraction of a second. The contract of each kind of entry is in the
module its code lives in; user entries come from ``run.plugins`` (:func:`zslkit.registry.load_plugins`).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .registry import AUGMENTS, DATASETS, ENCODERS, HEADS, SIDEINFO, Field

#: FMA's nested subsets, smallest first (``data.fma.subset``; each includes the smaller)
FMA_SUBSETS = ("small", "medium", "large")
#: the m21 catalogue's probability that a clip's annotation covers each tag group (``data.m21.coverage``);
#: read from the file here, since the m21 package imports its renderers
_M21_CATALOGUE = yaml.load((Path(__file__).parent / "data" / "datasets" / "m21" / "catalogue.yaml")
                           .read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
M21_COVERAGE = dict(_M21_CATALOGUE["coverage"])
#: the ranges of the m21 clips' performance and production draws (``data.m21.performance_ranges``,
#: ``production_ranges``; docs/datasets.md)
M21_PERFORMANCE = dict(_M21_CATALOGUE["performance"])
M21_PRODUCTION = dict(_M21_CATALOGUE["production"])
#: the timbre banks m21 knows by name (zslkit.data.datasets.m21.banks)
M21_BANKS = ("bundled", "fluidr3", "musescore", "fluidr3mono", "csound")
#: the pretrained networks of musicnn's wheel (zslkit.model.backbones.musicnn.VARIANTS; model.musicnn.variant)
MUSICNN_VARIANTS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")


def _m21_ranges(default: dict):
    """A ``check`` for m21 range dicts: known keys, each value of its default's form ([lo, hi] numbers with
    lo <= hi, a non-empty list of numbers, or {known choice: weight >= 0} with a positive weight)."""
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731

    def ok_value(key, v):
        d = default[key]
        if isinstance(d, dict):
            return (isinstance(v, dict) and v and set(v) <= set(d) and all(num(w) and w >= 0 for w in v.values())
                    and sum(v.values()) > 0)
        if len(d) == 2:
            return isinstance(v, list) and len(v) == 2 and all(map(num, v)) and v[0] <= v[1]
        return isinstance(v, list) and len(v) > 0 and all(map(num, v))

    return (lambda v: set(v) <= set(default) and all(ok_value(k, x) for k, x in v.items()),
            f"keys from {sorted(default)}; each value as its default: [lo, hi], a list of values, "
            f"or {{choice: weight}}")

# ----------------------------------------------------------------------------- dataset importers (data.<name>)

DATASETS.register("fma", "zslkit.data.datasets.fma:importer",
                  doc="FMA: tracks.csv, genres.csv, fma_<size>/ (+ OpenMIC-2018)", params={
    "metadata": Field("path", None, "the fma_metadata folder (tracks.csv, genres.csv)", nullable=True, exists=True),
    "audio_root": Field("path", None, "the fma_<subset> folder of NNN/NNNNNN.mp3 (default: beside metadata)",
                        nullable=True, exists=True),
    "subset": Field("str", "small", "small, medium or large (each includes the smaller)", choices=FMA_SUBSETS),
    "labels": Field("str", "genres", "genres, genres_all (with ancestors) or genre_top",
                    choices=("genres", "genres_all", "genre_top")),
    "openmic": Field("path", None, "OpenMIC-2018 folder: writes genre instrument vectors to knowledge.csv",
                     nullable=True, exists=True),
})

DATASETS.register("folder", "zslkit.data.datasets.folder:importer",
                  doc="a folder of audio files and a CSV path,tags", params={
    "csv": Field("path", None, "CSV with columns path,tags", nullable=True, exists=True),
    "tag_sep": Field("str", ";", "separator of tags inside the tags column"),
    "tag_groups": Field("path", None, "optional CSV tag,group", nullable=True, exists=True),
})

DATASETS.register("gtzan", "zslkit.data.datasets.gtzan:importer",
                  doc="GTZAN: genres/<genre>/<genre>.000NN.au and the filtered split", params={
    "root": Field("path", None, "folder holding genres/<genre>/ (or the genre folders)", nullable=True,
                  exists=True),
    "split_lists": Field("path", None, "folder with train/valid/test_filtered.txt; null: no dataset split",
                         nullable=True, exists=True),
})

DATASETS.register("jamendo", "zslkit.data.datasets.jamendo:importer",
                  doc="MTG-Jamendo: autotagging tsv files, splits and mp3 folders", params={
    "root": Field("path", None, "the mtg-jamendo-dataset data/ folder (the .tsv files and splits/)",
                  nullable=True, exists=True),
    "audio_root": Field("path", None, "folder holding 00/ ... 99/ (default: root)", nullable=True, exists=True),
    "tsv": Field("str", "autotagging_top50tags.tsv", "metadata file under root"),
    "split_index": Field("int", 0, "splits/split-N to use; null: no dataset split", nullable=True, lo=0, hi=4),
    "categories": Field("list", None, "keep these categories only (genre, instrument, mood/theme)",
                        nullable=True, item="str"),
    "low_quality": Field("bool", False, "read <id>.low.mp3 instead of <id>.mp3"),
    "offset": Field("float", 0.0, "seconds skipped at the start of each track", lo=0.0),
    "window": Field("float", 30.0, "seconds of each track used", lo=1.0),
})

DATASETS.register("m21", "zslkit.data.datasets.m21:importer",
                  doc="the embedded default: music21 scores rendered offline", params={
    "n_clips": Field("int", 2000, "clips to render", lo=10, hi=200_000),
    "clip_seconds": Field("float", 15.0, "length of each rendered clip", lo=3.1, hi=120),
    "sample_rate": Field("int", 22050, "rendering rate", lo=8000, hi=48000),
    "instrumentation": Field("str", "ensembles", "ensembles = real ensembles typical of each repertory (string "
                             "quartet, folk session, organ and choir ...; catalogue.yaml) with a share of free "
                             "draws; independent = instruments drawn uniformly whatever the piece (m21 before "
                             "zslkit 0.3)", choices=("ensembles", "independent")),
    "free_share": Field("float", 0.25, "share of clips whose instruments are drawn freely (ensembles mode)",
                        lo=0.0, hi=1.0),
    "instruments_per_clip": Field("list", [0.55, 0.33, 0.12], "probabilities of 1, 2, 3 instruments in a free "
                                  "draw", item="float",
                                  check=(lambda v: 1 <= len(v) <= 4 and all(p >= 0 for p in v)
                                         and abs(sum(v) - 1) < 1e-6, "1-4 non-negative probabilities summing to 1")),
    "coverage": Field("dict", M21_COVERAGE, "probability that a clip's annotation covers each tag group",
                      check=(lambda v: set(v) <= set(M21_COVERAGE)
                             and all(isinstance(p, (int, float)) and 0 <= p <= 1 for p in v.values()),
                             f"keys from {sorted(M21_COVERAGE)}, values in [0, 1]")),
    "min_tag_count": Field("int", 30, "tags with fewer positive clips are dropped", lo=1),
    "pieces": Field("dict", {}, "cap on pieces per repertory (overrides the profile)",
                    check=(lambda v: all(isinstance(n, int) and n >= 0 for n in v.values()),
                           "repertory: non-negative integer")),
    "soundfonts": Field("list", list(M21_BANKS), "timbre banks, each clip rendered with one: 'bundled' (TimGM6mb "
                        "from pretty-midi), 'fluidr3', 'musescore', 'fluidr3mono', 'csound' (Debian's "
                        "fluid-soundfont-gm, musescore-general-soundfont-small, fluidr3mono-gm-soundfont, "
                        "csound-soundfont; left out, and said, where not installed), 'debian' (those four), or "
                        ".sf2/.sf3 paths", item="str"),
    "heldout_bank": Field("str", "bundled", "bank no training clip is rendered with: a share of clips "
                          "(heldout_share) is, marked heldout in tracks.csv, for stage 05's timbre-shift report; "
                          "a name of soundfonts, a file name or a path; another installed bank if it is not "
                          "installed; null: none", nullable=True),
    "heldout_share": Field("float", 0.2, "share of clips rendered with the held-out bank", lo=0.0, hi=0.9),
    "performance": Field("str", "natural", "natural = each clip played with drawn timing and duration jitter, "
                         "rubato, phrase dynamics and accents, sustain pedal, part levels and stereo places "
                         "(performance_ranges); none = the notes as written",
                         choices=("natural", "none")),
    "performance_ranges": Field("dict", M21_PERFORMANCE, "the range of each performance draw (catalogue.yaml; "
                                "docs/datasets.md)", check=_m21_ranges(M21_PERFORMANCE)),
    "production": Field("str", "studio", "studio = each clip recorded and produced with a drawn chain: "
                        "microphone colouring, room or hall reverb, noise or hum, EQ, bus compression, "
                        "loudness, an MP3 or Ogg round trip (production_ranges); none = dry, peak-normalised "
                        "(with performance: none and soundfonts: [bundled]: m21's renders before banks and "
                        "production, sample for sample)",
                        choices=("studio", "none")),
    "production_ranges": Field("dict", M21_PRODUCTION, "the range of each production draw (catalogue.yaml; "
                               "docs/datasets.md)", check=_m21_ranges(M21_PRODUCTION)),
    "knowledge": Field("str", "flat", "the form of knowledge.csv (side information kind 'table'): flat = each "
                       "tag's own facts; relations = also each tag's own column and the tags it is a fact of "
                       "(strings marks violin, duet the duos; docs/datasets.md)", choices=("flat", "relations")),
})

DATASETS.register("mtat", "zslkit.data.datasets.mtat:importer",
                  doc="MagnaTagATune: annotations_final.csv and the mp3 folders", params={
    "annotations": Field("path", None, "annotations_final.csv", nullable=True, exists=True),
    "clip_info": Field("path", None, "optional clip_info_final.csv (title, artist, album)", nullable=True,
                       exists=True),
    "audio_root": Field("path", None, "folder holding 0/ ... f/ (default: the annotations' folder)",
                        nullable=True, exists=True),
    "tags": Field("str", "top50", "top50 (the benchmark's 50 tags) or all", choices=("top50", "all")),
    "min_count": Field("int", 1, "with tags: all, the fewest positives a tag needs", lo=1),
    "split_lists": Field("path", None, "folder with train/valid/test.npy ('row\\tpath'); default: the "
                         "first hex digit of the path", nullable=True, exists=True),
    "spelling": Field("path", None, "optional CSV tag,correct merging misspelt tag columns", nullable=True,
                      exists=True),
})

DATASETS.register("realmusic", "zslkit.data.datasets.realmusic:importer",
                  doc="real recordings from Debian packages, tagged with what the packages prove (make realmusic)",
                  params={
    "packages": Field("list", ["wesnoth-1.16-music", "fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid"],
                      "the packages read (zslkit/data/datasets/realmusic.py PACKAGES; those that prove no tag give "
                      "nothing here); missing ones are said", item="str"),
    "share_root": Field("path", "/usr/share/games", "where the packages put their files"),
    "clips_per_track": Field("int", 3, "windows taken from each track (fewer from a short one)", lo=1, hi=50),
    "clip_seconds": Field("float", 15.0, "length of each window", lo=3.0, hi=120.0),
    "sample_rate": Field("int", 22050, "rate of the written guitar + band mixes", lo=8000, hi=48000),
    "knowledge": Field("str", "relations", "the form of knowledge.csv for the tags m21's catalogue knows",
                       choices=("flat", "relations")),
})

DATASETS.register("seed", "zslkit.data.datasets.seed:importer",
                  doc="the original project's MSD/FMA pickles (and its mels)", params={
    "root": Field("path", None, "folder holding data_common/ and data_tag_vector/", nullable=True, exists=True),
    "dataset": Field("str", "msd", "which original dataset", choices=("msd", "fma")),
    "dir_mel": Field("path", None, "the original preprocessing's mel folder", nullable=True, exists=True),
    "dir_audio": Field("path", None, "audio root, when mels are to be computed", nullable=True, exists=True),
})

# ----------------------------------------------------------------------------- side information (sideinfo.<name>)

SIDEINFO.register("attributes", "zslkit.data.sideinfo.attributes:build",
                  doc="co-occurrence of a target group's tags with attribute tags (the paper's FMA vectors)", params={
    "target_group": Field("str", "form", "tag group described by attribute vectors"),
    "attribute_groups": Field("list", ["origin", "meter", "mode", "tempo"],
                              "groups whose co-occurrence describes the target", item="str"),
    "form": Field("str", "count", "count, or confidence (share of the target's tracks)",
                  choices=("count", "confidence")),
    "tracks": Field("str", "train", "train = training tracks only (no leakage); "
                    "all = every track, as the paper's FMA vectors", choices=("train", "all")),
    "openmic": Field("path", None, "OpenMIC-2018 npz (Y_true, Y_mask, sample_key), with fma_tracks",
                     nullable=True, exists=True),
    "fma_tracks": Field("path", None, "FMA metadata tracks.csv", nullable=True, exists=True),
})

SIDEINFO.register("table", "zslkit.data.sideinfo.csvtable:build",
                  doc="a tag x attribute CSV (m21: its knowledge table)", params={
    "path": Field("path", None, "tag x attribute CSV (a 'tag' column, numeric attribute columns); null = the "
                  "dataset's knowledge.csv", nullable=True, exists=True),
    "normalise": Field("bool", True, "scale each tag's vector to unit length"),
})

SIDEINFO.register("glove", "zslkit.data.sideinfo.glove:build", free_text=True,
                  doc="word vectors: mean of the tag's words (bundled GloVe 6B 50-d or your file)", params={
    "path": Field("path", None, "GloVe text or word2vec file; null = bundled GloVe 6B 50-d",
                  nullable=True, exists=True),
    "format": Field("str", "auto", "file format", choices=("auto", "glove", "word2vec")),
    "oov": Field("str", "drop", "tags with no known word: drop them or fail", choices=("drop", "fail")),
    "negation": Field("str", "flip", "'no vocals': flip = minus the content words' mean; "
                      "average = naive mean with the negator", choices=("flip", "average")),
})

SIDEINFO.register("original", "zslkit.data.sideinfo.original:build",
                  doc="the original project's vectors imported by data.source: seed (GloVe 300-d, random, instrument)",
                  params={"vectors": Field("str", "glove", "which imported vectors: glove, random, inst_count, "
                           "inst_conf, or a file stem")})

SIDEINFO.register("random", "zslkit.data.sideinfo.random:build", control=True,
                  doc="seeded Gaussian vectors: the chance control", params={
    "like": Field("str", "glove", "kind whose dimension the random vectors take",
                  choices=lambda: SIDEINFO.names(control=False)),
    "dim": Field("int", None, "explicit dimension (overrides like)", nullable=True, lo=1),
    "seed": Field("int", 0, "seed of the random vectors", lo=0),
    "draws": Field("int", 1, "independent draws (seeds seed, seed+1, ...): as a control each is trained and "
                   "evaluated, and stage 05 reports their mean, min and max", lo=1, hi=50),
})

SIDEINFO.register("sentence", "zslkit.data.sideinfo.sentence:build", free_text=True,
                  doc="MiniLM-L6 sentence vectors of a template around the tag (384-d)", params={
    "template": Field("str", "{tag}", "prompt; {tag} is replaced by the tag text",
                      check=(lambda v: "{tag}" in v, "must contain {tag}")),
    "batch_size": Field("int", 64, "encoder batch size", lo=1),
    "descriptions": Field("path", None, "a CSV tag,text of one description per tag, encoded instead of the "
                          "template (free text always uses the template)", nullable=True, exists=True),
    "dataset_descriptions": Field("bool", False, "encode the dataset's own descriptions.csv (m21 writes one "
                                  "from its catalogue)"),
})

# ----------------------------------------------------------------------------- audio encoders (model.<name>)

#: model.paper_bn.input_norm: what happens to the input log-mels before the first convolution
INPUT_NORMS = ("none", "band", "segment")
ENCODERS.register("paper", "zslkit.model.encoders:Paper", doc="the paper's 1-D CNN over time (242,788 parameters)")
ENCODERS.register("paper_bn", "zslkit.model.encoders:PaperBN",
                  doc="the paper's encoder with batch norm before each ReLU", params={
    "channels": Field("int", 128, "channels of each convolution (the paper: 128)", lo=4, hi=1024),
    "input_norm": Field("str", "none", "normalisation of the input log-mels per band: none, band (batch norm "
                        "of each band), segment (each band's mean over the segment removed)",
                        choices=INPUT_NORMS),
})
ENCODERS.register("shortchunk", "zslkit.model.encoders:ShortChunkEncoder",
                  doc="a 2-D short-chunk CNN (3x3 convs, batch norm, max-pool)", params={
    "width": Field("int", 32, "channels of the first block (doubling twice)", lo=4, hi=512),
})

# frozen pretrained backbones (zslkit.data.features): audio -> one vector per clip, computed once per dataset by stage
# 01 and cached; stage 03 trains only the projection to the joint space (model.projection) and the tag branch.
# Their sections choose the features, so stage 01 reads them (a change recomputes, or reuses, another cache).
ENCODERS.register("musicnn", "zslkit.model.backbones.musicnn_backbone:Musicnn", frozen=True,
                  doc="musicnn (Pons & Serra 2019), pretrained on MTT or MSD, frozen (the .[backbones] extra)", params={
    "variant": Field("str", "MTT_musicnn", "the pretrained network: MTT_musicnn, MSD_musicnn (musicnn, trained on "
                     "MagnaTagATune or the Million Song Dataset), MTT_vgg, MSD_vgg", choices=MUSICNN_VARIANTS,
                     stage="01"),
    "layer": Field("str", None, "the layer whose mean over the clip's 3-s patches is the feature; null = the "
                   "penultimate: bn_dense (200-d) for musicnn, pool5 (256-d) for vgg", nullable=True, stage="01"),
})
ENCODERS.register("hear", "zslkit.data.features:HearBackbone", frozen=True,
                  doc="any installed module following the HEAR 2021 API, frozen (its scene embeddings)", params={
    "module": Field("str", None, "the module's import name (load_model, get_scene_embeddings; sample_rate and "
                    "scene_embedding_size on the model or the module)", nullable=True, stage="01"),
    "weights": Field("str", "", "passed to the module's load_model (a path, relative to the project root when it "
                     "exists there); '' = load_model()", stage="01"),
    "supervised_on": Field("dict", {}, "what the module was trained on, for leakage: {tags: [...], datasets: [...]} "
                           "(dataset names as data.source: mtat, msd, ...); {} = the module's or model's own "
                           "`supervised_on` attribute when it has one, else nothing declared", stage="01",
                           check=(lambda v: set(v) <= {"tags", "datasets"} and all(
                               isinstance(x, list) and all(isinstance(t, str) for t in x) for x in v.values()),
                               "keys tags and datasets, each a list of strings")),
})

# a pretrained network trained whole (train.finetune: the learning rate of its pretrained weights) on its own front
# end: the dataset's mels must be made with the audio settings of `front_end`, fed unstandardised
ENCODERS.register("musicnn_tuned", "zslkit.model.backbones.musicnn_tuned:MusicnnTuned", pretrained=True,
                  front_end={"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96,
                             "log_gain": 10000.0},
                  doc="musicnn fine-tuned: its pretrained layers and a projection trained on its own front end "
                      "(16 kHz, 96 bands; train.finetune; the .[backbones] extra)", params={
    "variant": Field("str", "MTT_musicnn", "the pretrained network: MTT_musicnn or MSD_musicnn",
                     choices=("MTT_musicnn", "MSD_musicnn")),
})

# ----------------------------------------------------------------------------- zero-shot heads (heads.<name>)

HEADS.register("learned", "zslkit.evaluate.heads:learned", trained=True,
               doc="the paper's tag branch, trained with the audio encoder", params={
    "hidden": Field("int", None, "hidden width of an MLP tag branch; null = linear (the paper)", nullable=True,
                    lo=1, stage="03", recorded_in="checkpoint"),
})
HEADS.register("conse", "zslkit.evaluate.heads:conse",
               doc="ConSE: a convex combination of a track's best seen tags' side information", params={
    "top": Field("int", 10, "seen tags combined per track (ConSE's T)", lo=1),
    "temperature": Field("float", 0.1, "softmax temperature over their cosine scores", lo=1e-4),
})
HEADS.register("ridge", "zslkit.evaluate.heads:ridge",
               doc="a closed-form ridge map from side information to the learned seen-tag embeddings", params={
    "alpha": Field("float", 1.0, "ridge penalty", lo=0.0),
})
HEADS.register("eszsl", "zslkit.evaluate.heads:eszsl",
               doc="ESZSL: a closed-form bilinear map fitted on the training tracks' seen labels", params={
    "gamma": Field("float", 1.0, "penalty on the feature side", lo=0.0),
    "lam": Field("float", 1.0, "penalty on the side-information side", lo=0.0),
})

# ----------------------------------------------------------------------------- augmentations (train.augment items)

AUGMENTS.register("specaugment", "zslkit.model.augment:specaugment",
                  doc="SpecAugment masking: bands of frames and of mel bands set to the dataset mean", params={
    "time_masks": Field("int", 2, "time masks per segment", lo=0, hi=16),
    "time_width": Field("int", 20, "most frames per time mask (each width uniform in 0..time_width)", lo=0),
    "freq_masks": Field("int", 2, "frequency masks per segment", lo=0, hi=16),
    "freq_width": Field("int", 16, "most mel bands per frequency mask (uniform in 0..freq_width)", lo=0),
})
AUGMENTS.register("gain", "zslkit.model.augment:gain",
                  doc="a random gain per segment, applied to the mel magnitudes under the log", params={
    "db": Field("float", 6.0, "most gain either way, in dB (uniform in -db..db)", lo=0.0, hi=60.0),
})
AUGMENTS.register("tilt", "zslkit.model.augment:tilt",
                  doc="a random spectral tilt per segment (dB per octave about a pivot), under the log", params={
    "db_per_octave": Field("float", 3.0, "steepest tilt either way (uniform in -db_per_octave..db_per_octave)",
                           lo=0.0, hi=24.0),
    "pivot_hz": Field("float", 1000.0, "frequency the tilt leaves unchanged", lo=20.0),
})
AUGMENTS.register("mixup", "zslkit.model.augment:mixup",
                  doc="two tracks mixed (mel magnitudes added), positives the union of their tags", params={
    "p": Field("float", 0.5, "share of segments mixed with a partner from the batch", lo=0.0, hi=1.0),
    "alpha": Field("float", 1.0, "Beta(alpha, alpha) draws the mixing weight (1: uniform)", lo=1e-3, hi=100.0),
    "min_weight": Field("float", 0.2, "weights are scaled into min_weight..1-min_weight, so that both tracks, "
                        "whose tags are all positive, stay audible", lo=0.0, hi=0.5),
})
