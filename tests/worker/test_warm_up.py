"""A render process's warm-up: a model that cannot load is skipped, and the models after it still warm up."""

import logging
from pathlib import Path

import pytest

from core.settings import Settings
from worker.placement import warm_up


def test_the_warm_up_goes_on_past_models_that_cannot_load(own_models: Path, caplog: pytest.LogCaptureFixture) -> None:
    from core.engine import models

    settings = Settings(models_file=own_models, models=["wrong_architecture", "truncated", "my_resnet"])
    with caplog.at_level(logging.WARNING, logger="worker.placement"):
        assert warm_up(settings, "cpu") == ["my_resnet"]
    skipped = [record.getMessage() for record in caplog.records]
    assert len(skipped) == 2
    assert skipped[0].startswith("warm-up skips wrong_architecture: weights for wrong_architecture at ")
    assert skipped[1].startswith("warm-up skips truncated: weights for truncated at ")
    assert models._load_model.cache_info().currsize == 1  # my_resnet's network: loaded, kept for its jobs
