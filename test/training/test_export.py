"""`python -m training export` (training/export.py): format checks, provenance, exports the node loads."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from training import export


def test_formats_alias_dedupe_and_order():
    assert export.normalise_formats(["ONNX", "openvino", "onnx"], cuda=False) == ["onnx", "openvino"]
    assert export.normalise_formats(["tensorrt"], cuda=True) == ["engine"]


def test_tensorrt_refused_without_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        export.normalise_formats(["onnx", "engine"], cuda=False)


def test_unknown_format_named_in_error():
    with pytest.raises(ValueError, match="'tflite'"):
        export.normalise_formats(["tflite"], cuda=False)


def test_run_dir_and_provenance_lookup(tmp_path):
    weights = tmp_path / "run1" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    assert export.run_dir(weights) == (tmp_path / "run1").resolve()
    assert export.read_provenance(weights) == {}
    (tmp_path / "run1" / "provenance.yaml").write_text("teacher: t.pt\nepochs: 30\n")
    assert export.read_provenance(weights) == {"teacher": "t.pt", "epochs": 30}
    (tmp_path / "run1" / "provenance.json").write_text(json.dumps({"teacher": "l.pt"}))
    assert export.read_provenance(weights) == {"teacher": "l.pt"}  # json first


def test_provenance_must_be_a_mapping(tmp_path):
    weights = tmp_path / "weights" / "best.pt"
    weights.parent.mkdir()
    (tmp_path / "provenance.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="provenance.json"):
        export.read_provenance(weights)


def test_missing_weights_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--weights"):
        export.export_model(tmp_path / "nope.pt")


def test_cli_flags_and_defaults():
    parser = argparse.ArgumentParser()
    export.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--weights", "b.pt", "--formats", "onnx", "--imgsz", "320", "--half"])
    assert args.formats == ["onnx"] and args.imgsz == 320 and args.half and args.device == "cpu"
    assert args.func is export.main
    assert parser.parse_args(["export", "--weights", "b.pt"]).formats == ["onnx", "openvino"]


@pytest.mark.slow
def test_export_onnx_openvino_with_source_metadata_loads_in_detector_node(coupled_run, tmp_path):
    import numpy as np
    from ultralytics.nn.backends.base import BaseBackend

    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector

    weights = tmp_path / "n_from_l" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    shutil.copy(coupled_run / "weights" / "best.pt", weights)
    (weights.parent.parent / "provenance.json").write_text(json.dumps({"teacher": "runs/l/weights/best.pt"}))

    manifest = export.export_model(weights, formats=["onnx", "openvino"], imgsz=64)

    assert set(manifest["exports"]) == {"onnx", "openvino"}
    assert json.loads((weights.parent / "best_exports.json").read_text())["exports"] == manifest["exports"]
    for fmt, entry in manifest["exports"].items():
        path = weights.parent / entry["path"]
        assert entry["loaded"] and entry["names_match"] and entry["kd_source"], fmt
        meta = BaseBackend.read_metadata(path)
        source = json.loads(meta[export.METADATA_KEY])
        assert source["run"] == "n_from_l" and source["provenance"]["teacher"].endswith("best.pt")
        assert source["weights_sha256"] == export.sha256(weights)
        assert int(meta["stride"]) == 32 and "relevant" in str(meta["names"])
        det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=64))
        assert det.names == {0: "relevant", 1: "not_relevant"}
        assert isinstance(det.predict(np.zeros((48, 96, 3), np.uint8)), list)
