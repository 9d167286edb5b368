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
        ("execution.num_cpus=1", "execution.num_cpus: Input should be greater than or equal to 2"),
    ],
)
def test_invalid_config_names_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(SAMPLE, overrides=[override])
    assert str(error.value).startswith(message)


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
