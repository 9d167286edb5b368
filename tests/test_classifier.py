"""The educational-value classifier: labels, both scorers, model directories and their checksums,
`thresher train` / `evaluate`, and the classify stage, on a slice of the real labels
(data/labels/labels.jsonl.gz) and real page texts (tests/data/filter_corpus.jsonl.gz)."""

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from thresher.classifiers.fasttext_scorer import FastTextScorer
from thresher.classifiers.labels import LabelsError, read_labels, stratified_fraction, stratified_split
from thresher.classifiers.linear_scorer import LinearScorer
from thresher.classifiers.metrics import evaluate
from thresher.classifiers.model_dir import CARD, SHIPPED_MODEL, ModelDirError, load_model, read_card, save_model
from thresher.cli import main
from thresher.config import ClassifyConfig, ConfigError, load_config
from thresher.schema import KEPT, REJECTED, empty_row, rows_to_table

from conftest import ROOT, SAMPLES

LABELS = ROOT / "data" / "labels" / "labels.jsonl.gz"
# Small and quick: enough documents of every score for a model to rank better than chance.
FAST = {"epoch": 10, "quantize": False}


@pytest.fixture(scope="module")
def labels():
    return read_labels([LABELS])


@pytest.fixture(scope="module")
def positions(labels):
    """600 training and 200 held-out documents, stratified by score."""
    rest, test = stratified_split(labels.classes, labels.groups, 0.2, seed=1)
    return (stratified_fraction(rest, labels.classes, 600 / len(rest), seed=1),
            stratified_fraction(test, labels.classes, min(1.0, 200 / len(test)), seed=1))


@pytest.fixture(scope="module")
def split(labels, positions):
    return tuple(labels.subset(index) for index in positions)


@pytest.fixture(scope="module")
def labels_slice(tmp_path_factory, labels, positions):
    """The training slice as a labels file (extra columns too), for the commands."""
    path = tmp_path_factory.mktemp("labels") / "slice.jsonl"
    keys = ("text", "score", "group", "method")
    rows = [dict(zip(keys, (labels.texts[i], labels.scores[i], labels.groups[i], labels.methods[i])), licence="x")
            for i in positions[0]]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, split):
    """A fitted fastText and scikit-learn scorer, each saved to a model directory."""
    (texts, scores), _ = split
    made = {}
    for name, scorer in (("fasttext", FastTextScorer(**FAST)), ("sklearn", LinearScorer())):
        directory = tmp_path_factory.mktemp(name)
        made[name] = (scorer.fit(texts, scores), directory)
        save_model(scorer, directory, {"data": {"files": []}})
    return made


def test_labels_are_read_deduplicated_and_checked(tmp_path, labels):
    assert len(labels.texts) >= 1500 and set(labels.classes) <= set(range(6)) and len(set(labels.classes)) >= 4
    assert len(set(labels.texts)) == len(labels.texts)
    first = json.dumps({"text": labels.texts[0], "score": labels.scores[0]})
    copy = tmp_path / "copy.jsonl"
    copy.write_text(first + "\n" + first + "\n")
    again = read_labels([copy])
    assert len(again.texts) == 1 and again.files[0]["duplicates"] == 1
    for line, problem in (('{"text": "some words", "score": 7}', "`score`"), ('{"score": 3}', "`text`"), ("{not json", "not JSON")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(first + "\n" + line + "\n")
        with pytest.raises(LabelsError, match=f"bad.jsonl:2: .*{problem}"):
            read_labels([bad])


def test_split_keeps_groups_whole_and_classes_balanced_and_learning_curve_subsets_nest(labels):
    classes, groups = labels.classes, np.asarray(labels.groups, dtype=object)
    assert len(set(groups)) < len(groups)  # the labels have multi-document groups to keep together
    train, test = stratified_split(classes, labels.groups, 0.2, seed=0)
    assert not set(train) & set(test) and len(train) + len(test) == len(classes)
    assert not set(groups[train]) & set(groups[test])
    for c in np.unique(classes):
        share = (classes[test] == c).sum() / (classes == c).sum()
        assert (classes == c).sum() < 20 or abs(share - 0.2) < 0.05, (c, share)
    quarter, half = (set(stratified_fraction(train, classes, f, seed=0)) for f in (0.25, 0.5))
    assert quarter < half < set(train) and abs(len(half) / len(train) - 0.5) < 0.02


@pytest.mark.parametrize("kind", ["fasttext", "sklearn"])
def test_scorer_ranks_held_out_documents_and_round_trips(kind, models, split):
    scorer, directory = models[kind]
    _, (texts, scores) = split
    predicted = scorer.predict(texts)
    assert predicted.shape == (len(texts),) and predicted.min() >= 0 and predicted.max() <= 5
    metrics = evaluate(scores, predicted)
    assert metrics["spearman"] > 0.3 and metrics["auc_at_3"] > 0.7, metrics  # far from chance (0 and 0.5)
    assert scorer.score(texts, scores) == pytest.approx(metrics["spearman"])
    loaded = load_model(directory)
    np.testing.assert_allclose(loaded.predict(texts), predicted, rtol=1e-6)
    assert loaded.get_params() == scorer.get_params()


def test_fasttext_training_is_reproducible_and_quantisation_shrinks_it(tmp_path, split):
    (texts, scores), _ = split
    files = []
    for name, params in (("a", FAST), ("b", FAST), ("q", {"epoch": 10, "cutoff": 1000})):
        directory = tmp_path / name
        directory.mkdir()
        files.append(directory / FastTextScorer(**params).fit(texts[:300], scores[:300]).save_weights(directory)[0])
    plain, again, quantized = files
    assert plain.read_bytes() == again.read_bytes()
    assert quantized.suffix == ".ftz" and quantized.stat().st_size < plain.stat().st_size / 4


def test_tampered_or_missing_weights_are_refused(tmp_path, models):
    for kind, (_, directory) in models.items():
        copy = tmp_path / kind
        copy.mkdir()
        for path in directory.iterdir():
            (copy / path.name).write_bytes(path.read_bytes())
        weights = next(name for name in read_card(copy)["files"])
        data = bytearray((copy / weights).read_bytes())
        data[len(data) // 2] ^= 1
        (copy / weights).write_bytes(bytes(data))
        with pytest.raises(ModelDirError, match="does not match the card"):
            load_model(copy)
        with pytest.raises(ValueError, match="does not match the card"):
            ClassifyConfig(model=str(copy))
        (copy / weights).unlink()
        with pytest.raises(ModelDirError, match="missing"):
            load_model(copy)
    with pytest.raises(ModelDirError, match="no card.json"):
        load_model(tmp_path)


def test_a_card_cannot_point_the_loader_at_an_unlisted_file(tmp_path, models):
    _, directory = models["fasttext"]  # unquantised: the card lists model.bin
    for path in directory.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "model.ftz").write_bytes((tmp_path / "model.bin").read_bytes())  # planted, hashed nowhere
    card = json.loads((tmp_path / CARD).read_text())
    card["params"]["quantize"] = True  # a quantised model loads model.ftz
    (tmp_path / CARD).write_text(json.dumps(card))
    with pytest.raises(ModelDirError, match="no SHA-256 for model.ftz"):
        load_model(tmp_path)


def test_a_config_naming_a_bad_model_is_a_config_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="stages.classify.model: .*no card.json"):
        load_config(None, data={"input": {"paths": [str(SAMPLES / "jsonl")]}, "output": {"path": str(tmp_path / "o")},
                                "stages": {"classify": {"model": str(tmp_path)}}})
    assert main(["run", "pipelines/configs/sample.yaml", "--output", str(tmp_path / "o"),
                 "--set", f"stages.classify.model={tmp_path}"]) == 2
    assert "stages.classify.model" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_train_writes_a_model_directory_and_evaluate_reads_it(tmp_path, labels_slice, split, capsys):
    out = tmp_path / "model"
    assert main(["train", "--data", str(labels_slice), "--out", str(out), "--kind", "sklearn",
                 "--param", "model=ridge", "--param", "features=tfidf"]) == 0
    card = json.loads((out / CARD).read_text())
    assert card["kind"] == "sklearn" and (card["params"]["model"], card["params"]["features"]) == ("ridge", "tfidf")
    assert card["data"]["files"][0]["rows"] == len(split[0][0]) == card["data"]["train"] + card["data"]["test"]
    assert [p["fraction"] for p in card["learning_curve"]] == [0.25, 0.5, 1.0]
    assert card["learning_curve"][-1]["spearman"] == card["metrics"]["spearman"]
    by_method = card["metrics_by_method"]
    assert len(by_method) >= 2 and sum(m["n"] for m in by_method.values()) == card["metrics"]["n"]
    assert {"numpy", "scikit-learn", "python"} <= set(card["versions"]) and card["command"].startswith("thresher train")
    for name in ("report.md", "learning_curve.png", "confusion_matrix.png", "scores.png", *card["files"]):
        assert (out / name).stat().st_size > 0
    assert "F1 at 3" in (out / "report.md").read_text()
    capsys.readouterr()

    _, (texts, scores) = split
    held_out = tmp_path / "held_out.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": texts, "score": scores, "other": ["x"] * len(texts)}), held_out)
    assert main(["evaluate", "--model", str(out), "--data", str(held_out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"n", "spearman", "mae", "f1_at_3", "auc_at_3"} <= set(result) and result["n"] == len(texts)
    assert result["spearman"] > 0.3

    assert main(["train", "--data", str(tmp_path / "none.jsonl"), "--out", str(out)]) == 2
    assert main(["train", "--data", str(labels_slice), "--out", str(tmp_path), "--kind", "sklearn"]) == 2  # not a model dir
    assert main(["train", "--data", str(labels_slice), "--out", str(out), "--param", "depth=3"]) == 2
    assert (out / CARD).read_text() == json.dumps(card, indent=2) + "\n"  # refused runs left it alone
    assert "exists and is not a model directory" in capsys.readouterr().err


def _batch(corpus, n=64):
    rows = [empty_row(id=str(i), source=d["source"], text=d["text"], status=KEPT) for i, d in enumerate(corpus[:n])]
    rows[0].update(status=REJECTED, stage="language", reason="language_de")
    return rows_to_table(rows)


@pytest.mark.parametrize("kind", ["fasttext", "sklearn"])
def test_classify_stage_scores_kept_documents_and_applies_min_score(kind, models, corpus):
    from thresher.classifiers.stage import EduClassifier

    scorer, directory = models[kind]
    batch = _batch(corpus)
    scored = EduClassifier(ClassifyConfig(model=str(directory)))(batch)
    scores = scored.column("edu_score").to_pylist()
    assert scores[0] is None and scored.column("status").to_pylist() == batch.column("status").to_pylist()
    np.testing.assert_allclose(scores[1:], scorer.predict(batch.column("text").to_pylist()[1:]), rtol=1e-6)
    assert scored.column("edu_int").to_pylist()[1:] == [int(round(min(5, max(0, s)))) for s in scores[1:]]

    threshold = float(np.median(scores[1:]))
    stage = pickle.loads(pickle.dumps(EduClassifier(ClassifyConfig(model=str(directory), min_score=threshold))))
    filtered = stage(batch).to_pylist()
    for row, score in zip(filtered[1:], scores[1:]):
        assert (row["status"], row["reason"]) == ((REJECTED, "low_edu_score") if score < threshold else (KEPT, None))
    assert filtered[0]["reason"] == "language_de"
    tagged = EduClassifier(ClassifyConfig(model=str(directory), min_score=threshold, mode="tag"))(batch).to_pylist()
    assert all(row["status"] == KEPT for row in tagged[1:])
    assert [row["flags"] == ["classify:low_edu_score"] for row in tagged[1:]] == [s < threshold for s in scores[1:]]


def test_the_shipped_model_is_intact_and_scores_documents(labels, corpus):
    card = read_card(SHIPPED_MODEL)
    assert card["kind"] == "fasttext" and all(name.endswith(".ftz") for name in card["files"])
    assert sum((SHIPPED_MODEL / name).stat().st_size for name in card["files"]) < 10 * 2**20
    assert card["data"]["files"][0]["sha256"] == labels.files[0]["sha256"]  # trained on the labels in the repo
    scores = load_model(SHIPPED_MODEL).predict([d["text"] for d in corpus[:100]])
    assert scores.min() >= 0 and scores.max() <= 5 and scores.std() > 0.1


@pytest.mark.slow
def test_classify_runs_in_the_pipeline_on_ray(tmp_path, ray_local):
    import pyarrow.parquet as pq

    from thresher.pipelines.run import run

    min_score = 1.5
    config = load_config("pipelines/configs/sample.yaml", inputs=[str(SAMPLES / "html")], output=str(tmp_path),
                         overrides=["execution.progress=false", "stages.classify={}", f"stages.classify.min_score={min_score}",
                                    *(f"stages.{s}=false" for s in ("url", "quality", "pii", "dedup"))])
    manifest = run(config)
    kept = pq.read_table(tmp_path / "documents").to_pylist()
    rejected = pq.read_table(tmp_path / "rejected").to_pylist()
    low = [r for r in rejected if r["reason"] == "low_edu_score"]
    assert kept and low and manifest["counts"]["rejected"]["low_edu_score"] == len(low)
    assert all(d["edu_score"] >= min_score and d["edu_int"] == round(d["edu_score"]) for d in kept)
    assert all(r["edu_score"] < min_score and r["stage"] == "classify" for r in low)
    assert all(r["edu_score"] is None for r in rejected if r["stage"] != "classify")  # never reached the model
