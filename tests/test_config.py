import re

import pytest

from zslkit import ParamError, config
from zslkit.data.datasets import m21


def test_defaults_resolve_and_paths_are_absolute(tmp_path):
    P = config.resolve({}, root=tmp_path)
    assert set(P) == set(config.SECTIONS) == set(config.schema())
    assert P["audio"]["n_fft"] == 1024 and P["audio"]["hop_length"] == 512
    assert P["run"]["reports_dir"] == str(tmp_path / "reports")


def test_overrides_merge_into_nested_sections(tmp_path):
    P = config.resolve({"data": {"m21": {"n_clips": 50, "coverage": {"form": 1.0}}}}, root=tmp_path)
    assert P["data"]["m21"]["n_clips"] == 50
    assert P["data"]["m21"]["coverage"]["form"] == 1.0
    assert P["data"]["m21"]["coverage"]["instrument"] == m21.catalogue.coverage()["instrument"]


@pytest.mark.parametrize("params, message", [
    ({"trainn": {}}, "unknown section 'trainn'"),
    ({"audio": {"n_ffts": 1024}}, "unknown key audio.n_ffts"),
    ({"data": {"m21": {"n_clip": 3}}}, "unknown key data.m21.n_clip"),
    ({"audio": {"n_fft": "1024"}}, "audio.n_fft: expected int, got '1024'"),
    ({"audio": {"n_fft": True}}, "audio.n_fft: expected int"),
    ({"run": {"progress": 1}}, "run.progress: expected bool"),
    ({"audio": {"n_mels": 2}}, "audio.n_mels: 2 is below the minimum"),
    ({"split": {"ratio": 1.5}}, "split.ratio: 1.5 is above the maximum"),
    ({"data": {"source": "spotify"}}, "data.source: 'spotify' is not one of"),
    ({"run": {"name": "a b"}}, "run.name: 'a b' is invalid"),
    ({"data": {"m21": {"instruments_per_clip": [0.5, 0.2]}}}, "data.m21.instruments_per_clip"),
    ({"data": {"m21": {"coverage": {"colour": 0.3}}}}, "data.m21.coverage"),
    ({"data": {"folder": {"csv": "no/such/file.csv"}}}, "data.folder.csv: file or folder not found"),
    ({"audio": {"n_fft": None}}, "audio.n_fft: may not be null"),
    ({"audio": []}, "section 'audio': expected a mapping"),
])
def test_invalid_parameters_name_key_and_value(tmp_path, params, message):
    with pytest.raises(ParamError, match=None) as err:
        config.resolve(params, root=tmp_path, source="bad.yaml")
    assert message in str(err.value)
    assert "bad.yaml" in str(err.value)


def test_load_reports_file_problems(tmp_path):
    with pytest.raises(ParamError, match="parameter file not found"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed")
    with pytest.raises(ParamError, match="not valid YAML"):
        config.load(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ParamError, match="expected a mapping of sections"):
        config.load(bad)


def test_shipped_params_files_are_valid():
    for name, run_name in (("demo", "demo"), ("smoke", "smoke"), ("demo_paper", "demo-paper")):
        P = config.load(config.project_root() / "params" / f"{name}.yaml")
        assert P["run"]["name"] == run_name


def test_every_shipped_params_file_loads_or_expands():
    """Each file in params/ resolves (a run) or expands (a sweep); only the importers' files may stop, and
    only at the user's dataset, which this checkout does not have."""
    from zslkit.run import sweep
    for path in sorted((config.project_root() / "params").glob("*.yaml")):
        try:
            if "grid" in config.load_yaml(path):
                assert sweep.expand(sweep.load_sweep(path), config.project_root()), path
            else:
                config.load(path)
        except ParamError as e:
            assert re.search(r"file or folder not found: \S*/data/raw/", str(e)), e


def test_dump_round_trips(tmp_path):
    import yaml
    P = config.resolve({"split": {"seed": 3}}, root=tmp_path)
    assert config.resolve(yaml.safe_load(config.dump(P)), root=tmp_path) == P


# ----------------------------------------------------------------------------- what the schema says about its keys

#: the key tables as the runner, the trainer and stage 01 wrote them by hand before each Field carried its
#: stage, neutrality and record (zslkit/run/runner.py, model/trainer.py, data/prepare.py at abfe4ac)
OLD_STAGE_OF_SECTION = {"run": "01", "data": "01", "audio": "01", "split": "02", "sideinfo": "02", "model": "03",
                        "train": "03", "embed": "04", "evaluate": "05", "heads": "05", "compare": "06",
                        "transfer": "07"}
OLD_STAGE_OF_KEY = {"audio.segment_frames": "03"}
OLD_NEUTRAL_KEYS = {"run.name", "run.progress", "run.workers", "run.reports_dir", "audio.scheduler", "audio.layout",
                    "audio.shard_tracks", "train.nproc", "evaluate.backend", "evaluate.device"}
OLD_FEED_KEYS = ("feed", "device_pack_gb", "nproc")
OLD_MEL_SETTINGS = ("sample_rate", "n_fft", "hop_length", "n_mels", "log_gain", "pad_mode", "max_duration")
#: where the derived answers differ from the runner's old tables, on purpose: training reads the tag branch's
#: width (the old table said stage 05, whose checkpoint check then failed); the trainer already left the feed
#: keys out of its digest (no number depends on them), the runner did not
CORRECTED_STAGES = {"heads.learned": "03",
                    # sections added since: a frozen backbone's section chooses the features stage 01 caches
                    "model.musicnn": "01", "model.hear": "01"}
CORRECTED_NEUTRAL = {"train.feed", "train.device_pack_gb"}
#: neutral keys added since those tables (how a run is watched, not what it computes)
NEW_NEUTRAL = {"run.cell_timeout", "run.real_check"}


def runner_keys():
    """Every ``section.key`` the runner compares (sub-sections such as ``heads.learned`` as a whole)."""
    return [f"{s}.{k}" for s, spec in config.schema().items() for k in spec]


def test_stages_derived_from_the_schema_match_the_old_tables():
    known = config.fields()
    for name in runner_keys():
        old = OLD_STAGE_OF_KEY.get(name, OLD_STAGE_OF_SECTION[name.split(".")[0]])
        assert config.stage_of(name, known) == CORRECTED_STAGES.get(name, old), name
    assert config.stage_of("heads.learned.hidden") == "03" and config.stage_of("embed.umap") == "04"
    assert config.stage_of("split.gone") == "02"  # a key an older run recorded: its section's stage
    assert config.stage_of("nosection.key") == "01"


def test_neutral_keys_derived_from_the_schema_match_the_old_tables():
    known = config.fields()
    assert ({n for n in runner_keys() if config.is_neutral(n, known)}
            == OLD_NEUTRAL_KEYS | CORRECTED_NEUTRAL | NEW_NEUTRAL)
    assert not config.is_neutral("run.gone") and not config.is_neutral("embed.umap")


def test_trainer_and_mel_tables_come_from_the_schema():
    """The trainer's digest leaves out the same keys as before (so checkpoints still resume), and the mel
    settings recorded in dataset.json are the same keys in the same order."""
    from zslkit.data.prepare import MEL_SETTINGS
    from zslkit.model.trainer import FEED_KEYS
    from zslkit.transfer import MEL_KEYS
    assert FEED_KEYS == config.keys("train", neutral=True) == OLD_FEED_KEYS
    assert MEL_SETTINGS == MEL_KEYS == config.keys("audio", recorded_in="mels") == OLD_MEL_SETTINGS


def test_checkpoint_keys_are_those_the_checkpoint_check_compares():
    """Each key the schema records in checkpoints is one :func:`arch_differences` compares, and no other."""
    from zslkit.model.checkpoints import arch_differences
    recorded = {n for n, f in config.fields().items() if f.recorded_in == "checkpoint"}
    P = config.resolve({}, root=".")
    arch = {"encoder": "shortchunk", "encoder_params": {"width": 8}, "segment_frames": 1, "hidden": 7,
            "sideinfo": "random"}
    assert set(arch_differences(arch, P, sideinfo="glove")) == recorded
    same = {**arch, "encoder": P["model"]["encoder"], "encoder_params": {"wrong": 1}}
    assert set(arch_differences(same, P, sideinfo="glove")) == recorded - {"model.encoder"} | {"model.paper"}


def test_a_parameter_added_to_an_encoder_since_counts_at_its_default():
    """A checkpoint or a run folder written before ``model.paper_bn.input_norm`` existed ran with its default:
    neither the checkpoint check nor ``--only`` refuses it; a real change still shows."""
    from zslkit.model.checkpoints import arch_differences
    from zslkit.run.runner import changed_parameters
    P = config.resolve({"model": {"encoder": "paper_bn", "paper_bn": {"channels": 256}}}, root=".")
    arch = {"encoder": "paper_bn", "encoder_params": {"channels": 256}, "segment_frames": P["audio"]["segment_frames"],
            "hidden": P["heads"]["learned"]["hidden"], "sideinfo": "glove"}
    assert arch_differences(arch, P, sideinfo="glove") == {}
    old = {"model": {**P["model"], "paper_bn": {"channels": 256}}}
    assert changed_parameters(old, {"model": P["model"]}) == {}
    segment = config.resolve({"model": {"encoder": "paper_bn", "paper_bn": {"input_norm": "segment"}}}, root=".")
    assert set(arch_differences(arch, segment, sideinfo="glove")) == {"model.paper_bn"}
    (key, (was, now, stage)), = changed_parameters(old, {"model": segment["model"]}).items()
    assert key == "model.paper_bn" and was == {"channels": 256, "input_norm": "none"} and now["input_norm"] == "segment"


def test_choice_lists_have_one_owner():
    from zslkit.evaluate import metrics
    from zslkit.model import encoders
    from zslkit.plan import TRAIN_SETTINGS
    S = config.schema()
    assert S["audio"]["layout"].choices is config.LAYOUTS and S["evaluate"]["backend"].choices is config.BACKENDS
    assert metrics.BACKENDS is config.BACKENDS
    assert S["train"]["device"].choices is S["evaluate"]["device"].choices is config.DEVICES
    assert S["train"]["setting"].choices == tuple(TRAIN_SETTINGS)
    assert S["model"]["paper_bn"]["input_norm"].choices is encoders.INPUT_NORMS


def test_describe_shows_what_depends_on_a_key():
    lines = {line.split()[0]: line for line in config.describe().splitlines() if line and not line[0].isspace()}
    assert lines["audio.segment_frames"].endswith("[read from stage 03; recorded in the checkpoint]")
    assert lines["train.nproc"].endswith("[neutral]") and lines["audio.n_fft"].endswith("[recorded in the mels]")
    assert "[" not in lines["train.lr"]
