"""The musicnn port (zslkit.model.backbones): the TF checkpoint reader, the networks against TensorFlow's own
answers (tests/data/musicnn_reference: 7 rendered clips and MTT_musicnn's tag probabilities under TF 2.15),
and the HEAR module.

The weights come from the musicnn wheel, which ``make venv`` installs (``--no-deps``, requirements-nodeps.txt):
without it these tests fail, saying how to install it, unless ZSLKIT_ALLOW_NO_MUSICNN=1 (then they skip)."""
import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from zslkit.errors import DataError, ParamError
from zslkit.model.backbones import hear_musicnn, musicnn
from zslkit.model.backbones.tfcheckpoint import _varint, read_checkpoint, read_index

REF = Path(__file__).resolve().parent / "data" / "musicnn_reference"
TOLERANCE = 1e-3  # the bound on |P - P_tf|; measured here: about 3e-6


@pytest.fixture(scope="module", autouse=True)
def musicnn_installed():
    if importlib.util.find_spec("musicnn") is None:
        why = f"musicnn is not installed: {musicnn.INSTALL_HINT}"
        if os.environ.get("ZSLKIT_ALLOW_NO_MUSICNN") == "1":
            print(why)
            pytest.skip(why)
        pytest.fail(why + " (or set ZSLKIT_ALLOW_NO_MUSICNN=1 to skip these tests)")


@pytest.fixture(scope="module")
def mtt():
    return musicnn.load("MTT_musicnn")


@pytest.fixture(scope="module")
def reference():
    ref = np.load(REF / "mtt_musicnn_tf.npz")
    clips = []
    for name in ref["clips"]:
        y, sr = sf.read(REF / str(name), dtype="float32", always_2d=True)  # as librosa.load reads it
        clips.append(y.T)
    return ref, clips, sr


def prefix(variant):
    return str(musicnn.weights_prefix(variant)) + "/"


# ------------------------------------------------------------------------------------------------ known answers

def test_reproduces_tensorflows_tag_probabilities(mtt, reference):
    ref, clips, sr = reference
    assert tuple(ref["labels"]) == musicnn.MTT_LABELS == musicnn.labels("MTT_musicnn")
    emb, prob = musicnn.embed_clips(mtt, clips, sr)
    assert emb.shape == (7, 200) and prob.shape == (7, 50) and emb.dtype == prob.dtype == np.float32
    diff = np.abs(prob - ref["P"]).max()
    print(f"max |P - P_tf| = {diff:.2e}")
    assert diff < TOLERANCE
    # one clip at a time gives the same as the batch
    e0, p0 = musicnn.embed_waveform(mtt, clips[3], sr)
    np.testing.assert_allclose(p0, prob[3], atol=1e-6)
    np.testing.assert_allclose(e0, emb[3], atol=1e-5)
    # and the top tags are the instruments rendered
    top = {str(c).split(".")[0]: musicnn.MTT_LABELS[int(np.argmax(p))] for c, p in zip(ref["clips"], prob)}
    assert top["choir"] == "choir" and top["flute"] == "flute" and top["piano"] == "piano"


def test_front_end_cuts_patches_as_batch_data(reference):
    _, clips, sr = reference
    y16 = musicnn.to_mono_16k(clips[0], sr)
    assert y16.shape == (160000,) and y16.dtype == np.float32
    mel = musicnn.logmel(y16)
    assert mel.shape == (1 + 160000 // 256, 96) and np.isfinite(mel).all() and mel.min() >= 0
    assert musicnn.patches(mel).shape == (3, 187, 96)  # 626 frames: starts 0, 187, 374
    assert musicnn.patches(mel, hop=93).shape == (5, 187, 96)
    np.testing.assert_array_equal(musicnn.patches(mel)[1], mel[187:374])
    short = musicnn.patches(mel[:50])
    assert short.shape == (1, 187, 96) and (short[0, 50:] == 0).all()
    # the float16 rounding of the mel power musicnn applies, with numpy 1.x's float32 product (no overflow)
    assert mel.max() > np.log10(10000 * 6.56 + 1)


# ------------------------------------------------------------------------------------------------ the reader

@pytest.mark.parametrize("variant", musicnn.VARIANTS)
def test_checkpoint_tensors_fit_the_architecture(variant):
    tensors = read_checkpoint(prefix(variant))
    model = musicnn.build(variant)
    names = musicnn.tf_parameter_names(model)
    state = model.state_dict()
    assert set(names) == {k for k in state if not k.endswith("num_batches_tracked")}
    optimizer = {k for k in tensors if k.endswith(("/Adam", "/Adam_1")) or k in ("beta1_power", "beta2_power")}
    assert set(names.values()) == set(tensors) - optimizer  # every trained variable is used, no more
    for torch_name, tf_name in names.items():
        assert tensors[tf_name].dtype == np.float32 and np.isfinite(tensors[tf_name]).all()
        assert int(np.prod(tensors[tf_name].shape)) == state[torch_name].numel(), (torch_name, tf_name)
    musicnn.load_tf_weights(model, tensors)  # checks each shape in torch's layout
    if variant.endswith("musicnn"):
        expected = {"conv2d/kernel": (7, 38, 1, 204), "conv2d_1/kernel": (7, 67, 1, 204),
                    "conv2d_2/kernel": (128, 1, 1, 51), "conv2d_5/kernel": (7, 561, 1, 64),
                    "dense/kernel": (1506, 200), "dense_1/kernel": (200, 50)}
        assert {k: tensors[k].shape for k in expected} == expected
    else:
        assert tensors["1CNN/kernel"].shape == (3, 3, 1, 128) and tensors["dense/kernel"].shape == (256, 50)


def test_reader_index_header_and_entries():
    header, entries = read_index(prefix("MTT_musicnn"))
    assert header == {"num_shards": 1, "endianness": 0}
    assert list(entries) == sorted(entries)  # the table's order, keys rebuilt from their shared prefixes
    e = entries["batch_normalization_10/moving_variance"]
    assert e["dtype"] == 1 and e["shape"] == (200,) and e["size"] == 800


def copy_checkpoint(tmp_path, variant="MTT_vgg"):
    src = Path(prefix(variant))
    dst = tmp_path / "ckpt"
    dst.mkdir()
    for name in (".index", ".data-00000-of-00001"):
        shutil.copy(src / name, dst / name)
    return dst


def test_truncated_or_corrupt_index_raises_naming_the_file(tmp_path):
    ck = copy_checkpoint(tmp_path)
    index = ck / ".index"
    data = index.read_bytes()
    index.write_bytes(data[: len(data) // 2])  # truncated: no footer
    with pytest.raises(DataError, match=r"ckpt/\.index.*magic"):
        read_checkpoint(str(ck) + "/")
    index.write_bytes(data[:100] + data[-48:])  # footer intact, blocks cut away
    with pytest.raises(DataError, match=r"ckpt/\.index.*past the end"):
        read_checkpoint(str(ck) + "/")
    # a block marked compressed (snappy): refused clearly
    footer = data[-48:]
    _, pos = _varint(footer, 0, "")
    _, pos = _varint(footer, pos, "")
    offset, pos = _varint(footer, pos, "")
    size, _ = _varint(footer, pos, "")
    bad = bytearray(data)
    bad[offset + size] = 1
    index.write_bytes(bytes(bad))
    with pytest.raises(DataError, match=r"ckpt/\.index.*compressed \(type 1"):
        read_checkpoint(str(ck) + "/")
    # a missing index, and a short data file
    index.write_bytes(data)
    (ck / ".data-00000-of-00001").write_bytes(b"\0" * 1000)
    with pytest.raises(DataError, match=r"ckpt/\.data-00000-of-00001.*runs past the end"):
        read_checkpoint(str(ck) + "/")
    with pytest.raises(DataError, match=r"nowhere\.index"):
        read_checkpoint(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------ the API

def test_bad_variant_layer_or_missing_package(monkeypatch):
    with pytest.raises(ParamError, match=r"'MTT_resnet'.*MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg"):
        musicnn.load("MTT_resnet")
    with pytest.raises(ParamError, match="'MTT_resnet'"):
        hear_musicnn.load_model(variant="MTT_resnet")
    with pytest.raises(ParamError, match=r"'pool5' is not a layer of the musicnn"):
        musicnn.build("MTT_musicnn", layer="pool5")
    monkeypatch.setattr(musicnn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ParamError, match=r"pip install --no-deps musicnn==0\.1\.0.*\.\[backbones\]"):
        musicnn.load("MSD_musicnn")


@pytest.mark.parametrize("variant, shapes", [
    ("MTT_musicnn", {"timbral": (187, 408), "temporal": (187, 153), "cnn1": (187, 64), "cnn3": (187, 64),
                     "mean_pool": (753,), "max_pool": (753,), "bn_dense": (200,), "penultimate": (200,),
                     "logits": (50,), "taggram": (50,)}),
    ("MTT_vgg", {"pool1": (92, 48, 128), "pool2": (46, 24, 128), "pool3": (23, 12, 128), "pool4": (11, 6, 128),
                 "pool5": (256,), "taggram": (50,)}),
])
def test_layer_shapes(variant, shapes):
    net = musicnn.build(variant).eval()
    with torch.no_grad():
        out = net.extract(torch.zeros(2, 187, 96), shapes)
    got = {musicnn.LAYER_ALIASES.get(k, k): tuple(out[musicnn.LAYER_ALIASES.get(k, k)].shape[1:]) for k in shapes}
    assert got == {musicnn.LAYER_ALIASES.get(k, k): v for k, v in shapes.items()}
    assert net(torch.zeros(2, 187, 96)).shape == (2, *shapes["bn_dense" if "musicnn" in variant else "pool5"])


def test_intermediate_layers_and_taggram_agree(mtt, reference):
    _, clips, sr = reference
    x = torch.from_numpy(musicnn.patches(musicnn.logmel(musicnn.to_mono_16k(clips[4], sr))))
    with torch.no_grad():
        out = mtt.extract(x, ["bn_dense", "logits", "taggram", "mean_pool", "cnn3"])
        np.testing.assert_allclose(out["taggram"], torch.sigmoid(out["logits"]), atol=1e-7)
        np.testing.assert_allclose(mtt(x), out["bn_dense"])
        np.testing.assert_allclose(out["mean_pool"][:, -64:], out["cnn3"].mean(dim=1), atol=1e-5)
    emb, _ = musicnn.embed_clips(mtt, [clips[4]], sr, layer="cnn3")
    assert emb.shape == (1, 64)
    # the eval-mode shortcut of the front end's ReLU, batch norm and max over frequency
    z = torch.randn(2, 204, 30, 59, generator=torch.Generator().manual_seed(0)) * 3
    bn = mtt.timbral_bn[0]
    assert bn.weight.min() < 0 < bn.weight.max()  # both signs of scale are exercised
    with torch.no_grad():
        np.testing.assert_allclose(mtt._max_over_frequency(z, bn), bn(torch.relu(z)).amax(dim=3), atol=1e-6)


# ------------------------------------------------------------------------------------------------ HEAR

def test_hear_module(mtt, reference):
    _, clips, sr = reference
    model = hear_musicnn.load_model("")
    assert model.sample_rate == 16000 and model.scene_embedding_size == model.timestamp_embedding_size == 200
    y16 = np.stack([musicnn.to_mono_16k(c, sr) for c in clips[:3]])[:, :16000 * 7]
    audio = torch.from_numpy(y16)
    scene = hear_musicnn.get_scene_embeddings(audio, model)
    assert isinstance(scene, torch.Tensor) and scene.shape == (3, 200) and scene.dtype == torch.float32
    emb, _ = musicnn.embed_clips(mtt, list(y16), 16000)
    np.testing.assert_allclose(scene.numpy(), emb, atol=1e-6)
    ts_emb, ts = hear_musicnn.get_timestamp_embeddings(audio, model)
    n_frames = 1 + 16000 * 7 // 256
    n_ts = -(-n_frames // 16)
    assert ts_emb.shape == (3, n_ts, 200) and ts.shape == (3, n_ts)
    np.testing.assert_allclose(ts[0, :3].numpy(), [0.0, 256.0, 512.0])
    assert (ts[1] == ts[0]).all() and torch.isfinite(ts_emb).all()
    # timestamp 6 is the patch centred on frame 96: mel frames 3..189
    mel = musicnn.logmel(y16[0])
    with torch.no_grad():
        direct = mtt(torch.from_numpy(mel[None, 16 * 6 - 93:16 * 6 + 94]))
    np.testing.assert_allclose(ts_emb[0, 6].numpy(), direct[0].numpy(), atol=1e-5)
    short = hear_musicnn.get_scene_embeddings(torch.zeros(2, 8000), model)  # shorter than one patch
    assert short.shape == (2, 200)


@pytest.mark.parametrize("variant, corpus", [("MTT_musicnn", "mtat"), ("MSD_vgg", "msd")])
def test_what_each_variant_was_supervised_on_reaches_the_hear_encoder(variant, corpus):
    from zslkit.data.features import SupervisedOn, backbone_of

    declared = musicnn.supervised_on(variant)
    assert declared == {"tags": list(musicnn.labels(variant)), "datasets": [corpus]} and len(declared["tags"]) == 50
    assert backbone_of("musicnn", {"variant": variant, "layer": None}).supervised_on == SupervisedOn.of(declared)
    # the port used through the HEAR seam declares the same, with nothing set in the params
    bb = backbone_of("hear", {"module": "zslkit.model.backbones.hear_musicnn", "weights": variant, "supervised_on": {}})
    assert bb.supervised_on == SupervisedOn.of(declared)
