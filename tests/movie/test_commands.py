"""`manage.py train` and `manage.py evaluate` on a small imported catalogue."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from predictors import registry


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
