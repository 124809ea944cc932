"""The product's distillation model: ultralytics' ``DistillationModel`` plus the registry's KD terms.

The base class (ultralytics 8.4.190) already keeps the teacher frozen and in eval, re-registers picklable hooks
after deepcopy/unpickling, strips the teacher from the EMA and checkpoints, and provides the native
score-weighted feature L2 (``projector`` + ``loss_sl2``). This subclass adds the terms of
``training.distill.terms`` (each with its own weight, schedule and loss column): ``fgfi`` (adapters on the Detect
inputs), ``response`` (integrated distillation on the head outputs), ``ld`` and ``bckd`` (head-level terms),
``native`` as one selectable term among them, and ``lad`` (label-assignment distillation) at the loss seam: the
student's TaskAlignedAssigner is fed a blend of the teacher's and the student's predictions. One teacher forward
per batch serves every term.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from ultralytics.nn.distill_model import DistillationModel
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils.tal import dist2bbox, make_anchors

from training.distill import losses
from training.distill.config import freeze_terms
from training.distill.terms import TERM_ORDER, TERMS, KDContext, TermSettings


def _detect(model: nn.Module) -> Detect:
    """Return the Detect head of an ultralytics model."""
    for m in model.model:
        if isinstance(m, Detect):
            return m
    raise ValueError(f"{type(model).__name__} has no Detect head")


def _names(model: nn.Module) -> dict[int, str]:
    """Class names of a model as {int: str}."""
    names = getattr(model, "names", None) or {}
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()}


def check_pair(teacher: nn.Module, student: nn.Module, teacher_name: str = "teacher") -> None:
    """Refuse a teacher/student pair that cannot be distilled, with a message naming what differs.

    Args:
        teacher (nn.Module): Teacher detection model (names set from its checkpoint).
        student (nn.Module): Student detection model (names set from the data.yaml).
        teacher_name (str): How to name the teacher in errors (its path).

    Raises:
        ValueError: Different class names or nc, numbers of levels or strides.
    """
    td, sd = _detect(teacher), _detect(student)
    tn, sn = _names(teacher), _names(student)
    if td.nc != sd.nc or (tn and sn and tn != sn):
        raise ValueError(
            f"{teacher_name}: teacher classes {tn} (nc={td.nc}) differ from the student/data classes {sn} "
            f"(nc={sd.nc}); train the teacher on the same data.yaml names"
        )
    if td.nl != sd.nl:
        raise ValueError(f"{teacher_name}: teacher has {td.nl} detection levels, student {sd.nl}; expected equal")
    if not torch.equal(td.stride.float().cpu(), sd.stride.float().cpu()):
        raise ValueError(f"{teacher_name}: teacher strides {td.stride.tolist()} vs student {sd.stride.tolist()}")
    # DFL bins (reg_max) may differ: terms that compare the bins themselves are refused per term (dfl_refusal)


def dfl_refusal(terms: dict[str, dict], teacher_reg_max: int, student_reg_max: int) -> str | None:
    """Return why an enabled term cannot run with these heads' DFL bins, or None when every term can.

    ``ld`` and the box part of ``response`` compare the teacher's and the student's distributions over the
    ``reg_max`` bins of each box side; a head with ``reg_max`` 1 (YOLO26) regresses the distances directly and
    has no distribution, and heads with different bins have nothing to compare bin by bin. Box KD on decoded
    boxes (``bckd``'s IoU term) and every feature and class term work whatever the bins.
    """
    if teacher_reg_max == student_reg_max and student_reg_max > 1:
        return None
    why = ("the student's head has reg_max 1 (no DFL distribution: YOLO26)" if student_reg_max == 1 else
           f"the teacher's head has {teacher_reg_max} DFL bins and the student's {student_reg_max}")
    if teacher_reg_max == 1 and student_reg_max > 1:
        why = "the teacher's head has reg_max 1 (no DFL distribution: YOLO26)"
    for name, cfg in terms.items():
        spec = TERMS.get(name)
        if spec is not None and spec.dfl_bins is not None and spec.dfl_bins(cfg):
            hint = " or set lam: 1.0 (class KD only)" if name == "response" else ""
            return (f"distill.terms.{name}: compares the DFL box distributions of teacher and student, but {why}; "
                    f"drop it{hint}, and use 'bckd' (IoU of decoded boxes) for box KD")
    return None


def decode_boxes(dist: torch.Tensor, anchor_points: torch.Tensor, reg_max: int) -> torch.Tensor:
    """(B, A, 4) xyxy boxes in grid units from a head's (B, 4 * reg_max, A) box output (as ultralytics decodes).

    With ``reg_max`` > 1 each side is the expectation of its softmax over the bins; with 1 the output is the
    distance itself (YOLO26).
    """
    d = dist.permute(0, 2, 1)
    if reg_max > 1:
        b, a, _ = d.shape
        proj = torch.arange(reg_max, dtype=d.dtype, device=d.device)
        d = d.view(b, a, 4, reg_max).softmax(3).matmul(proj)
    return dist2bbox(d, anchor_points, xywh=False)


def fit_anchors(wh: np.ndarray, n_levels: int = 3, per_level: int = 3, iters: int = 50, seed: int = 0) -> list:
    """K-means (1 - IoU distance) anchors on GT (w, h) in pixels, sorted by area and split per level.

    Args:
        wh (np.ndarray): (N, 2) GT widths and heights in pixels at the training resolution.
        n_levels (int): Number of detection levels.
        per_level (int): Anchors per level.
        iters (int): K-means iterations.
        seed (int): Seed of the initial centres.

    Returns:
        (list): ``n_levels`` lists of ``per_level`` [w, h] pairs, smallest anchors on the finest level.
    """
    k = n_levels * per_level
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    wh = wh[(wh > 0).all(1)]
    if len(wh) < k:
        raise ValueError(f"fgfi anchors: k-means needs at least {k} training boxes, found {len(wh)}")
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), k, replace=False)]
    for _ in range(iters):
        inter = np.minimum(wh[:, None], centres[None]).prod(2)
        iou = inter / (wh.prod(1)[:, None] + centres.prod(1)[None] - inter)
        assign = iou.argmax(1)
        new = np.array([np.median(wh[assign == j], 0) if (assign == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    centres = centres[np.argsort(centres.prod(1))]
    return [[[round(float(w), 2), round(float(h), 2)] for w, h in centres[i * per_level : (i + 1) * per_level]]
            for i in range(n_levels)]


def resolve_anchors(setting: Any, n_levels: int) -> list:
    """Per-level pixel anchors from the ``fgfi.anchors`` setting (``"yolov5"`` or explicit lists)."""
    if setting == "yolov5":
        if n_levels != 3:
            raise ValueError(f"fgfi anchors 'yolov5' cover 3 levels, the models have {n_levels}; give anchors")
        return [[list(map(float, a)) for a in lv] for lv in losses.YOLOV5_ANCHORS]
    if setting == "kmeans":
        raise ValueError("fgfi anchors 'kmeans' must be fitted by the trainer before the model is built")
    if len(setting) != n_levels:
        raise ValueError(f"fgfi anchors: {len(setting)} levels given, the models have {n_levels}")
    return [[[float(w), float(h)] for w, h in lv] for lv in setting]


def make_adapter(c_in: int, c_out: int, init: str = "default") -> nn.Sequential:
    """FGFI adaptation layer: 3x3 conv (padding 1) to the teacher's width, then ReLU.

    Args:
        c_in (int): Student channels.
        c_out (int): Teacher channels.
        init (str): ``"default"`` (PyTorch's conv initialisation, so the adapter passes signal from the first
            step) or ``"paper"`` (weights ~ N(0, 1e-4), bias 0, as the authors' code; measured to send a gradient
            5,000 times below the class loss into the student at the start).
    """
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1)
    if init == "paper":
        nn.init.normal_(conv.weight, 0.0, 1e-4)
        nn.init.zeros_(conv.bias)
    elif init != "default":
        raise ValueError(f"fgfi adapter_init must be 'default' or 'paper', got {init!r}")
    return nn.Sequential(conv, nn.ReLU(inplace=False))


class AssignmentSeam:
    """Wraps the student's TaskAlignedAssigner for one loss call: blends in the teacher, records the result.

    With ``alpha > 0`` the assigner's ``pd_scores`` / ``pd_bboxes`` become ``alpha * teacher + (1 - alpha) *
    student`` (label-assignment distillation); with ``alpha == 0`` the call is the stock one, bit for bit. The
    assignment's ``fg_mask`` and ``target_scores`` are kept for the KD terms that work on positives.
    """

    def __init__(self, assigner: Any, t_scores: torch.Tensor | None = None, t_bboxes: torch.Tensor | None = None,
                 alpha: float = 0.0):
        """Args: the stock assigner, the teacher's (B, A, nc) sigmoid scores and (B, A, 4) pixel boxes, the blend."""
        self.assigner, self.t_scores, self.t_bboxes, self.alpha = assigner, t_scores, t_bboxes, float(alpha)
        self.fg_mask: torch.Tensor | None = None
        self.target_scores: torch.Tensor | None = None

    def __call__(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        """Run the assigner on the (blended) predictions and record its positives."""
        if self.alpha > 0:
            pd_scores = losses.blend_predictions(pd_scores, self.t_scores, self.alpha)
            pd_bboxes = losses.blend_predictions(pd_bboxes, self.t_bboxes, self.alpha)
        out = self.assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra)
        self.target_scores, self.fg_mask = out[2], out[3]
        return out


@contextmanager
def one2many_only(head: nn.Module) -> Iterator[None]:
    """While the context lasts, ``head`` (a Detect) returns its raw one-to-many outputs alone.

    The KD terms read the teacher's raw one-to-many boxes and scores only; the eval-mode head would also decode
    them and, for an end-to-end head (YOLO26), run its one-to-one branch and top-k post-processing, all thrown
    away (about half of a YOLO26 head's time). The values are the ones the full forward returns under
    ``preds["one2many"]``.
    """
    head.forward = lambda x: head.forward_head(x, **head.one2many)
    try:
        yield
    finally:
        del head.forward


class KDDistillationModel(DistillationModel):
    """DistillationModel with the product's selectable, combinable, individually weighted and scheduled terms.

    Attributes:
        kd_terms (tuple[TermSettings, ...]): Frozen settings of every enabled term, in registry order.
        adapters (nn.ModuleList | None): FGFI adapters, one per Detect input level (created before the optimizer).
        fgfi_anchors (list | None): Per-level virtual anchors in pixels (fitted k-means anchors live here only).
        kd_progress (dict): epoch, epochs, iteration, total_iterations; set each batch by the trainer.
        student_channels, teacher_channels (list[int]): Probed widths of the Detect inputs.
    """

    def __init__(self, teacher_model: str | Path | nn.Module, student_model: nn.Module, terms: dict[str, dict],
                 fgfi_anchors: list | None = None):
        """Load/check the teacher, probe widths with the base class' dummy forward, build adapters.

        Args:
            teacher_model (str | Path | nn.Module): Teacher checkpoint path or module.
            student_model (nn.Module): Student DetectionModel with ``args`` (imgsz, dis, close_mosaic) and names.
            terms (dict): Enabled terms ``{name: settings}``; settings are completed with defaults.
            fgfi_anchors (list, optional): Per-level pixel anchors that replace the ``fgfi.anchors`` setting
                (k-means anchors fitted by the trainer).
        """
        if not terms:
            raise ValueError(f"distillation needs at least one term in distill.terms ({', '.join(TERM_ORDER)})")
        kd_terms = freeze_terms(terms)
        name = str(teacher_model) if isinstance(teacher_model, (str, Path)) else "teacher"
        if isinstance(teacher_model, (str, Path)):
            if not Path(teacher_model).is_file():
                raise FileNotFoundError(f"teacher checkpoint not found: {teacher_model}")
            teacher_model = load_checkpoint(teacher_model)[0]
        check_pair(teacher_model, student_model, name)
        refusal = dfl_refusal({t.name: t.as_dict() for t in kd_terms}, _detect(teacher_model).reg_max,
                              _detect(student_model).reg_max)
        if refusal:
            raise ValueError(f"{name}: {refusal}")
        super().__init__(teacher_model, student_model)
        self.kd_terms = kd_terms
        self.kd_progress = {"epoch": 0, "epochs": 1, "iteration": 0, "total_iterations": 1, "batches": 1}
        # widths probed by the base class' dummy forward (its projectors map student -> teacher widths)
        self.student_channels = [p[0].in_channels for p in self.projector]
        self.teacher_channels = [p[0].out_channels for p in self.projector]
        self.adapters = None
        self.fgfi_anchors = None
        fgfi = self.term("fgfi")
        if fgfi is not None:
            device = next(student_model.parameters()).device
            self.adapters = nn.ModuleList(
                make_adapter(s, t, fgfi["adapter_init"]) for s, t in zip(self.student_channels, self.teacher_channels)
            ).to(device)
            setting = fgfi_anchors if fgfi_anchors is not None else fgfi.as_dict()["anchors"]
            self.fgfi_anchors = resolve_anchors(setting, len(self.student_channels))

    def term(self, name: str) -> TermSettings | None:
        """Return the settings of the enabled term ``name``, or None."""
        return next((t for t in self.kd_terms if t.name == name), None)

    @property
    def kd_columns(self) -> list[str]:
        """Loss columns of the enabled terms that add a loss, in order."""
        return [TERMS[t.name].column for t in self.kd_terms if TERMS[t.name].compute is not None]

    # ------------------------------------------------------------------ teacher
    def _teacher_outputs(self, img: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Run the frozen teacher under inference mode (FP16 on CUDA); return ordinary FP32 copies.

        Returns:
            (tuple): Detect-input features per level and the head dict (boxes, scores).
        """
        teacher = self.teacher_model
        if img.device.type == "cuda" and next(teacher.parameters()).dtype != torch.float16:
            teacher.half()
        x = img.half() if img.device.type == "cuda" else img
        self._teacher_feats.clear()
        with torch.inference_mode(), one2many_only(teacher.model[self.teacher_feats_idx[-1]]):
            teacher(x)
        n = len(self.feats_idx) - 1
        if len(self._teacher_feats) != n + 1:
            raise RuntimeError(f"teacher hooks captured levels {sorted(self._teacher_feats)}, expected 0..{n}")
        # clone outside inference mode: inference tensors cannot be saved for backward
        feats = [self._teacher_feats[i].clone().float() for i in range(n)]
        head = self.decouple_outputs(self._teacher_feats[n], branch="one2many")
        head = {k: head[k].clone().float() for k in ("boxes", "scores")}
        self._teacher_feats.clear()
        return feats, head

    # ------------------------------------------------------------------ terms
    def factor(self, name: str) -> float:
        """Schedule multiplier of term ``name`` at the current ``kd_progress``."""
        cfg, p = self.term(name), self.kd_progress
        off = cfg["off_last_epochs"]
        if off < 0:
            off = int(getattr(self.student_model.args, "close_mosaic", 0) or 0)
        warmup = max(int(cfg["warmup_iters"]), int(round(cfg["warmup_epochs"] * p.get("batches", 1))))
        return losses.schedule_factor(
            cfg["schedule"], p["epoch"], p["epochs"], p["iteration"], p["total_iterations"], warmup, off, cfg["final"],
        )

    def _gt_pixels(self, batch: dict, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GT boxes of the batch as padded (B, M, 4) xyxy pixels and a (B, M) validity mask."""
        b, (h, w) = img.shape[0], img.shape[2:]
        idx = batch["batch_idx"].view(-1).long().to(img.device)
        boxes = batch["bboxes"].to(img.device).float().view(-1, 4)
        counts = torch.bincount(idx, minlength=b) if idx.numel() else torch.zeros(b, dtype=torch.long)
        m = int(counts.max()) if idx.numel() else 0
        gt = torch.zeros(b, m, 4, device=img.device)
        valid = torch.zeros(b, m, dtype=torch.bool, device=img.device)
        if m:
            order = torch.argsort(idx, stable=True)
            idx, boxes = idx[order], boxes[order]
            starts = torch.cumsum(counts, 0) - counts
            j = torch.arange(len(idx), device=img.device) - starts[idx]
            scale = boxes.new_tensor([w, h, w, h])
            xywh = boxes * scale
            gt[idx, j] = torch.cat((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1)
            valid[idx, j] = True
        return gt, valid

    def fgfi_term(self, ctx: KDContext, cfg: TermSettings) -> torch.Tensor:
        """FGFI imitation on the Detect inputs with per-level virtual anchors."""
        gt, valid = self._gt_pixels(ctx.batch, ctx.img)
        strides = [float(s) for s in _detect(self.student_model).stride]
        anchors = [torch.tensor(a, device=ctx.img.device) for a in self.fgfi_anchors]
        masks = losses.fgfi_mask(
            gt, valid, [f.shape[-2:] for f in ctx.s_feats], strides, anchors, cfg["psi"], cfg["max_over"]
        )
        # the adapters run only at the masked locations, the only ones the loss reads (same value and gradients)
        return losses.fgfi_adapted_loss(self.adapters, ctx.s_feats, ctx.t_feats, masks)

    def native_term(self, ctx: KDContext) -> torch.Tensor:
        """Ultralytics' score-weighted feature L2 through its projector (the baseline to beat)."""
        t_feats, t_scores = ctx.t_feats, ctx.t_head["scores"]
        parts = torch.split(t_scores, [f.shape[-2] * f.shape[-1] for f in t_feats], dim=-1)
        weights = tuple(p.sigmoid().max(dim=1, keepdim=True).values for p in parts)
        total = ctx.s_feats[0].new_zeros(())
        for i, (s, t) in enumerate(zip(ctx.s_feats, t_feats)):
            total = total + self.loss_sl2(self.projector[i](s), t, feat_idx=i, teacher_scores=weights)
        return total

    def _student_criterion(self) -> Any:
        """Return the student's criterion: v8DetectionLoss, or E2ELoss for an end-to-end head (created on first use)."""
        student = self.student_model
        if getattr(student, "criterion", None) is None:
            student.criterion = student.init_criterion()
        return student.criterion

    def _decode(self, head: dict, anchor_points: torch.Tensor, which: str) -> torch.Tensor:
        """(B, A, 4) xyxy boxes in grid units from the student's (``s``) or teacher's (``t``) head, its own bins."""
        model = self.student_model if which == "s" else self.teacher_model
        return decode_boxes(head["boxes"], anchor_points, _detect(model).reg_max)

    def kd_losses(self, ctx: KDContext) -> dict[str, torch.Tensor]:
        """Raw (unweighted) value of every enabled term that adds a loss, on one batch."""
        return {t.name: TERMS[t.name].compute(ctx, t) for t in self.kd_terms if TERMS[t.name].compute is not None}

    # ------------------------------------------------------------------ loss
    def loss(self, batch: dict, preds=None):
        """Compute the student detection loss plus every enabled KD term, each its own loss column.

        Order: student forward, teacher forward (once), the detection loss with the assigner behind an
        ``AssignmentSeam`` (teacher-blended when ``lad`` is on; its positives recorded), then the KD terms.

        Returns:
            loss (torch.Tensor): [box, cls, dfl, *kd terms] each times batch size (the trainer sums it).
            loss_items (dict[str, torch.Tensor]): Detached components; KD columns hold weight x schedule x term.
        """
        columns = self.kd_columns
        img = batch["img"]
        if not self.training:  # validation during training: same columns, KD terms zero
            if preds is None:
                preds = self.student_model(img)
            regular, items = self.student_model.loss(batch, preds)
            zeros = torch.zeros(len(columns), device=img.device)
            items.update({c: zeros[i].detach() for i, c in enumerate(columns)})
            return torch.cat([regular, zeros]), items
        self._student_feats.clear()
        preds = self.student_model(img)
        n = len(self.feats_idx) - 1
        if len(self._student_feats) != n + 1:
            raise RuntimeError(f"student hooks captured levels {sorted(self._student_feats)}, expected 0..{n}")
        s_feats = [self._student_feats[i] for i in range(n)]
        s_head = self.decouple_outputs(self._student_feats[n], branch="one2many")
        self._student_feats.clear()
        t_feats, t_head = self._teacher_outputs(img)
        crit = self._student_criterion()
        # an end-to-end head (YOLO26) trains a one-to-many and a one-to-one branch, each with its own assigner;
        # the KD terms read the one-to-many branch, as ultralytics' own distillation does
        o2m = getattr(crit, "one2many", crit)
        anchor_points, stride_tensor = make_anchors(s_head["feats"], o2m.stride, 0.5)
        ctx = KDContext(self, batch, img, s_feats, t_feats, s_head, t_head,
                        decode=lambda head: self._decode(head, anchor_points, "s" if head is s_head else "t"))
        alpha = 0.0
        if self.term("lad") is not None:
            alpha = min(1.0, self.term("lad")["weight"] * self.factor("lad"))
        branches = [o2m] + ([crit.one2one] if hasattr(crit, "one2one") else [])
        seams = []
        for branch in branches:  # LAD blends the teacher into every branch's assignment
            if alpha > 0:  # the teacher's decoded predictions only when the assignment uses them
                seams.append(AssignmentSeam(branch.assigner, t_head["scores"].permute(0, 2, 1).sigmoid(),
                                            ctx.t_boxes * stride_tensor, alpha))
            else:
                seams.append(AssignmentSeam(branch.assigner))
            branch.assigner = seams[-1]
        try:
            regular, items = self.student_model.loss(batch, preds)
        finally:
            for branch, seam in zip(branches, seams, strict=True):
                branch.assigner = seam.assigner
        ctx.fg_mask, ctx.target_scores = seams[0].fg_mask, seams[0].target_scores
        raw = self.kd_losses(ctx)
        if raw:
            weighted = torch.stack([raw[t.name] * (t["weight"] * self.factor(t.name)) for t in self.kd_terms
                                    if t.name in raw]).to(regular.dtype)
        else:
            weighted = regular.new_zeros(0)
        total = torch.cat([regular, weighted * img.shape[0]])
        if not bool(torch.isfinite(total).all()):
            bad = {k: float(v) for k, v in {**items, **dict(zip(columns, weighted.detach()))}.items()}
            raise FloatingPointError(
                f"non-finite training loss at epoch {self.kd_progress['epoch'] + 1}, iteration "
                f"{self.kd_progress['iteration']}: {bad}; stopping (lower the KD weights or lr)"
            )
        items.update({c: weighted[i].detach() for i, c in enumerate(columns)})
        return total, items


def rebuild_from_checkpoint(weights: KDDistillationModel, student: nn.Module, teacher: str | Path) -> nn.Module:
    """Rebuild the subclass on resume from an EMA checkpoint model (teacher stripped) and a fresh student.

    Restores the trained adapters and projector, the resolved term settings and the fitted FGFI anchors.

    Args:
        weights (KDDistillationModel): Model unpickled from last.pt.
        student (nn.Module): Student built from the checkpoint's student weights, with ``args`` attached.
        teacher (str | Path): Teacher checkpoint path (``args.distill_model``).

    Returns:
        (KDDistillationModel): The rebuilt model.
    """
    terms = {t.name: t.as_dict() for t in weights.kd_terms}
    model = KDDistillationModel(teacher, student, terms, fgfi_anchors=copy.deepcopy(weights.fgfi_anchors))
    model.projector.load_state_dict(weights.projector.state_dict())
    if model.adapters is not None:
        model.adapters.load_state_dict(weights.adapters.state_dict())
    return model
