"""The typed, validated description of a run: the only place settings come from."""

from __future__ import annotations

import glob
import os
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    unit_bytes: int | None = Field(
        None, gt=0, description="input bytes per work item (byte ranges of large WARCs, small files packed); "
        "None: 1/64 of the input, between 1 and 64 MB"
    )


class OutputConfig(_Strict):
    path: str = Field(description="a folder, or an fsspec URI (s3://bucket/prefix, memory://...)")
    local_dir: str | None = Field(
        None, description="a URI output is built here, then uploaded (and its work journal kept here); "
        "None: ~/.cache/thresher/outputs/<hash of the URI>"
    )
    shard_rows: int = Field(100_000, gt=0, description="documents per Parquet shard before a new one starts")
    shard_bytes: int = Field(512 * 2**20, gt=0, description="uncompressed bytes per shard before a new one starts")
    row_group_rows: int = Field(2_000, gt=0, description="rows per Parquet row group (bounds reader memory)")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    @field_validator("path")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if "://" in value:
            import fsspec

            protocol = value.split("://", 1)[0]
            try:
                fsspec.get_filesystem_class(protocol)
            except (ValueError, ImportError) as e:
                raise ValueError(f"cannot write to {protocol}:// here: {e}") from None
        return value


class CascadeConfig(_Strict):
    """`engine: cascade`: a cheap pass (resiliparse's text, the language and classify stages' own
    models) drops the documents that cannot survive the later stages, with these margins of
    safety; trafilatura extracts the rest, and the later stages decide on its text. Each check
    runs only when its stage is on in filter mode; set a check to null (curly_bracket: false) to
    switch it off. Defaults from bench/cascade.py (5,000 real pages): recall of the trafilatura
    pipeline's kept documents 0.986 without classify (46% of pages reach trafilatura), 0.980 with
    classify.min_score 3 (13.5%)."""

    language_margin: float | None = Field(
        0.3, ge=0, le=1, description="drop when every kept language scores below language.min_score minus this"
    )
    min_words_fraction: float | None = Field(
        0.5, ge=0, le=1, description="drop when the cheap text has fewer words than this fraction of "
        "quality.gopher_quality.min_doc_words"
    )
    edu_margin: float | None = Field(
        0.5, ge=0, le=5, description="with classify.min_score set: drop when the cheap text scores below min_score minus this"
    )
    curly_bracket: bool = Field(
        True, description="with quality.c4.filter_curly_bracket: drop when a line C4 keeps in the cheap text holds a "
        "curly bracket, as C4 drops trafilatura's text (on 5,000 real pages trafilatura's text lacked the bracket "
        "for 2 of the 596 pages whose cheap text had one)"
    )


class ExtractConfig(_Strict):
    engine: Literal["trafilatura", "resiliparse", "cascade"] = Field(
        "trafilatura", description="trafilatura: FineWeb's extractor; resiliparse: ~15x faster, less precise; "
        "cascade: resiliparse decides what cannot survive, trafilatura extracts the rest"
    )
    cascade: CascadeConfig = CascadeConfig()
    timeout_s: float = Field(10.0, gt=0, description="per-document limit; a document over it lands in errors/")
    max_html_bytes: int = Field(5_000_000, gt=0)
    max_pdf_bytes: int = Field(100_000_000, gt=0)
    favor_precision: bool = True
    with_metadata: bool = Field(True, description="title and date by trafilatura's metadata functions, searched "
                                "after the filters for the pages they kept (stage `metadata`); false leaves them "
                                "null, as FineWeb keeps neither")
    include_comments: bool = False
    include_tables: bool = True


Mode = Literal["filter", "tag"]
_MODE = Field("filter", description="filter: drop documents; tag: drop nothing, record the verdict in `flags`")


class UrlConfig(_Strict):
    """datatrove's URLFilter: its integrated block lists plus the user's own."""

    mode: Mode = _MODE
    use_integrated_lists: bool = True
    extra_domains: list[str] = []
    extra_urls: list[str] = []
    banned_words: list[str] = []
    banned_subwords: list[str] = []
    soft_banned_words: list[str] = []
    soft_word_threshold: int = Field(2, gt=0)
    list_files: dict[Literal["domains", "urls", "banned_words", "banned_subwords", "soft_banned_words"], list[str]] = Field(
        {}, description="files of one entry per line (# comments), added to the list of that name"
    )

    @field_validator("list_files")
    @classmethod
    def _files_exist(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        missing = [p for paths in value.values() for p in paths if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"no such file: {missing[0]}")
        return value


class LanguageConfig(_Strict):
    mode: Mode = _MODE
    keep: list[str] | None = Field(["en"], description="ISO 639-1 codes; null keeps every language (label only)")
    min_score: float = Field(0.65, ge=0, le=1, description="FineWeb's threshold for the top language")


class GopherRepetitionConfig(_Strict):
    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_grams: dict[int, float] = {2: 0.2, 3: 0.18, 4: 0.16}
    dup_n_grams: dict[int, float] = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}

    @field_validator("top_n_grams", "dup_n_grams")
    @classmethod
    def _known_n(cls, value: dict[int, float], info) -> dict[int, float]:
        allowed = range(2, 5) if info.field_name == "top_n_grams" else range(5, 11)
        bad = [n for n in value if n not in allowed]
        if bad:
            raise ValueError(f"n={bad[0]} has no signal; allowed: {allowed.start}..{allowed.stop - 1}")
        return value


class GopherQualityConfig(_Strict):
    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    max_non_alpha_words_ratio: float | None = Field(0.8, description="datatrove's name: the minimum share of words with a letter")
    alpha_ratio_of: Literal["tokens", "content_words"] = Field(
        "tokens", description="tokens: datatrove's rule, where each punctuation mark counts as a word without a letter; "
        "content_words: punctuation left out, as Gopher's 'words' (keeps 9 more of 83 English news articles)"
    )
    min_stop_words: int | None = 2


class C4Config(_Strict):
    """C4's rules with FineWeb's settings (no terminal-punctuation line rule). In filter mode the lines it
    removes are removed from a kept document's text, as in FineWeb; tag mode changes no text."""

    filter_no_terminal_punct: bool = False
    min_num_sentences: int = Field(5, description="-1 disables")
    min_words_per_line: int = Field(3, description="-1 disables")
    max_word_length: int = Field(1000, description="-1 disables")
    remove_citations: bool = True
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True


class FineWebQualityConfig(_Strict):
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False
    short_line_thr: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3


class QualityConfig(_Strict):
    """FineWeb's heuristic filters in FineWeb's order; set one to null to switch it off."""

    mode: Mode = _MODE
    gopher_repetition: GopherRepetitionConfig | None = GopherRepetitionConfig()
    gopher_quality: GopherQualityConfig | None = GopherQualityConfig()
    c4: C4Config | None = C4Config()
    fineweb: FineWebQualityConfig | None = FineWebQualityConfig()


class PiiConfig(_Strict):
    emails: bool = True
    ips: bool = True
    only_public_ips: bool = Field(True, description="private, loopback and reserved addresses are not PII")
    email_replacement: str = "email@example.com"
    ip_replacement: str = "22.214.171.124"


class MinHashConfig(_Strict):
    """Near duplicates: MinHash over word n-grams, LSH in bands x rows. Set `bands` and `rows`, or
    they are derived from `threshold` (0.8 if unset) as datasketch does for `num_perm`
    permutations, except for the defaults: 112 permutations and no threshold give FineWeb's 14 x 8."""

    threshold: float | None = Field(None, gt=0, lt=1, description="Jaccard similarity the LSH bands aim at")
    num_perm: int = Field(112, gt=0, le=1024)
    bands: int | None = Field(None, gt=0)
    rows: int | None = Field(None, gt=0)
    ngram: int = Field(5, gt=0, description="words per shingle")
    seed: int = 1
    verify: bool = Field(False, description="keep a candidate pair only if its estimated Jaccard >= threshold (0.8 if unset)")

    @model_validator(mode="after")
    def _bands_fit(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands and rows go together: set both or neither")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} is more than num_perm={self.num_perm}")
        return self

    @property
    def jaccard(self) -> float:
        """The similarity aimed at: the LSH bands' (when derived) and verify's."""
        return 0.8 if self.threshold is None else self.threshold

    def lsh(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.rows
        if self.threshold is None and self.num_perm == 112:
            return 14, 8
        from thresher.filters.minhash import lsh_params

        return lsh_params(self.jaccard, self.num_perm)


class DedupConfig(_Strict):
    exact: bool = Field(True, description="identical normalised text")
    minhash: MinHashConfig | None = MinHashConfig()
    against: list[str] = Field([], description="earlier output folders: documents duplicating theirs are dropped")


def _shipped_edu_model() -> str:
    from thresher.classifiers.model_dir import SHIPPED_MODEL

    return str(SHIPPED_MODEL)


class ClassifyConfig(_Strict):
    """The educational-value model: `edu_score` (0-5) and `edu_int` for every kept document."""

    mode: Mode = _MODE
    model: str = Field(default_factory=_shipped_edu_model, validate_default=True,
                       description="a model directory made by `thresher train`; default: the shipped data/models/edu")
    min_score: float | None = Field(None, ge=0, le=5, description="below it a document is dropped (tag mode: flagged); null: score only")

    @field_validator("model")
    @classmethod
    def _model_intact(cls, value: str) -> str:
        from thresher.classifiers.model_dir import ModelDirError, read_card

        try:
            read_card(value)  # every weight file against the card's SHA-256: a bad model fails here, not in a worker
        except ModelDirError as e:
            raise ValueError(str(e)) from None
        return value


class BenchmarkConfig(_Strict):
    """A benchmark set: JSONL (plain, .gz, .zst) or Parquet, one item per row."""

    path: str
    name: str | None = Field(None, description="how the manifest and rejected rows name it; default: the file name without suffixes")
    fields: list[str] | None = Field(None, min_length=1, description="the item's text fields, each required in every row; "
                                     "default: those of question, answer, code that the first row has")
    id: str | None = Field(None, description="the column naming an item; default: its row number")


class DecontaminateConfig(_Strict):
    """Documents sharing word n-grams with a benchmark item go to rejected/ as `contaminated`."""

    mode: Mode = _MODE
    benchmarks: list[BenchmarkConfig] = Field(min_length=1)
    ngram: int = Field(13, ge=3, description="words per n-gram (GPT-3 and Phi-4 used 13; Phi-4 also 7)")
    min_matches: int = Field(1, ge=1, description="distinct n-grams a document must share with one item to be contaminated")

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _path_means_defaults(cls, value: Any) -> Any:
        return [{"path": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _benchmarks_readable(self):
        from thresher.filters.decontaminate import BenchmarkError, read_benchmarks

        try:
            read_benchmarks(self.benchmarks)  # a missing file or field fails here, not in a worker
        except BenchmarkError as e:
            raise ValueError(str(e)) from None
        return self


class TokensConfig(_Strict):
    """`n_tokens` per document with a real tokenizer (shipped in the bpe-openai wheel, offline)."""

    encoding: Literal["cl100k_base", "o200k_base"] = "cl100k_base"


class StagesConfig(_Strict):
    """Stages run in this order; a stage left out is skipped, except tokens, a count that drops
    nothing (about 1.4% of extraction's time), on unless set to false."""

    url: UrlConfig | None = None
    extract: ExtractConfig | None = None
    language: LanguageConfig | None = None
    quality: QualityConfig | None = None
    pii: PiiConfig | None = None
    decontaminate: DecontaminateConfig | None = None
    dedup: DedupConfig | None = None
    classify: ClassifyConfig | None = None
    tokens: TokensConfig | None = TokensConfig()


class ExecutionConfig(_Strict):
    address: str | None = Field(None, description="Ray cluster address; None starts an embedded local Ray")
    num_cpus: int | None = Field(
        None, ge=1, description="embedded Ray only: CPUs (one stage actor each); None = the cores this process may use"
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
        # `extract: {}` and `extract:` (None in YAML) both mean "run it with defaults"; `false`
        # switches a stage off (so `--set stages.quality=false` can undo a config's stage).
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(StagesConfig.model_fields))
            if unknown:
                raise ValueError(
                    f"unknown stage {unknown[0]!r} (this version has: {', '.join(StagesConfig.model_fields)})"
                )
            return {k: (None if v is False else {} if v is None else v) for k, v in value.items()}
        return value


def format_error(err: ValidationError) -> str:
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


def read_yaml(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None


def apply_overrides(data: dict, overrides: list[str]) -> None:
    """``--set key.sub=value`` items, applied in place."""
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {k} is not a mapping")
        node[keys[-1]] = value


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
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    if inputs:
        data.setdefault("input", {})["paths"] = list(inputs)
    if output:
        data.setdefault("output", {})["path"] = output
    if address:
        data.setdefault("execution", {})["address"] = address
    apply_overrides(data, overrides)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_error(e)) from None
    if config.stages.dedup:
        _check_releases(config.stages.dedup)
    for i, p in enumerate(config.input.paths):
        if not _exists(p):
            raise ConfigError(f"input.paths[{i}]: no such file, folder or glob match: {p}")
    return config


def _check_releases(dedup: DedupConfig) -> None:
    """An earlier output to dedup against must have its index, made with the same key settings."""
    import json

    from thresher.pipelines.dedup import index_settings

    wanted = index_settings(dedup)
    for i, prior in enumerate(dedup.against):
        key = f"stages.dedup.against[{i}]"
        try:
            with open(os.path.join(prior, "manifest.json"), encoding="utf-8") as f:
                made = json.load(f).get("dedup", {}).get("index")
        except (OSError, ValueError) as e:
            raise ConfigError(f"{key}: {prior} is not a complete thresher output ({e})") from None
        if made is None or not os.path.exists(os.path.join(prior, "dedup", "ids.parquet")):
            raise ConfigError(f"{key}: {prior} was made without the dedup stage: it has no index to dedup against")
        if made != wanted:
            raise ConfigError(f"{key}: {prior} was deduplicated with other key settings ({made}); this run uses {wanted}")


def _exists(path: str) -> bool:
    if "://" in path:
        return True  # remote URIs are checked by the reader that opens them
    return os.path.lexists(path) or bool(glob.glob(path))
