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


def test_dump_round_trips(tmp_path):
    import yaml
    P = config.resolve({"split": {"seed": 3}}, root=tmp_path)
    assert config.resolve(yaml.safe_load(config.dump(P)), root=tmp_path) == P
