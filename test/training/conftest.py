"""Shared fixtures of the training tests: a synthetic DTLD tree and its YOLO conversion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_AUTOINSTALL", "false")


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
