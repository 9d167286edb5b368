"""The typed, validated description of a run: the only place settings come from."""

from __future__ import annotations

import glob
import os
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Format = Literal["auto", "warc", "html", "pdf", "jsonl", "parquet"]


class ConfigError(ValueError):
    """A config problem, already phrased as one line that names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InputConfig(_Strict):
    paths: list[str] = Field(min_length=1)
    format: Format = "auto"
    max_record_bytes: int = Field(
        64 * 2**20, gt=0, description="a record larger than this is never held in memory; it lands in errors/"
    )


class OutputConfig(_Strict):
    path: str
    shard_rows: int = Field(100_000, gt=0, description="documents per Parquet shard before a new one starts")
    shard_bytes: int = Field(512 * 2**20, gt=0, description="uncompressed bytes per shard before a new one starts")
    row_group_rows: int = Field(2_000, gt=0, description="rows per Parquet row group (bounds reader memory)")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


class ExtractConfig(_Strict):
    engine: Literal["trafilatura"] = "trafilatura"
    timeout_s: float = Field(10.0, gt=0, description="per-document limit; a document over it lands in errors/")
    max_html_bytes: int = Field(5_000_000, gt=0)
    max_pdf_bytes: int = Field(100_000_000, gt=0)
    favor_precision: bool = True
    include_comments: bool = False
    include_tables: bool = True


class StagesConfig(_Strict):
    extract: ExtractConfig | None = None


class ExecutionConfig(_Strict):
    address: str | None = Field(None, description="Ray cluster address; None starts an embedded local Ray")
    num_cpus: int | None = Field(
        None, ge=2, description="embedded Ray only: task slots, one of them kept for the split; None = usable cores + 1"
    )
    batch_rows: int = Field(
        64, gt=0, description="documents per batch, from the readers through every stage (16 left 0.4 of 2 cores idle)"
    )
    progress: bool = True


class RunConfig(_Strict):
    input: InputConfig
    output: OutputConfig
    stages: StagesConfig = StagesConfig()
    execution: ExecutionConfig = ExecutionConfig()

    @field_validator("stages", mode="before")
    @classmethod
    def _empty_stage_means_defaults(cls, value: Any) -> Any:
        # `extract: {}` and `extract:` (None in YAML) both mean "run it with defaults".
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(StagesConfig.model_fields))
            if unknown:
                raise ValueError(
                    f"unknown stage {unknown[0]!r} (this version has: {', '.join(StagesConfig.model_fields)})"
                )
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


def _format_error(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{key}: {msg}"


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key.sub=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {e}") from None
    return key.split("."), value


def load_config(
    path: str | os.PathLike | None,
    *,
    inputs: list[str] | None = None,
    output: str | None = None,
    overrides: list[str] = (),
    address: str | None = None,
    data: dict | None = None,
) -> RunConfig:
    """Read YAML (safely), apply command-line overrides, validate. Raises ConfigError."""
    if data is None:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    if inputs:
        data.setdefault("input", {})["paths"] = list(inputs)
    if output:
        data.setdefault("output", {})["path"] = output
    if address:
        data.setdefault("execution", {})["address"] = address
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {k} is not a mapping")
        node[keys[-1]] = value
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None
    for i, p in enumerate(config.input.paths):
        if not _exists(p):
            raise ConfigError(f"input.paths[{i}]: no such file, folder or glob match: {p}")
    return config


def _exists(path: str) -> bool:
    if "://" in path:
        return True  # remote URIs are checked by the reader that opens them
    return os.path.lexists(path) or bool(glob.glob(path))
