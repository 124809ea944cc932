"""Shared fixtures of the training tests: a synthetic DTLD tree and its YOLO conversion, the tiny coloured-box
dataset and a one-epoch coupled-head run trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from test.model_factory import write_tiny_yolo_dataset
from test.training.heads_fixtures import COUPLED_N, train_tiny


@pytest.fixture(scope="session")
def synthetic_dtld(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic DTLD tree (3 sequences x 2 frames, 2048x1024, v2.0 JSON + v1.0 YAML).

    Returns the :class:`training.data.synth.SynthDataset` (``.root``, ``.v2``/``.v1`` label files by
    ``all``/``train``/``test``, ``.frames`` ground truth, ``.ground_truth()``). Treat it as read-only.
    """
    from training.data.synth import make_synthetic_dtld

    return make_synthetic_dtld(tmp_path_factory.mktemp("dtld"), n_sequences=3, frames_per_sequence=2, seed=7)


@pytest.fixture(scope="session")
def yolo_dataset(synthetic_dtld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The YOLO conversion of ``synthetic_dtld`` (train = DTLD_train.json, test = DTLD_test.json).

    Returns the path of its ``data.yaml`` (``val`` points at the test split). Treat it as read-only.
    """
    from training.data.dtld import ConvertOptions, convert_dtld

    out = tmp_path_factory.mktemp("yolo") / "dataset"
    opts = ConvertOptions(train=[synthetic_dtld.v2["train"]], test=[synthetic_dtld.v2["test"]])
    convert_dtld(synthetic_dtld.root, out, opts, workers=1, progress=False)
    return out / "data.yaml"


@pytest.fixture(scope="session")
def tiny_yolo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of a 4-train / 2-val tiny coloured-box dataset at 64x64 (test/model_factory.py). Read-only."""
    return write_tiny_yolo_dataset(tmp_path_factory.mktemp("tiny_yolo"), n_train=4, n_val=2)


@pytest.fixture(scope="session")
def coupled_run(tiny_yolo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a 1-epoch coupled-head YOLOv5n training on ``tiny_yolo_data`` (holds weights/best.pt)."""
    return train_tiny(COUPLED_N, tiny_yolo_data, tmp_path_factory.mktemp("tiny_runs"), "coupled")


@pytest.fixture(scope="session")
def state_yolo_dataset(synthetic_dtld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``synthetic_dtld`` converted with ``--classes relevance_state``; the path of its ``data.yaml``. Read-only."""
    from training.data.dtld import ConvertOptions, convert_dtld

    out = tmp_path_factory.mktemp("yolo_state") / "dataset"
    opts = ConvertOptions(train=[synthetic_dtld.v2["train"]], test=[synthetic_dtld.v2["test"]],
                          classes="relevance_state")
    convert_dtld(synthetic_dtld.root, out, opts, workers=1, progress=False)
    return out / "data.yaml"
