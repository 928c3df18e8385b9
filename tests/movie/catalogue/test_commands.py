"""`manage.py train` and `manage.py evaluate` on a small imported catalogue."""

from __future__ import annotations

import json
import math
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from predictors import registry
from pytorch_models.train import main as train_main


def test_train_publishes_a_safetensors_version_with_metrics(catalogue, model_dir_of_this_test):
    out = StringIO()
    call_command("train", model="lightgcn", epochs=2, verbosity=0, stdout=out)

    version = registry.latest_version("lightgcn")
    folder = model_dir_of_this_test / "lightgcn" / version
    assert f"published lightgcn {version}" in out.getvalue()
    assert sorted(p.name for p in folder.iterdir()) == [
        "graph.safetensors", "item_embeddings.safetensors", "meta.json", "weights.safetensors"
    ]
    meta = json.loads((folder / "meta.json").read_text())
    assert 0 <= meta["metrics"]["recall@20"] <= 1
    assert not list((model_dir_of_this_test / "lightgcn").glob(".tmp-*"))


def test_train_missing_trains_only_the_models_without_a_version_untrained_first(catalogue,
                                                                                model_dir_of_this_test):
    for model in ("pinsage", "ngcf", "lightgcn", "sasrec"):
        call_command("train", model=model, epochs=1, verbosity=0, stdout=StringIO())
    before = {m: registry.latest_version(m) for m in ("pinsage", "ngcf", "lightgcn", "sasrec")}
    out = StringIO()

    call_command("train", missing=True, verbosity=0, stdout=out)

    published = [line.split()[1] for line in out.getvalue().splitlines() if line.startswith("published")]
    assert published == ["popular", "graphfilter"]
    assert {m: registry.latest_version(m) for m in before} == before
    again = StringIO()
    call_command("train", missing=True, verbosity=0, stdout=again)
    assert again.getvalue().strip() == "every model has a published version"


def test_evaluate_prints_a_row_per_model(catalogue, model_dir_of_this_test):
    for model in ("popular", "ngcf"):
        call_command("train", model=model, epochs=1, verbosity=0, stdout=StringIO())
    out = StringIO()

    call_command("evaluate", model=["popular", "ngcf"], stdout=out)

    rows = [line for line in out.getvalue().splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["model", "popular", "ngcf"]


def test_evaluate_untrained_and_train_without_ratings_fail_clearly(db, model_dir_of_this_test):
    with pytest.raises(CommandError, match="no ratings to train on"):
        call_command("train", model="pinsage", verbosity=0)
    with pytest.raises(CommandError, match="import a MovieLens release first|train it first"):
        call_command("evaluate", model=["pinsage"])


def test_evaluate_a_checkpoint_on_gowalla_files(tmp_path):
    """Popular on a hand-made Gowalla split: item popularity 0:3, 1:2, 2:1, 3:0."""
    data = tmp_path / "gowalla"
    data.mkdir()
    (data / "train.txt").write_text("0 0 1\n1 0 2\n2 0 1\n")
    (data / "test.txt").write_text("0 2\n1 1\n2 3\n")
    checkpoint = tmp_path / "popular"
    train_main(["--dataset", "gowalla", "--data-dir", str(data), "--model", "popular", "--no-progress",
                "--out", str(checkpoint)])
    out = StringIO()

    call_command("evaluate", checkpoint=str(checkpoint), dataset="gowalla", data_dir=str(data), k=2,
                 stdout=out)

    header, _, row = out.getvalue().splitlines()
    assert header.split("|")[2:7] == [" recall@2 ", " ndcg@2 ", " hit@2 ", " precision@2 ", " mrr@2 "]
    # Top 2 after masking: user 0 -> [2, 3] (hit at 1), user 1 -> [1, 3] (hit at 1),
    # user 2 -> [2, 3] (hit at 2: dcg 1/log2(3)).
    values = [float(cell) for cell in row.split("|")[2:7]]
    assert values == pytest.approx([1.0, (2 + 1 / math.log2(3)) / 3, 1.0, 0.5, 2.5 / 3], abs=1e-4)


def test_evaluate_a_checkpoint_needs_its_data_set(tmp_path):
    with pytest.raises(CommandError, match="needs --dataset and --data-dir"):
        call_command("evaluate", checkpoint=str(tmp_path))
    with pytest.raises(CommandError, match="meta.json"):
        call_command("evaluate", checkpoint=str(tmp_path), dataset="gowalla", data_dir=str(tmp_path))
