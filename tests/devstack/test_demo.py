"""What the first `make demo` trains before the site opens, and what after."""

from __future__ import annotations

import pytest

from devstack import app
from devstack.__main__ import models_without_version
from devstack.process import StackError
from pytorch_models.models.names import GRADIENT_TRAINED_MODELS, SERVED_MODELS


def test_a_model_counts_as_published_only_with_a_finished_version_folder(tmp_path):
    (tmp_path / "popular" / "20260101T000000000000Z").mkdir(parents=True)
    (tmp_path / "lightgcn" / ".tmp-20260101T000000000000Z").mkdir(parents=True)  # still being written
    (tmp_path / "ngcf").mkdir()

    missing = models_without_version(tmp_path)

    assert missing == [m for m in SERVED_MODELS if m != "popular"]
    # the graph filter is fitted before the site opens
    assert [m for m in missing if m not in GRADIENT_TRAINED_MODELS] == ["graphfilter"]


def test_on_an_empty_folder_popular_comes_first_and_the_gnns_are_left_for_after(tmp_path):
    missing = models_without_version(tmp_path / "models")

    assert missing[0] == "popular" and sorted(missing) == sorted(SERVED_MODELS)
    assert [m for m in missing if m not in GRADIENT_TRAINED_MODELS] == ["popular", "graphfilter"]
    assert {m for m in missing if m in GRADIENT_TRAINED_MODELS} == {"pinsage", "ngcf", "lightgcn", "sasrec"}


def test_commands_side_by_side_all_run_to_the_end_and_a_failure_names_its_command(tmp_path):
    with pytest.raises(StackError, match=r"manage.py nosuchcommand failed \(exit 1\)"):
        app.manage_together(app.app_env({}), {"fine": ("check",), "broken": ("nosuchcommand",)},
                            log_dir=tmp_path)

    assert "System check identified no issues" in (tmp_path / "fine.log").read_text()
    assert "Unknown command: 'nosuchcommand'" in (tmp_path / "broken.log").read_text()
