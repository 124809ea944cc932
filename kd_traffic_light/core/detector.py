"""The detector core: load a model once, predict on BGR frames, return :class:`Detection` lists.

Exported models run without torch or ultralytics: ``.onnx`` on ONNX Runtime, ``*_openvino_model/`` on
OpenVINO, ``.engine`` on TensorRT, each with the shared letterbox / decode / NMS code
(:class:`~kd_traffic_light.core.pipeline.ExportedModel`). ``.pt`` checkpoints run through ultralytics,
which is imported only then. Boxes come back in original-image pixels.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from kd_traffic_light.core.backends import BackendError, model_kind, open_runtime
from kd_traffic_light.core.classes import class_names, scheme_of
from kd_traffic_light.core.config import DetectorConfig
from kd_traffic_light.core.postprocess import Boxes
from kd_traffic_light.core.state_classifier import StateClassifier, StateModelError, fold_classes
from kd_traffic_light.core.types import Detection

LOG = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pt", ".onnx", ".engine", "_openvino_model")


class ModelLoadError(RuntimeError):
    """The model file is missing, of an unknown kind, or cannot be loaded; the message names the path."""


def check_model_path(path: str) -> Path:
    """Return ``path`` as a Path if it names an existing model of a supported kind, else raise.

    Raises:
        ModelLoadError: naming the path and what was expected.
    """
    p = Path(os.path.expanduser(path))
    if not p.exists():
        raise ModelLoadError(f"model '{path}' does not exist (parameter 'model')")
    if model_kind(p) is None:
        raise ModelLoadError(
            f"model '{path}' is not a supported model: expected a .pt, .onnx, .engine file or an "
            "OpenVINO '*_openvino_model' directory (parameter 'model')"
        )
    return p


def load_model(config: DetectorConfig):
    """Load ``config.model`` in the runtime its kind needs (see the module docstring).

    Raises:
        ModelLoadError: the file is missing, of an unknown kind, its runtime is absent, or it cannot load.
    """
    path = check_model_path(config.model)  # fail before any slow import when the file is missing
    kind = model_kind(path)
    try:
        if kind == "pt":
            from kd_traffic_light.core.backends.ultralytics_backend import UltralyticsModel

            return UltralyticsModel(str(path), config.device, config.half, config.threads)
        from kd_traffic_light.core.pipeline import ExportedModel

        return ExportedModel(open_runtime(path, kind, config.device, config.half, config.threads))
    except ModuleNotFoundError as exc:
        raise ModelLoadError(f"cannot load model '{config.model}': it needs the '{exc.name}' package, which is "
                             "not installed here") from exc
    except BackendError as exc:
        raise ModelLoadError(f"cannot load model '{config.model}': {exc}") from exc
    except Exception as exc:  # ultralytics raises many kinds here; name the file in one error
        raise ModelLoadError(f"cannot load model '{config.model}': {type(exc).__name__}: {exc}") from exc


def load_state_model(config: DetectorConfig, names: dict[int, str]) -> StateClassifier:
    """Load ``config.state_model`` for a detector of ``names``.

    Raises:
        ModelLoadError: the detector is not a two-class ``relevance`` model, or the classifier cannot load.
    """
    if scheme_of(names) != "relevance":
        raise ModelLoadError(f"parameter 'state_model' reads the state of a two-class relevance model's boxes, but "
                             f"model '{config.model}' has classes {list(names.values())}; expected "
                             f"{list(class_names('relevance').values())}")
    try:
        return StateClassifier(config.state_model, config.threads)
    except StateModelError as exc:
        raise ModelLoadError(str(exc)) from exc


class TrafficLightDetector:
    """Traffic-light detector around one model (exported or ``.pt``).

    Example:
        >>> det = TrafficLightDetector(DetectorConfig(model="student.onnx", imgsz=640))
        >>> detections = det.predict(bgr_frame)  # list[Detection] in frame pixels
    """

    def __init__(self, config: DetectorConfig) -> None:
        """Load the model named by ``config.model``.

        Raises:
            ModelLoadError: the file is missing or cannot be loaded (message names the path).
        """
        self.config = config
        self.model = load_model(config)
        self.backend: str = self.model.name
        self.device: str = self.model.device
        self.half: bool = bool(getattr(self.model, "half", False))
        self.device_warning: str | None = "; ".join(self.model.warnings) or None
        if self.device_warning:
            LOG.warning(self.device_warning)
        self.state_reader: StateClassifier | None = None
        self._folded_names: dict[int, str] | None = None
        if config.state_model:
            self.state_reader = load_state_model(config, self.model.names)
            self._folded_names = class_names("relevance_state")

    @property
    def names(self) -> dict[int, str]:
        """Class index -> name, from the model (the export's metadata for exported models).

        With a state classifier, the ``relevance_state`` names its boxes then carry.
        """
        return self._folded_names or self.model.names

    @property
    def last_inference_ms(self) -> float:
        """Time of the network alone in the last predict (ms)."""
        return self.model.last_inference_ms

    def warmup(self, shape: tuple[int, int] = (1024, 2048)) -> float:
        """Run one prediction on a blank frame (allocates, compiles lazily built kernels); returns its seconds.

        Raises:
            ModelLoadError: the model cannot run (naming the file).
        """
        t0 = time.perf_counter()
        try:
            self.predict(np.zeros((*shape, 3), dtype=np.uint8))
        except Exception as exc:
            raise ModelLoadError(f"cannot run model '{self.config.model}': {type(exc).__name__}: {exc}") from exc
        return time.perf_counter() - t0

    def predict_boxes(self, bgr: np.ndarray) -> Boxes:
        """Detect on one BGR uint8 frame (H, W, 3); arrays in frame pixels, highest score first."""
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 image of shape (H, W, 3), got {bgr.dtype} {bgr.shape}")
        cfg = self.config
        boxes = self.model.detect(bgr, cfg.imgsz, cfg.conf, cfg.iou, cfg.max_det, cfg.agnostic_nms)
        if self.state_reader is None or not len(boxes):
            return boxes
        states, _ = self.state_reader.classify(bgr, boxes.xyxy, cfg.state_green_min_prob, cfg.state_edge_px)
        return Boxes(boxes.xyxy, boxes.scores, fold_classes(boxes.classes, states))

    def predict(self, bgr: np.ndarray) -> list[Detection]:
        """Detect traffic lights on one BGR uint8 frame (H, W, 3).

        Returns:
            Detections in the frame's own pixel coordinates, highest score first.
        """
        return to_detections(self.predict_boxes(bgr), self.names)


def to_detections(boxes: Boxes, names: dict[int, str]) -> list[Detection]:
    """Arrays -> :class:`Detection` list, highest score first (stable for equal scores)."""
    if len(boxes) == 0:
        return []
    xyxy = boxes.xyxy.astype(float)
    order = np.argsort(-boxes.scores, kind="stable")
    return [
        Detection(*xyxy[i].tolist(), score=float(boxes.scores[i]), class_id=int(boxes.classes[i]),
                  label=names.get(int(boxes.classes[i]), str(int(boxes.classes[i]))))
        for i in order
    ]
