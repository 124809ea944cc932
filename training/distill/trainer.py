"""``DistillTrainer``: ultralytics' detection trainer for teacher / baseline training and for distillation.

It builds ``KDDistillationModel`` (also on resume), carries the ``DistillConfig`` to DDP workers in a picklable
``KDSettings`` callback and back from a checkpoint's ``run_config``, adds the train-time augmentations, and routes
every checkpoint write through ``training.checkpoints`` (atomic, best.pt student-only, completion marker) and
``training.provenance``. The seams of ultralytics 8.4.190 handled here, each covered by a test: docs/training.md
("How the KD settings reach the trainer, multi-GPU workers and a resumed run").
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn
from ultralytics.data import build_yolo_dataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.distill_model import DistillationModel
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, LOCAL_RANK, LOGGER, RANK
from ultralytics.utils.torch_utils import torch_distributed_zero_first, unwrap_model

from kd_traffic_light.core.atomic_io import atomic_path, tmp_path_for
from training import checkpoints
from training.distill import heads  # noqa: F401  (registers CoupledDetect, also in DDP workers)
from training.distill.config import DistillConfig, resolve_config
from training.distill.model import KDDistillationModel, fit_anchors, rebuild_from_checkpoint
from training.provenance import write_provenance


class KDSettings:
    """Picklable callback carrying the resolved run config to DDP workers (a no-op when called)."""

    def __init__(self, config: DistillConfig):
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


def config_from_checkpoint(path: str | Path) -> DistillConfig | None:
    """Return the run config stored in a checkpoint's model (``run_config``, its plain form), or None."""
    model = load_checkpoint(path)[0]
    stored = getattr(model, "run_config", None)
    return DistillConfig.from_dict(copy.deepcopy(stored)) if stored is not None else None


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
                 kd_config: DistillConfig | None = None):
        """Initialise; ``kd_config`` wins, then settings found in the callbacks (DDP), then the checkpoint (resume).

        Args:
            cfg: ultralytics default config.
            overrides (dict, optional): ultralytics arguments.
            _callbacks (dict, optional): Callbacks (a DDP worker gets the parent's, ``KDSettings`` included).
            kd_config (DistillConfig, optional): Resolved config from ``training.distill.config``.
        """
        super().__init__(cfg, overrides, _callbacks)
        settings = find_settings(self.callbacks)
        if kd_config is None and settings is not None:
            kd_config = settings.config
        if kd_config is None and self.resume:
            kd_config = config_from_checkpoint(self.args.resume)
        self.kd_config = kd_config if kd_config is not None else resolve_config({})
        if settings is None:
            self.add_callback("on_pretrain_routine_start", KDSettings(self.kd_config))
        else:
            settings.config = self.kd_config
        _add_once(self, "on_train_epoch_start", kd_epoch_start)
        _add_once(self, "on_train_batch_start", kd_batch_start)
        self.kd_batch = 0
        if self.kd_config.distills and self.args.distill_model is None:
            raise ValueError("the config enables distill.terms but no teacher was given (distill --teacher T.pt)")

    # ------------------------------------------------------------------ model
    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        """Build the student; with ``init.seed`` its initial weights come from that seed alone.

        The global generator is forked, so the run's ``--seed`` still decides the data order and augmentation
        exactly as without it (kd-gain's spread study varies the two apart).
        """
        seed = self.kd_config.init_seed if hasattr(self, "kd_config") else None
        if seed is None:
            return super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return super().get_model(cfg=cfg, weights=weights, verbose=verbose)

    def _fit_fgfi_anchors(self) -> list | None:
        """K-means FGFI anchors fitted on the train boxes when ``fgfi.anchors`` is ``kmeans``, else None.

        The fitted anchors go to the model (``fgfi_anchors``, saved in checkpoints); the config keeps ``kmeans``.
        """
        fgfi = self.kd_config.terms.get("fgfi")
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
        terms = {name: t.as_dict() for name, t in self.kd_config.terms.items()}
        if not terms:
            ckpt = super().setup_model()
            if isinstance(self.model, DistillationModel):
                raise ValueError(f"{self.args.model} is a distillation checkpoint; resume it with `distill --resume`")
            self.model.run_config = self.kd_config.to_dict()  # plain: checkpoints load without our classes
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
        model.run_config = self.kd_config.to_dict()
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
        aug = self.kd_config.augment
        if not (aug.blur_p > 0 or aug.clahe_p > 0):
            return
        try:
            from training.data.augment import add_to_dataset
        except ModuleNotFoundError as exc:
            if exc.name not in {"training.data.augment", "training.data"}:
                raise
            LOGGER.warning("augment.blur_p/clahe_p set but training.data.augment is not available; not applied")
            return
        add_to_dataset(dataset, aug.blur_p, aug.clahe_p)

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """Build the YOLO dataset; the train split gets the configured augmentations and sampling.

        Blur / CLAHE (``augment``) and, with ``sampling.repeat_thr``, repeat-factor sampling of its rare classes
        (training/data/sampling.py).

        ``add_to_dataset`` wraps the dataset's ``build_transforms``, so the augmentation survives ultralytics'
        ``close_mosaic`` rebuild without anything further here.
        """
        dataset = super().build_dataset(img_path, mode, batch)
        if mode == "train":
            self._augment(dataset)
            if self.kd_config.repeat_thr:
                from training.data.sampling import repeat_rare

                n = repeat_rare(dataset, self.kd_config.repeat_thr)
                LOGGER.info(f"sampling: repeat_thr {self.kd_config.repeat_thr}: {n['images']} train images listed "
                            f"{n['listed']} times an epoch")
        return dataset

    # ------------------------------------------------------------------ run
    def check_resume(self, overrides):
        """Refuse a ``--resume`` checkpoint that does not load, naming it (ultralytics says "not found")."""
        resume = self.args.resume
        if resume and isinstance(resume, (str, Path)) and Path(resume).is_file():
            checkpoints.load(resume)  # CheckpointError: torn / truncated / not a checkpoint
        super().check_resume(overrides)

    def train(self):
        """Train; a resumed run whose training loop already ended is only completed (see ``complete_run``)."""
        if self.resume and RANK in {-1, 0} and checkpoints.loop_finished(self.args.resume, self.epochs):
            return self.complete_run()
        return super().train()

    def _do_train(self):
        """Ultralytics' training; then (rank 0) the completion marker, and last.pt's final strip."""
        super()._do_train()
        if RANK in {-1, 0}:
            self.write_marker()
            self._strip_last()

    def _setup_train(self):
        """Ultralytics setup, then (rank 0) withdraw any completion marker, clear torn temporaries, provenance."""
        super()._setup_train()
        if RANK in {-1, 0}:
            checkpoints.remove_marker(self.save_dir)
            checkpoints.remove_stale_temporaries(self.wdir)
            write_provenance(self.save_dir, self.kd_config.to_dict(), self.args, config_file=getattr(
                self, "config_file", None), fgfi_anchors=getattr(unwrap_model(self.model), "fgfi_anchors", None))

    def resume_training(self, ckpt):
        """Ultralytics' resume; an unreadable best.pt (torn by an older writer) is dropped and chosen anew."""
        super().resume_training(ckpt)
        if ckpt is not None and self.resume and RANK in {-1, 0} and self.best.exists():
            try:
                checkpoints.load(self.best)
            except checkpoints.CheckpointError as exc:
                LOGGER.warning(f"{exc}; removed, best.pt is chosen among the resumed epochs")
                self.best.unlink()
                self.best_fitness = None

    def save_metrics(self, metrics):
        """Append this epoch's results.csv row atomically, dropping rows a killed attempt left for this epoch on.

        Ultralytics appends in place: a kill could leave a torn last line, and a resumed run would repeat the
        rows of the epochs it trains again.
        """
        csv_path = self.csv
        keep = checkpoints.results_kept_before(csv_path, self.epoch + 1)
        with atomic_path(csv_path) as tmp:
            if keep:
                tmp.write_text(keep, encoding="utf-8")
            else:
                tmp.unlink(missing_ok=True)
            self.csv = tmp
            try:
                super().save_metrics(metrics)
            finally:
                self.csv = csv_path

    def _distilling(self) -> bool:
        return isinstance(unwrap_model(self.model), DistillationModel)

    def save_model(self):
        """Save last.pt (student + adapters, for resume) and a student-only best.pt, each atomically.

        Ultralytics writes both files in place; here it writes temporary siblings, then best.pt (for
        distillation the student-only rewrite, checked) replaces its target, then last.pt does.
        """
        last, best = self.last, self.best
        tmp_last, tmp_best = tmp_path_for(last), tmp_path_for(best)
        self.last, self.best = tmp_last, tmp_best
        try:
            saved = super().save_model()
        finally:
            self.last, self.best = last, best
        if saved:
            checkpoints.commit_saved(tmp_best, tmp_last, best, last, student_only_from_last=self._distilling())
        else:
            tmp_best.unlink(missing_ok=True)
            tmp_last.unlink(missing_ok=True)
        return saved

    def _finalize_best(self) -> None:
        """Ultralytics' final strip of best.pt (train results from last.pt), atomic and checked (rank 0).

        A best.pt that does not load (torn by an older writer) is replaced by the final weights of last.pt.
        """
        checkpoints.finalize_best(self.best, self.last, warn=LOGGER.warning)

    def _strip_last(self) -> None:
        """Ultralytics' final strip of last.pt, atomic; after the marker, since a full last.pt is still resumable."""
        checkpoints.strip_last(self.last)

    def final_eval(self):
        """Ultralytics' final evaluation of best.pt, after its final strip (atomic, checked).

        last.pt is stripped only once the run is marked complete (``_do_train``): killed in between, the run
        still has a training checkpoint to resume (and complete) from.
        """
        with torch_distributed_zero_first(LOCAL_RANK):  # strip only on GPU 0; other GPUs wait
            if RANK in {-1, 0} and (self.last.exists() or self.best.exists()):
                self._finalize_best()
        if self.best.exists():
            LOGGER.info(f"\nValidating {self.best}...")
            self.validator.args.plots = self.args.plots
            self.validator.args.compile = False  # as ultralytics: final val compile is too slow
            self.metrics = self.validator(model=self.best)
            self.metrics.pop("fitness", None)
            self.epoch += 1  # log best metrics at step epochs+1, not overwriting the last epoch
            self.run_callbacks("on_fit_epoch_end")
            self.epoch -= 1

    def write_marker(self) -> Path:
        """Write ``weights/COMPLETE.json`` (checks best.pt first): from then on the run counts as finished."""
        path = checkpoints.write_marker(self.save_dir, kind="distill" if self.kd_config.distills else "train",
                                        epochs=self.epochs)
        LOGGER.info(f"Run complete: {path}")
        return path

    def complete_run(self) -> None:
        """Finish a run whose training loop had ended: best.pt's final strip, the marker, then last.pt's strip.

        No epoch is trained and the final validation is not repeated (``evaluate`` measures the model).
        """
        LOGGER.info(f"{self.args.resume}: training loop already finished; completing the run without training")
        checkpoints.remove_stale_temporaries(self.wdir)
        self._finalize_best()
        self.write_marker()
        self._strip_last()

