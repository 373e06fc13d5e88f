"""musicnn in PyTorch: the front end and the four pretrained networks of ``musicnn==0.1.0``.

musicnn (Pons & Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging",
ISMIR 2019 late-breaking demo; ISC licence) ships TensorFlow-1 checkpoints of four taggers inside its
wheel. This module rebuilds the networks as ``torch.nn.Module`` and fills them from those checkpoints with
the pure-Python reader :mod:`.tfcheckpoint`; neither TensorFlow nor musicnn's code is imported (only the
installed package's data files are read: ``pip install --no-deps musicnn==0.1.0``, as ``make venv`` does; the
``backbones`` extra declares it, but installed with its dependencies it would pull TensorFlow and numpy<1.17).

Variants (:data:`VARIANTS`): ``MTT_musicnn`` and ``MSD_musicnn`` (the musically motivated CNN: timbral
and temporal convolutions, a dense mid-end, temporal pooling and a 200-unit penultimate layer),
``MTT_vgg`` and ``MSD_vgg`` (five 3x3 convolutions of 128 filters). MTT models were trained on
MagnaTagATune (:data:`MTT_LABELS`), MSD models on the Million Song Dataset (:data:`MSD_LABELS`); all
output 50 tag probabilities.

Front end, as ``musicnn.extractor.batch_data`` computes it:

1. mono audio at 16 kHz (:data:`SAMPLE_RATE`). Another rate is resampled with ``librosa.resample`` and
   its default resampler (soxr ``'soxr_hq'``), which is what the reference's ``librosa.load(path,
   sr=16000)`` used with librosa 0.11;
2. ``librosa.feature.melspectrogram`` (n_fft 512, hop 256, 96 mel bands, its defaults otherwise:
   centred Hann frames, power 2, Slaney mel scale and norm), rounded to float16, then
   ``log10(10000·x + 1)`` in float32. musicnn writes ``np.log10(10000 * mel16 + 1)``: with the numpy of
   its time (1.x, value-based casting: ``10000`` is a uint16 and float16 + uint16 promote to float32) the
   product is float32; numpy 2 would keep it float16 and overflow to ``inf`` above a mel power of 6.55
   (common in loud music). :func:`logmel` computes what musicnn computed, in float32;
3. patches of 187 frames (3 s, :data:`PATCH_FRAMES`), without overlap by default
   (``batch_data(path, 187, 187)``: the frames after the last whole patch are dropped). A clip shorter
   than one patch is padded with zeros (the log-mel of silence) to one patch, where musicnn fails.

Layers (:data:`LAYERS`), per patch of ``T`` frames, in TensorFlow's order of axes:

- musicnn: ``timbral`` (T, 408), ``temporal`` (T, 153), ``cnn1``, ``cnn2``, ``cnn3`` (T, 64),
  ``mean_pool``, ``max_pool`` (753,), ``bn_dense`` (200,; musicnn's ``penultimate``, the default
  embedding), ``logits`` (50,), ``taggram`` (50,: the sigmoid tag probabilities);
- vgg: ``pool1`` (92, 48, 128), ``pool2`` (46, 24, 128), ``pool3`` (23, 12, 128), ``pool4`` (11, 6, 128),
  ``pool5`` (256,: the flattened 2x1x128 map the output layer reads; the default embedding),
  ``logits``, ``taggram`` (50,).

>>> net = load("MTT_musicnn")                                   # doctest: +SKIP
>>> emb, prob = embed_clips(net, [y], sample_rate=44100)        # doctest: +SKIP
>>> emb.shape, prob.shape                                       # doctest: +SKIP
((1, 200), (1, 50))
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DataError, ParamError
from .tfcheckpoint import read_checkpoint

__all__ = ["VARIANTS", "LAYERS", "LAYER_ALIASES", "DEFAULT_LAYER", "MTT_LABELS", "MSD_LABELS", "SAMPLE_RATE",
           "N_FFT", "HOP", "N_MELS", "PATCH_FRAMES", "INSTALL_HINT", "Backbone", "MusiCNN", "VGG", "build", "load",
           "labels", "weights_prefix", "load_tf_weights", "tf_parameter_names", "to_mono_16k", "logmel", "patches",
           "embed_clips", "embed_waveform", "pool_layer"]

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
#: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``: musicnn's 3-s patch
PATCH_FRAMES = 187
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's epsilon
BN_MOMENTUM = 0.01  # its momentum 0.99, in torch's convention (only matters when fine-tuning)

VARIANTS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
LAYERS = {"musicnn": ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "bn_dense",
                      "logits", "taggram"),
          "vgg": ("pool1", "pool2", "pool3", "pool4", "pool5", "logits", "taggram")}
DEFAULT_LAYER = {"musicnn": "bn_dense", "vgg": "pool5"}
LAYER_ALIASES = {"penultimate": "bn_dense", "output": "taggram"}
INSTALL_HINT = ("install musicnn's wheel without its dependencies: `pip install --no-deps musicnn==0.1.0` "
                "(`make venv` does; the `.[backbones]` extra declares it, but `pip install -e .[backbones]` "
                "without --no-deps would also pull TensorFlow and numpy<1.17, which zslkit never uses)")

# musicnn.configuration (ISC licence), copied as data
MTT_LABELS = ('guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
              'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing',
              'vocals', 'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal',
              'pop', 'soft', 'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance',
              'male voice', 'female vocal', 'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal',
              'female voice', 'choral')
MSD_LABELS = ('rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
              'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock',
              'soul', 'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk',
              'oldies', 'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar',
              'Hip-Hop', '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk', 'electro',
              'heavy metal', 'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy')


def _check_variant(variant: str) -> tuple[str, str]:
    """``(dataset, family)`` of a variant name, e.g. ``("MTT", "musicnn")``."""
    if variant not in VARIANTS:
        raise ParamError(f"musicnn variant {variant!r} is unknown; choose one of {', '.join(VARIANTS)}")
    dataset, family = variant.split("_")
    return dataset, family


def labels(variant: str) -> tuple[str, ...]:
    """The 50 tag names of a variant's output, in output order (musicnn's ``MTT_LABELS`` or ``MSD_LABELS``)."""
    return MTT_LABELS if _check_variant(variant)[0] == "MTT" else MSD_LABELS


#: the dataset each variant's prefix was trained on, named as ``data.source`` (or ``data.seed.dataset``) names it
TRAINED_ON = {"MTT": "mtat", "MSD": "msd"}


def supervised_on(variant: str) -> dict[str, list[str]]:
    """What a variant was supervised on: ``{"tags": its 50 output tags, "datasets": [its training corpus]}``."""
    return {"tags": list(labels(variant)), "datasets": [TRAINED_ON[_check_variant(variant)[0]]]}


# ----------------------------------------------------------------------------------------------------- front end

def to_mono_16k(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 audio at 16 kHz.

    Parameters
    ----------
    y : numpy.ndarray, shape (n_samples,) or (n_channels, n_samples)
        The waveform; channels are averaged (as ``librosa.to_mono``).
    sample_rate : int
        Its rate in Hz. Another rate than 16,000 is resampled with ``librosa.resample`` and its default
        resampler (soxr ``'soxr_hq'``, the one ``librosa.load(path, sr=16000)`` uses in librosa 0.11).

    Returns
    -------
    numpy.ndarray, shape (n_samples_16k,), float32
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise ParamError(f"a waveform must be (n_samples,) or (n_channels, n_samples), not shape {y.shape}")
    if int(sample_rate) <= 0:
        raise ParamError(f"sample_rate must be a positive number of Hz, not {sample_rate!r}")
    if int(sample_rate) != SAMPLE_RATE:
        import librosa

        y = librosa.resample(y, orig_sr=int(sample_rate), target_sr=SAMPLE_RATE).astype(np.float32, copy=False)
    return y


def logmel(y16: np.ndarray) -> np.ndarray:
    """musicnn's log-mel spectrogram of 16-kHz mono audio.

    Parameters
    ----------
    y16 : numpy.ndarray, shape (n_samples,)
        Mono audio at 16 kHz (:func:`to_mono_16k`).

    Returns
    -------
    numpy.ndarray, shape (n_frames, 96), float32
        ``log10(10000·x + 1)`` in float32 of the float16-rounded mel power ``x``, as musicnn computed it
        under numpy 1.x; ``n_frames = 1 + n_samples // 256``.
    """
    import librosa

    mel = librosa.feature.melspectrogram(y=np.asarray(y16, dtype=np.float32), sr=SAMPLE_RATE, hop_length=HOP,
                                         n_fft=N_FFT, n_mels=N_MELS).T
    # musicnn's ``audio_rep.astype(np.float16)``, then numpy 1.x's float32 product (numpy 2 would overflow float16)
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * mel + np.float32(1))


def patches(mel: np.ndarray, n_frames: int = PATCH_FRAMES, hop: int | None = None) -> np.ndarray:
    """Cut a log-mel spectrogram into patches as ``musicnn.extractor.batch_data(path, n_frames, hop)`` does.

    Parameters
    ----------
    mel : numpy.ndarray, shape (n_mel_frames, 96)
    n_frames : int
        Frames a patch (187: 3 s).
    hop : int, optional
        Frames between patch starts; ``n_frames`` (no overlap) by default. Frames after the last whole patch
        are dropped.

    Returns
    -------
    numpy.ndarray, shape (n_patches, n_frames, 96), float32
        At least one patch: a spectrogram shorter than ``n_frames`` is padded with zeros (silence) at the end.
    """
    hop = n_frames if hop is None else int(hop)
    if n_frames < 1 or hop < 1:
        raise ParamError(f"patches need n_frames >= 1 and hop >= 1, not {n_frames} and {hop}")
    mel = np.asarray(mel, dtype=np.float32)
    if mel.shape[0] < n_frames:
        mel = np.concatenate([mel, np.zeros((n_frames - mel.shape[0], mel.shape[1]), np.float32)])
    starts = range(0, mel.shape[0] - n_frames + 1, hop)
    return np.stack([mel[s:s + n_frames] for s in starts])


# ----------------------------------------------------------------------------------------------------- networks

def _bn(n: int, dims: int) -> nn.Module:
    cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    return cls(n, eps=BN_EPS, momentum=BN_MOMENTUM)


class Backbone(nn.Module):
    """What both families share: a layer choice, ``forward`` returning it, ``extract`` returning several."""

    family = ""

    def __init__(self, n_classes: int = 50, layer: str | None = None, variant: str = ""):
        super().__init__()
        self.n_classes = n_classes
        self.variant = variant
        self.layer = self.check_layer(layer or DEFAULT_LAYER[self.family])

    @classmethod
    def check_layer(cls, layer: str) -> str:
        """The canonical name of ``layer`` (``penultimate`` -> ``bn_dense``, ``output`` -> ``taggram``)."""
        name = LAYER_ALIASES.get(layer, layer)
        if name not in LAYERS[cls.family]:
            raise ParamError(f"musicnn layer {layer!r} is not a layer of the {cls.family} networks; choose one of "
                             f"{', '.join(LAYERS[cls.family])}")
        return name

    def layer_shape(self, layer: str | None = None, n_frames: int = PATCH_FRAMES) -> tuple[int, ...]:
        """The shape of one patch's ``layer`` (default: the model's) for patches of ``n_frames``."""
        with torch.no_grad():
            x = torch.zeros(1, n_frames, N_MELS, device=next(self.parameters()).device)
            return tuple(self.extract(x, [layer or self.layer])[self.check_layer(layer or self.layer)].shape[1:])

    def embedding_size(self, layer: str | None = None) -> int:
        """Dimensions of ``layer`` (default: the model's) as a per-patch vector: layers with a time (and
        frequency) axis are averaged over them by :func:`embed_clips`, so this is their channel count."""
        return self.layer_shape(layer)[-1]

    def extract(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Several layers of one forward pass.

        Parameters
        ----------
        x : torch.Tensor, shape (batch, frames, 96)
            Log-mel patches (:func:`patches`), time-major as musicnn feeds them.
        layers : iterable of str
            Names from :data:`LAYERS` (aliases ``penultimate`` and ``output`` too).

        Returns
        -------
        dict of str to torch.Tensor
            Canonical layer name -> ``(batch, *layer shape)`` (see the module docstring for the shapes).
        """
        wanted = [self.check_layer(name) for name in layers]
        every = self._layers(x)
        return {name: every[name] for name in wanted}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's layer (``self.layer``; ``bn_dense`` or ``pool5`` by default) for ``(batch, frames, 96)``
        log-mel patches: ``(batch, *layer shape)``."""
        return self._layers(x)[self.layer]

    def _layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class MusiCNN(Backbone):
    """musicnn's ``build_musicnn`` (musically motivated front end, dense mid-end, temporal pooling back end).

    Parameters
    ----------
    n_classes : int
        Output tags (50).
    num_filt_midend : int
        Mid-end filters (64; 512 for musicnn's unreleased ``MSD_musicnn_big``).
    num_units_backend : int
        Units of the penultimate dense layer (200).
    layer : str, optional
        What :meth:`forward` returns (``bn_dense`` by default).
    variant : str
        The checkpoint's name, for records only.

    Notes
    -----
    TensorFlow's semantics, reproduced: the input (B, T, 96) is a one-channel NHWC image with time as
    height; the timbral convolutions (7x38 and 7x67, 204 filters each) see the patch zero-padded by 3 frames
    in time and are 'valid' in frequency; the temporal ones (128x1, 64x1, 32x1, 51 filters each) are 'same'
    (TensorFlow pads ``(k-1)//2`` before and the rest after); each is ReLU then batch norm then a max over
    all frequency bins (in eval mode computed on the extremes, :meth:`_max_over_frequency`). The mid-end's
    convolutions span the whole feature axis (kernel 7 x features) with 3 frames of zero padding, i.e. 1-D
    convolutions over time; the back end concatenates max and mean over time *interleaved* (``[max_0,
    mean_0, max_1, mean_1, ...]``, TensorFlow's flatten of (753, 2)), then batch norm, dense 200 + ReLU,
    batch norm (``bn_dense``), dense 50. Batch norm in eval mode with
    TensorFlow's epsilon 0.001. Dropout (0.5) sits where TensorFlow's does; it acts in train mode only.
    """

    family = "musicnn"

    def __init__(self, n_classes: int = 50, num_filt_midend: int = 64, num_units_backend: int = 200,
                 layer: str | None = None, variant: str = ""):
        super().__init__(n_classes, layer, variant)
        self.bn_input = _bn(1, 2)
        n_timbral, n_temporal = int(1.6 * 128), int(1.6 * 32)  # 204, 51
        self.timbral_kernels = (int(0.4 * N_MELS), int(0.7 * N_MELS))  # 38, 67
        self.timbral = nn.ModuleList(nn.Conv2d(1, n_timbral, (7, k)) for k in self.timbral_kernels)
        self.timbral_bn = nn.ModuleList(_bn(n_timbral, 2) for _ in self.timbral_kernels)
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList(nn.Conv2d(1, n_temporal, (k, 1)) for k in self.temporal_kernels)
        self.temporal_bn = nn.ModuleList(_bn(n_temporal, 2) for _ in self.temporal_kernels)
        n_front = 2 * n_timbral + 3 * n_temporal  # 561
        self.midend = nn.ModuleList([nn.Conv1d(n_front, num_filt_midend, 7),
                                     nn.Conv1d(num_filt_midend, num_filt_midend, 7),
                                     nn.Conv1d(num_filt_midend, num_filt_midend, 7)])
        self.midend_bn = nn.ModuleList(_bn(num_filt_midend, 1) for _ in range(3))
        n_mid = n_front + 3 * num_filt_midend  # 753
        self.bn_flat = _bn(2 * n_mid, 1)
        self.dense = nn.Linear(2 * n_mid, num_units_backend)
        self.bn_dense = _bn(num_units_backend, 1)
        self.out = nn.Linear(num_units_backend, n_classes)
        self.dropout = nn.Dropout(0.5)

    def _max_over_frequency(self, z: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
        """``max over frequency of bn(relu(z))``: (B, C, T, F) -> (B, C, T), as TensorFlow's front-end blocks.

        In eval mode batch norm is a per-channel affine map ``a·v + b``, monotonic, and so is ReLU: the max
        over frequency is ``a·relu(max z) + b`` where ``a >= 0`` and ``a·relu(min z) + b`` where ``a < 0``,
        computed on the (B, C, T) extremes instead of the whole map (the same numbers, about a third
        faster). In train mode batch norm needs the whole map's statistics, so it is applied to it.
        """
        if self.training:
            return bn(torch.relu(z)).amax(dim=3)
        lo, hi = torch.aminmax(z, dim=3)
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        v = torch.relu(torch.where((scale >= 0)[:, None], hi, lo))
        return F.batch_norm(v, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    def _layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 3 or x.shape[2] != N_MELS:
            raise ParamError(f"musicnn takes log-mel patches (batch, frames, {N_MELS}), not shape {tuple(x.shape)}")
        x = self.bn_input(x.unsqueeze(1))  # (B, 1, T, 96): NCHW of TensorFlow's (B, T, 96, 1)
        front = []
        padded = F.pad(x, (0, 0, 3, 3))
        for conv, bn in zip(self.timbral, self.timbral_bn):
            front.append(self._max_over_frequency(conv(padded), bn))  # (B, 204, T)
        for k, conv, bn in zip(self.temporal_kernels, self.temporal, self.temporal_bn):
            same = F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))
            front.append(self._max_over_frequency(conv(same), bn))  # (B, 51, T)
        front_all = torch.cat(front, dim=1)  # (B, 561, T)
        mids, h = [], front_all
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn)):
            y = bn(torch.relu(conv(F.pad(h, (3, 3)))))
            h = y if i == 0 else y + h
            mids.append(h)
        feats = torch.cat([front_all, *mids], dim=1)  # (B, 753, T)
        max_pool, mean_pool = feats.amax(dim=2), feats.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # interleaved, as TF's flatten of (753, 2)
        bn_dense = self.bn_dense(torch.relu(self.dense(self.dropout(self.bn_flat(flat)))))
        logits = self.out(self.dropout(bn_dense))
        t = lambda v: v.transpose(1, 2)  # noqa: E731  (B, C, T) -> TensorFlow's (B, T, C)
        return {"timbral": t(torch.cat(front[:2], dim=1)), "temporal": t(torch.cat(front[2:], dim=1)),
                "cnn1": t(mids[0]), "cnn2": t(mids[1]), "cnn3": t(mids[2]), "mean_pool": mean_pool,
                "max_pool": max_pool, "bn_dense": bn_dense, "logits": logits, "taggram": torch.sigmoid(logits)}


class VGG(Backbone):
    """musicnn's ``vgg``: five 'same' 3x3 convolutions (128 filters) each followed by ReLU, batch norm and a
    'valid' max pool (4x1 stride 2x2, then 2x2, 2x2, 2x2, 4x4), dropout 0.25 between, a dense output layer
    over the flattened last map (2 x 1 x 128 = 256 in TensorFlow's height-width-channel order).

    Parameters
    ----------
    n_classes : int
        Output tags (50).
    num_filters : int
        Filters of each convolution (128).
    layer : str, optional
        What :meth:`forward` returns (``pool5`` by default).
    variant : str
        The checkpoint's name, for records only.

    Notes
    -----
    Only 187-frame patches fit the output layer (musicnn refuses other lengths for vgg too).
    """

    family = "vgg"
    pools = ((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))

    def __init__(self, n_classes: int = 50, num_filters: int = 128, layer: str | None = None, variant: str = ""):
        super().__init__(n_classes, layer, variant)
        self.bn_input = _bn(1, 2)
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else num_filters, num_filters, 3, padding=1)
                                   for i in range(5))
        self.bns = nn.ModuleList(_bn(num_filters, 2) for _ in range(5))
        self.out = nn.Linear(2 * 1 * num_filters, n_classes)
        self.dropout_conv, self.dropout = nn.Dropout(0.25), nn.Dropout(0.5)

    def _layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 3 or x.shape[1] != PATCH_FRAMES or x.shape[2] != N_MELS:
            raise ParamError(f"musicnn's vgg takes log-mel patches (batch, {PATCH_FRAMES}, {N_MELS}), not shape "
                             f"{tuple(x.shape)}")
        h = self.bn_input(x.unsqueeze(1))
        out = {}
        for i, (conv, bn, (size, stride)) in enumerate(zip(self.convs, self.bns, self.pools)):
            if i:
                h = self.dropout_conv(h)
            h = F.max_pool2d(bn(torch.relu(conv(h))), size, stride)
            out[f"pool{i + 1}"] = h.permute(0, 2, 3, 1)  # TensorFlow's NHWC
        out["pool5"] = out["pool5"].flatten(1)  # (B, 2 * 1 * 128) in NHWC order, as tf.layers.flatten
        out["logits"] = self.out(self.dropout(out["pool5"]))
        out["taggram"] = torch.sigmoid(out["logits"])
        return out


def build(variant: str = "MTT_musicnn", layer: str | None = None) -> Backbone:
    """An untrained network of ``variant``'s architecture (random weights; :func:`load` fills them)."""
    _, family = _check_variant(variant)
    n = len(labels(variant))
    return MusiCNN(n, layer=layer, variant=variant) if family == "musicnn" else VGG(n, layer=layer, variant=variant)


# ----------------------------------------------------------------------------------------------------- weights

def tf_parameter_names(model: Backbone) -> dict[str, str]:
    """Torch parameter or buffer name -> the TensorFlow checkpoint's variable name.

    TensorFlow-1 layers are named in creation order (``conv2d``, ``conv2d_1``, ...; ``batch_normalization``,
    ``batch_normalization_1``, ...), as ``build_musicnn`` and ``vgg`` create them.
    """
    names: dict[str, str] = {}

    def bn(torch_name: str, i: int) -> None:
        tf = "batch_normalization" + (f"_{i}" if i else "")
        names.update({f"{torch_name}.weight": f"{tf}/gamma", f"{torch_name}.bias": f"{tf}/beta",
                      f"{torch_name}.running_mean": f"{tf}/moving_mean",
                      f"{torch_name}.running_var": f"{tf}/moving_variance"})

    def conv(torch_name: str, tf: str) -> None:
        names.update({f"{torch_name}.weight": f"{tf}/kernel", f"{torch_name}.bias": f"{tf}/bias"})

    bn("bn_input", 0)
    if isinstance(model, MusiCNN):
        mods = ([f"timbral.{i}" for i in range(2)] + [f"temporal.{i}" for i in range(3)]
                + [f"midend.{i}" for i in range(3)])
        bns = ([f"timbral_bn.{i}" for i in range(2)] + [f"temporal_bn.{i}" for i in range(3)]
               + [f"midend_bn.{i}" for i in range(3)])
        for i, (m, b) in enumerate(zip(mods, bns)):
            conv(m, "conv2d" + (f"_{i}" if i else ""))
            bn(b, i + 1)
        bn("bn_flat", 9)
        conv("dense", "dense")
        bn("bn_dense", 10)
        conv("out", "dense_1")
    else:
        for i in range(5):
            conv(f"convs.{i}", f"{i + 1}CNN")
            bn(f"bns.{i}", i + 1)
        conv("out", "dense")
    return names


def _to_torch(value: np.ndarray, target: torch.Tensor) -> np.ndarray:
    """A TensorFlow kernel in torch's layout: conv2d (kh, kw, in, out) -> (out, in, kh, kw); a conv2d
    spanning the whole input width as a conv1d (k, width, 1, out) -> (out, width, k); dense (in, out) ->
    (out, in)."""
    if value.ndim == 4 and target.dim() == 3:
        return value[:, :, 0, :].transpose(2, 1, 0)
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    if value.ndim == 2:
        return value.T
    return value


def load_tf_weights(model: Backbone, tensors: dict[str, np.ndarray], source: str = "checkpoint") -> Backbone:
    """Copy a musicnn checkpoint's tensors into ``model`` (in place), checking every shape.

    Parameters
    ----------
    model : MusiCNN or VGG
    tensors : dict of str to numpy.ndarray
        :func:`zslkit.model.backbones.tfcheckpoint.read_checkpoint`'s answer (optimizer slots are ignored).
    source : str
        Named in errors.

    Returns
    -------
    The same model.

    Raises
    ------
    zslkit.errors.DataError
        A variable the architecture needs is missing, or its shape differs.
    """
    state = model.state_dict()
    for torch_name, tf_name in tf_parameter_names(model).items():
        if tf_name not in tensors:
            raise DataError(f"{source}: no variable {tf_name!r} (wanted for {torch_name} of {type(model).__name__})")
        value = _to_torch(np.asarray(tensors[tf_name]), state[torch_name])
        if tuple(value.shape) != tuple(state[torch_name].shape):
            raise DataError(f"{source}: variable {tf_name!r} has shape {tensors[tf_name].shape}, which does not fit "
                            f"{torch_name} {tuple(state[torch_name].shape)} of {type(model).__name__}")
        state[torch_name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    model.load_state_dict(state)
    return model


def weights_prefix(variant: str = "MTT_musicnn") -> Path:
    """The checkpoint prefix of ``variant`` in the installed musicnn package (``.../musicnn/MTT_musicnn/``).

    The package is located with ``importlib.util.find_spec`` and never imported (its code needs TensorFlow).

    Raises
    ------
    zslkit.errors.ParamError
        An unknown variant, or musicnn is not installed (the message says how to install it).
    """
    _check_variant(variant)
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise ParamError(f"the musicnn backbone {variant!r} needs the musicnn package's checkpoint files, and "
                         f"musicnn is not installed: {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0]) / variant
    if not (folder / ".index").is_file():
        raise ParamError(f"{folder}: the musicnn package holds no checkpoint of {variant!r} (.index missing); "
                         f"reinstall it: {INSTALL_HINT}")
    return folder


def load(variant: str = "MTT_musicnn", layer: str | None = None,
         device: str | torch.device = "cpu") -> Backbone:
    """A pretrained musicnn network, weights read from the installed musicnn wheel, in eval mode.

    Parameters
    ----------
    variant : str
        One of :data:`VARIANTS` (``MTT_musicnn`` by default).
    layer : str, optional
        What the model's ``forward`` returns: ``bn_dense`` (musicnn) or ``pool5`` (vgg) by default; any of
        :data:`LAYERS`.
    device : str or torch.device

    Returns
    -------
    MusiCNN or VGG
        ``model(x)`` maps log-mel patches ``(batch, frames, 96)`` to ``(batch, *layer shape)``;
        ``model.extract(x, layers)`` returns several layers; ``model.variant`` names the checkpoint.

    Raises
    ------
    zslkit.errors.ParamError
        Unknown variant or layer, or musicnn not installed.
    zslkit.errors.DataError
        The checkpoint is corrupt or does not fit the architecture.
    """
    model = build(variant, layer)
    prefix = weights_prefix(variant)
    load_tf_weights(model, read_checkpoint(str(prefix) + "/"), source=str(prefix))
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------------- clips

def pool_layer(v: torch.Tensor) -> torch.Tensor:
    """A layer's output as one vector per patch.

    Parameters
    ----------
    v : torch.Tensor, shape (batch, C), (batch, T, C) or (batch, H, W, C)

    Returns
    -------
    torch.Tensor, shape (batch, C)
        ``v`` itself, or its mean over the time (and frequency) axes.
    """
    return v if v.dim() == 2 else v.flatten(1, -2).mean(dim=1)


@torch.no_grad()
def embed_clips(model: Backbone, waveforms: Sequence[np.ndarray] | np.ndarray, sample_rate: int,
                layer: str | None = None, hop: int | None = None,
                batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip embeddings and tag probabilities: the mean over each clip's 3-s patches.

    Parameters
    ----------
    model : MusiCNN or VGG
        From :func:`load`.
    waveforms : sequence of numpy.ndarray, or numpy.ndarray of shape (n_clips, n_samples)
        Each clip ``(n_samples,)`` or ``(n_channels, n_samples)``; lengths may differ.
    sample_rate : int
        The clips' rate in Hz; resampled to 16 kHz by ``librosa.resample`` (default ``'soxr_hq'``).
    layer : str, optional
        The embedding layer (the model's own, ``bn_dense`` for musicnn, by default). Layers with a time
        (or time and frequency) axis are averaged over it within each patch.
    hop : int, optional
        Frames between patches (187: no overlap, as the reference; fewer: overlapping patches).
    batch_size : int
        Patches per forward pass; the patches of all clips are batched together.

    Returns
    -------
    embeddings : numpy.ndarray, shape (n_clips, D), float32
        ``D`` = 200 for ``bn_dense``.
    probabilities : numpy.ndarray, shape (n_clips, 50), float32
        The sigmoid tag probabilities, mean over patches (musicnn's taggram averaged), in the order of
        :func:`labels`.
    """
    layer = model.check_layer(layer or model.layer)
    mels = [patches(logmel(to_mono_16k(y, sample_rate)), PATCH_FRAMES, hop) for y in waveforms]
    if not mels:
        raise ParamError("embed_clips was given no waveform")
    counts = [len(m) for m in mels]
    allp = torch.from_numpy(np.concatenate(mels))
    device = next(model.parameters()).device
    emb, prob = [], []
    for a in range(0, len(allp), max(1, int(batch_size))):
        out = model.extract(allp[a:a + batch_size].to(device), [layer, "taggram"])
        emb.append(pool_layer(out[layer]).float().cpu())
        prob.append(out["taggram"].float().cpu())
    emb_all, prob_all = torch.cat(emb).numpy(), torch.cat(prob).numpy()
    bounds = np.cumsum([0] + counts)
    return (np.stack([emb_all[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]),
            np.stack([prob_all[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]))


def embed_waveform(model: Backbone, y: np.ndarray, sample_rate: int, layer: str | None = None,
                   hop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One clip's embedding ``(D,)`` and tag probabilities ``(50,)``: :func:`embed_clips` of one waveform."""
    emb, prob = embed_clips(model, [y], sample_rate, layer=layer, hop=hop)
    return emb[0], prob[0]
