"""Detection trainer for teacher/baseline training and for distillation with the product's KD terms.

Seams of ultralytics 8.4.190 handled here (each covered by a test):

- KD settings are our own config, not ultralytics overrides (unknown override keys raise). They travel in a
  picklable ``KDSettings`` callback object: DDP workers are rebuilt from trainer class, args, model and
  *callbacks*, so the worker's ``DistillTrainer.__init__`` finds the settings in its callbacks. (A file next to
  the run would not do: the DDP launcher deletes the save_dir before spawning the workers.)
- Resume rebuilds ``KDDistillationModel`` (not the base class) in ``setup_model``; the settings come back from
  the checkpoint model (``run_config``), adapters and projector from its EMA weights.
- best.pt is rewritten student-only every time it is saved; last.pt keeps the adapters (and the projector)
  beside the student until the run finishes, so resume is exact; ultralytics strips it at the end.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
from torch import nn
from ultralytics.data import build_yolo_dataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.distill_model import DistillationModel
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, LOGGER, RANK
from ultralytics.utils.torch_utils import strip_optimizer, unwrap_model

from training.distill import heads  # noqa: F401  (registers CoupledDetect, also in DDP workers)
from training.distill.config import resolve_config
from training.distill.model import KDDistillationModel, fit_anchors, rebuild_from_checkpoint

PROVENANCE_FILE = "provenance.json"


class KDSettings:
    """Picklable callback carrying the resolved run config to DDP workers (a no-op when called)."""

    def __init__(self, config: dict[str, Any]):
        self.config = config

    def __call__(self, trainer: Any) -> None:
        """Do nothing: the object only rides along in ``trainer.callbacks``."""


def find_settings(callbacks: dict | None) -> KDSettings | None:
    """Return the ``KDSettings`` object among ``callbacks`` (any event), or None."""
    for fns in (callbacks or {}).values():
        for fn in fns:
            if isinstance(fn, KDSettings):
                return fn
    return None


def kd_epoch_start(trainer: Any) -> None:
    """Reset the in-epoch batch counter used for the KD schedules."""
    trainer.kd_batch = 0


def kd_batch_start(trainer: Any) -> None:
    """Tell the KD model where training is (epoch, global iteration) before each batch."""
    model = unwrap_model(trainer.model)
    if hasattr(model, "kd_progress"):
        nb = len(trainer.train_loader)
        i = getattr(trainer, "kd_batch", 0)
        model.kd_progress = {
            "epoch": trainer.epoch,
            "epochs": trainer.epochs,
            "iteration": trainer.epoch * nb + i,
            "total_iterations": trainer.epochs * nb,
            "batches": nb,
        }
    trainer.kd_batch = getattr(trainer, "kd_batch", 0) + 1


def config_from_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """Return the run config stored in a checkpoint's model (``run_config``), or None."""
    model = load_checkpoint(path)[0]
    return copy.deepcopy(getattr(model, "run_config", None))


def ddp_worker_state(trainer: DetectionTrainer) -> dict[str, Any]:
    """Return what ultralytics' DDP launcher pickles for each worker (utils/dist.py ``generate_ddp_file``)."""
    return {
        "trainer": type(trainer), "args": vars(trainer.args), "model": trainer.model, "callbacks": trainer.callbacks
    }


def rebuild_ddp_worker(state: dict[str, Any]) -> DetectionTrainer:
    """Rebuild a trainer exactly as ultralytics' generated DDP worker script does (without training)."""
    cfg = DEFAULT_CFG_DICT.copy()
    cfg.update(save_dir="")
    trainer = state["trainer"](cfg=cfg, overrides=state["args"], _callbacks=state["callbacks"])
    trainer.model = state["model"]
    return trainer


def _add_once(trainer: DetectionTrainer, event: str, fn: Any) -> None:
    """Add a callback unless it is already registered (DDP workers inherit the parent's callbacks)."""
    if fn not in trainer.callbacks.get(event, []):
        trainer.add_callback(event, fn)


class DistillTrainer(DetectionTrainer):
    """DetectionTrainer that trains a plain model (no KD terms) or distils with ``KDDistillationModel``.

    The teacher path travels as ultralytics' own ``distill_model`` argument (kept on resume); the KD terms,
    augmentation probabilities and recipe are our config (see ``training.distill.config``).
    """

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None,
                 kd_config: dict[str, Any] | None = None):
        """Initialise; ``kd_config`` wins, then settings found in the callbacks (DDP), then the checkpoint (resume).

        Args:
            cfg: ultralytics default config.
            overrides (dict, optional): ultralytics arguments.
            _callbacks (dict, optional): Callbacks (a DDP worker gets the parent's, ``KDSettings`` included).
            kd_config (dict, optional): Resolved config from ``training.distill.config``.
        """
        super().__init__(cfg, overrides, _callbacks)
        settings = find_settings(self.callbacks)
        if kd_config is None and settings is not None:
            kd_config = settings.config
        if kd_config is None and self.resume:
            kd_config = config_from_checkpoint(self.args.resume)
        self.kd_config = copy.deepcopy(kd_config) if kd_config is not None else resolve_config({})
        if settings is None:
            self.add_callback("on_pretrain_routine_start", KDSettings(self.kd_config))
        else:
            settings.config = self.kd_config
        _add_once(self, "on_train_epoch_start", kd_epoch_start)
        _add_once(self, "on_train_batch_start", kd_batch_start)
        self.kd_batch = 0
        if self.kd_config["distill"]["terms"] and self.args.distill_model is None:
            raise ValueError("the config enables distill.terms but no teacher was given (distill --teacher T.pt)")

    # ------------------------------------------------------------------ model
    def _fit_fgfi_anchors(self) -> list | None:
        """K-means FGFI anchors fitted on the train boxes when ``fgfi.anchors`` is ``kmeans``, else None.

        The fitted anchors go to the model (``fgfi_anchors``, saved in checkpoints); the config keeps ``kmeans``.
        """
        fgfi = self.kd_config["distill"]["terms"].get("fgfi")
        if not fgfi or fgfi["anchors"] != "kmeans":
            return None
        import numpy as np

        ds = build_yolo_dataset(self.args, self.data["train"], 16, self.data, mode="val", stride=32)
        wh = []
        for lb in ds.labels:
            h0, w0 = lb["shape"]
            r = self.args.imgsz / max(h0, w0)
            if len(lb["bboxes"]):
                wh.append(lb["bboxes"][:, 2:4] * [w0 * r, h0 * r])
        anchors = fit_anchors(np.concatenate(wh, 0) if wh else np.zeros((0, 2)),
                              per_level=fgfi["anchors_per_level"], seed=self.args.seed)
        LOGGER.info(f"FGFI k-means anchors (pixels): {anchors}")
        return anchors

    def setup_model(self):
        """Build the student, and for distillation the ``KDDistillationModel`` (also on resume)."""
        if isinstance(self.model, nn.Module):
            return None
        terms = self.kd_config["distill"]["terms"]
        if not terms:
            ckpt = super().setup_model()
            if isinstance(self.model, DistillationModel):
                raise ValueError(f"{self.args.model} is a distillation checkpoint; resume it with `distill --resume`")
            self.model.run_config = self.kd_config
            return ckpt
        cfg, weights, ckpt = self.model, None, None
        if str(self.model).lower().endswith(".pt"):
            weights, ckpt = load_checkpoint(self.model)
            cfg = weights.yaml
        if self.resume and isinstance(weights, DistillationModel):
            if not isinstance(weights, KDDistillationModel):
                raise ValueError(f"{self.args.model} was saved by ultralytics' base DistillationModel; start anew")
            LOGGER.info("Resuming KDDistillationModel (terms: %s)", ", ".join(t.name for t in weights.kd_terms))
            student = self.get_model(cfg=weights.student_model.yaml, weights=weights.student_model,
                                     verbose=RANK in {-1, 0})
            student.args = self.args
            model = rebuild_from_checkpoint(weights, student, self.args.distill_model)
        else:
            if isinstance(weights, DistillationModel):
                weights = weights.student_model
                cfg = weights.yaml
            if isinstance(self.args.pretrained, (str, Path)):
                weights = load_checkpoint(self.args.pretrained)[0]
            elif self.args.pretrained is False:
                weights = None
            student = self.get_model(cfg=cfg, weights=weights, verbose=RANK in {-1, 0})
            student.args = self.args
            model = KDDistillationModel(self.args.distill_model, student, terms, fgfi_anchors=self._fit_fgfi_anchors())
        model.criterion = None
        model.run_config = self.kd_config
        self.model = model
        return ckpt

    def set_model_attributes(self):
        """Set nc, names and args on the model and, when distilling, on the student inside it."""
        super().set_model_attributes()
        student = getattr(self.model, "student_model", None)
        if student is not None:
            student.nc, student.names, student.args = self.data["nc"], self.data["names"], self.args

    # ------------------------------------------------------------------ data
    def _augment(self, dataset: Any) -> None:
        """Add blur / contrast equalisation to a train dataset through training.data.augment."""
        aug = self.kd_config["augment"]
        if not (aug["blur_p"] > 0 or aug["clahe_p"] > 0):
            return
        try:
            from training.data.augment import add_to_dataset
        except ModuleNotFoundError as exc:
            if exc.name not in {"training.data.augment", "training.data"}:
                raise
            LOGGER.warning("augment.blur_p/clahe_p set but training.data.augment is not available; not applied")
            return
        add_to_dataset(dataset, aug["blur_p"], aug["clahe_p"])

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """Build the YOLO dataset; the train split gets the configured blur / CLAHE augmentations.

        ``add_to_dataset`` wraps the dataset's ``build_transforms``, so the augmentation survives ultralytics'
        ``close_mosaic`` rebuild without anything further here.
        """
        dataset = super().build_dataset(img_path, mode, batch)
        if mode == "train":
            self._augment(dataset)
        return dataset

    # ------------------------------------------------------------------ run
    def _setup_train(self):
        """Ultralytics setup, then provenance next to the run (rank 0 only)."""
        super()._setup_train()
        if RANK in {-1, 0}:
            write_provenance(self)

    def save_model(self):
        """Save last.pt (student + adapters, for resume) and a student-only best.pt."""
        saved = super().save_model()
        if saved and self.best_fitness == self.fitness and isinstance(unwrap_model(self.model), DistillationModel):
            strip_optimizer(self.last, s=str(self.best))
        return saved


def _git_sha() -> str | None:
    """Git commit of the working tree, or None."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_provenance(trainer: DistillTrainer) -> Path:
    """Write provenance.json in the run dir: resolved config, model paths, data.yaml, versions, git SHA."""
    import numpy
    import ultralytics

    data_yaml = trainer.args.data
    try:
        data_text = Path(data_yaml).read_text(encoding="utf-8")
    except OSError:
        data_text = None
    info = {
        "config": trainer.kd_config,
        "fgfi_anchors": getattr(unwrap_model(trainer.model), "fgfi_anchors", None),  # fitted k-means ones too
        "config_file": getattr(trainer, "config_file", None),
        "student": str(trainer.args.model),
        "teacher": trainer.args.distill_model,
        "resume": trainer.args.resume,
        "data": str(data_yaml),
        "data_yaml": data_text,
        "train_args": {k: v for k, v in vars(trainer.args).items() if isinstance(v, (str, int, float, bool))},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ultralytics": ultralytics.__version__,
            "numpy": numpy.__version__,
        },
        "git_sha": _git_sha(),
    }
    path = Path(trainer.save_dir) / PROVENANCE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path
