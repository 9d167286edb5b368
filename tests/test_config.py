import subprocess
import sys

import pytest

from thresher.config import ConfigError, load_config

SAMPLE = "pipelines/configs/sample.yaml"


def test_sample_config_is_valid():
    config = load_config(SAMPLE)
    assert config.output.path == "out/sample" and config.stages.extract is not None


def test_overrides_are_typed():
    config = load_config(SAMPLE, output="/tmp/x", overrides=["stages.extract.timeout_s=2.5", "execution.num_cpus=3"])
    assert config.stages.extract.timeout_s == 2.5 and config.execution.num_cpus == 3
    assert config.output.path == "/tmp/x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("stages.extract.timeoutt=3", "stages.extract.timeoutt: unknown key"),
        ("stages.extract.timeout_s=-1", "stages.extract.timeout_s: Input should be greater than 0"),
        ("stages.langauge={}", "stages: unknown stage 'langauge'"),
        ("input.format=docx", "input.format: Input should be"),
        ("input.paths=[does/not/exist]", "input.paths[0]: no such file"),
        ("execution.num_cpus=0", "execution.num_cpus: Input should be greater than or equal to 1"),
        ("stages.language.min_score=1.5", "stages.language.min_score: Input should be less than or equal to 1"),
        ("stages.quality.mode=drop", "stages.quality.mode: Input should be 'filter' or 'tag'"),
        ("stages.quality.gopher_repetition.top_n_grams={7: 0.1}", "stages.quality.gopher_repetition.top_n_grams: n=7 has no signal"),
        ("stages.url.list_files={colors: [a.txt]}", "stages.url.list_files.colors.[key]: Input should be"),
        ("stages.url.list_files={domains: [no/such/list.txt]}", "stages.url.list_files: no such file: no/such/list.txt"),
    ],
)
def test_invalid_config_names_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(SAMPLE, overrides=[override])
    assert str(error.value).startswith(message)


def test_stages_switch_off_and_filters_keep_published_defaults():
    config = load_config(SAMPLE, overrides=["stages.quality=false", "stages.language.keep=[en, de]",
                                            "stages.url.mode=tag"])
    assert config.stages.quality is None and config.stages.language.keep == ["en", "de"]
    assert config.stages.url.mode == "tag" and config.stages.extract is not None
    defaults = load_config(SAMPLE).stages.quality
    assert defaults.gopher_quality.min_doc_words == 50 and defaults.c4.filter_no_terminal_punct is False
    assert defaults.fineweb.line_punct_thr == 0.12 and defaults.gopher_repetition.dup_n_grams[10] == 0.10


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("input: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)


def test_cli_exits_2_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "thresher.cli", "run", SAMPLE, "--output", str(out), "--set", "stages.extract.engine=lynx"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "stages.extract.engine" in result.stderr
    assert not out.exists()
