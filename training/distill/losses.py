"""Pure distillation loss terms and their schedule: tensors in, scalar out.

Every function here is free of model, hook and trainer state so that it can be checked on hand-built tensors.
Choosing layers, capturing features and weighting terms happens in ``training.distill.model``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# YOLOv5 anchors in pixels (w, h) for P3/8, P4/16, P5/32: the default FGFI virtual anchors.
YOLOV5_ANCHORS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((10, 13), (16, 30), (33, 23)),
    ((30, 61), (62, 45), (59, 119)),
    ((116, 90), (156, 198), (373, 326)),
)


def _pairwise_iou(gt: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """IoU of every GT box with every anchor box, both xyxy in pixels.

    Args:
        gt (torch.Tensor): (B, M, 4) GT boxes.
        anchors (torch.Tensor): (K, 4) anchor boxes.

    Returns:
        (torch.Tensor): (B, M, K) IoU, exactly 0 where boxes do not overlap (no epsilon in the ratio).
    """
    g = gt[:, :, None, :]
    a = anchors[None, None, :, :]
    iw = (torch.minimum(g[..., 2], a[..., 2]) - torch.maximum(g[..., 0], a[..., 0])).clamp(min=0)
    ih = (torch.minimum(g[..., 3], a[..., 3]) - torch.maximum(g[..., 1], a[..., 1])).clamp(min=0)
    inter = iw * ih
    area_g = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    union = area_g + area_a - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def level_anchor_boxes(shape: tuple[int, int], stride: float, anchors: torch.Tensor) -> torch.Tensor:
    """Virtual anchor boxes of one level in pixels, ordered (row, column, anchor).

    Anchor centres sit at cell centres ``((j + 0.5) * stride, (i + 0.5) * stride)``, as ultralytics'
    ``make_anchors`` with offset 0.5; grids need not be square.

    Args:
        shape (tuple[int, int]): Feature map (H, W).
        stride (float): Level stride in pixels.
        anchors (torch.Tensor): (A, 2) anchor (w, h) in pixels.

    Returns:
        (torch.Tensor): (H * W * A, 4) xyxy anchor boxes in pixels.
    """
    h, w = shape
    anchors = anchors.to(torch.float32)
    ys = (torch.arange(h, dtype=torch.float32, device=anchors.device) + 0.5) * stride
    xs = (torch.arange(w, dtype=torch.float32, device=anchors.device) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack((cx, cy), -1).reshape(h * w, 1, 2)
    half = anchors[None] / 2
    return torch.cat((centres - half, centres + half), -1).reshape(-1, 4)


def fgfi_mask(
    gt_boxes: torch.Tensor,
    gt_valid: torch.Tensor,
    shapes: Sequence[tuple[int, int]],
    strides: Sequence[float],
    anchors: Sequence[torch.Tensor],
    psi: float = 0.5,
    max_over: str = "all",
) -> list[torch.Tensor]:
    """Fine-grained imitation mask (Wang et al., CVPR 2019, "Distilling object detectors with FGFI").

    For each GT box the IoU with every virtual anchor is computed; with ``m`` that GT's maximum IoU (over all
    levels when ``max_over == "all"``, the paper's single-level rule generalised; over the level alone when
    ``"level"``), an anchor is selected when ``IoU > psi * m`` (strict). A location is in the mask when any of
    its anchors is selected for any GT (OR over anchors and GTs).

    Args:
        gt_boxes (torch.Tensor): (B, M, 4) GT boxes, xyxy in input-image PIXELS (padded).
        gt_valid (torch.Tensor): (B, M) bool, True for real (non-padding) GT rows.
        shapes (Sequence[tuple[int, int]]): Per-level feature map (H, W).
        strides (Sequence[float]): Per-level stride in pixels.
        anchors (Sequence[torch.Tensor]): Per-level (A_l, 2) anchor (w, h) in PIXELS.
        psi (float): Threshold factor on the per-GT maximum IoU.
        max_over (str): ``"all"`` (max over all levels) or ``"level"`` (max per level).

    Returns:
        (list[torch.Tensor]): Per level a (B, H, W) bool mask.
    """
    if max_over not in {"all", "level"}:
        raise ValueError(f"fgfi max_over must be 'all' or 'level', got {max_over!r}")
    if not (len(shapes) == len(strides) == len(anchors)):
        raise ValueError(f"fgfi_mask: {len(shapes)} shapes, {len(strides)} strides, {len(anchors)} anchor sets")
    gt_boxes = gt_boxes.float()
    ious = []
    for shape, stride, anc in zip(shapes, strides, anchors):
        boxes = level_anchor_boxes(shape, stride, torch.as_tensor(anc, device=gt_boxes.device))
        ious.append(_pairwise_iou(gt_boxes, boxes) * gt_valid[..., None])  # (B, M, K_l)
    if max_over == "all":
        gmax = torch.stack([iou.amax(-1) if iou.shape[-1] else iou.sum(-1) for iou in ious], -1).amax(-1)
        maxes = [gmax] * len(ious)
    else:
        maxes = [iou.amax(-1) if iou.shape[-1] else iou.sum(-1) for iou in ious]
    masks = []
    for iou, m, shape, anc in zip(ious, maxes, shapes, anchors):
        selected = (iou > psi * m[..., None]) & gt_valid[..., None]  # (B, M, K)
        b = gt_boxes.shape[0]
        masks.append(selected.any(1).view(b, shape[0], shape[1], len(anc)).any(-1))
    return masks


def fgfi_loss(
    adapted: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
) -> torch.Tensor:
    """FGFI imitation loss (Wang et al., CVPR 2019).

    ``L = 1 / (2 N_p) * sum_levels sum_{masked (b, y, x)} sum_c (f_adap(s) - t)^2`` with ``N_p`` the number of
    masked locations over all levels (not times channels). Zero (with a graph) when no location is masked.

    Args:
        adapted (Sequence[torch.Tensor]): Per level the adapted student feature (B, C_t, H, W).
        teacher (Sequence[torch.Tensor]): Per level the teacher feature (B, C_t, H, W).
        masks (Sequence[torch.Tensor]): Per level the (B, H, W) bool imitation mask.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    total = adapted[0].new_zeros(())
    n_p = 0
    for s, t, m in zip(adapted, teacher, masks):
        if s.shape != t.shape:
            raise ValueError(f"fgfi_loss: adapted student {tuple(s.shape)} vs teacher {tuple(t.shape)}")
        m = m.to(s.dtype)[:, None]
        total = total + ((s - t.to(s.dtype)) ** 2 * m).sum()
        n_p = n_p + m.sum()
    return total / (2 * torch.as_tensor(n_p, dtype=total.dtype, device=total.device).clamp(min=1))


def conv2d_at(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, index: Sequence[torch.Tensor],
              padding: tuple[int, int]) -> torch.Tensor:
    """Values of the zero-padded, stride-1 ``F.conv2d(x, weight, bias, padding=padding)`` at some locations.

    Each output location is the dot product of the conv weight with the input's zero-padded ``kh x kw`` patch
    there, so gathering only those patches (from the padded map) and one matmul gives the same values and the
    same gradients (w.r.t. ``x``, ``weight`` and ``bias``) as the dense conv followed by the same gather, up to
    float rounding, at a cost proportional to the number of locations instead of the map.

    Args:
        x (torch.Tensor): (B, C_in, H, W) input.
        weight (torch.Tensor): (C_out, C_in, kh, kw) conv weight, with ``kh == 2 * padding[0] + 1`` and
            ``kw == 2 * padding[1] + 1`` (the output has the input's size).
        bias (torch.Tensor | None): (C_out,) conv bias.
        index (Sequence[torch.Tensor]): ``(b, y, x)`` long tensors of N locations, e.g.
            ``mask.nonzero(as_tuple=True)``.
        padding (tuple[int, int]): Zero padding (rows, columns).

    Returns:
        (torch.Tensor): (N, C_out) conv outputs, row i at location ``(b[i], y[i], x[i])``.
    """
    c_out, c_in, kh, kw = weight.shape
    ph, pw = padding
    if x.shape[1] != c_in or kh != 2 * ph + 1 or kw != 2 * pw + 1:
        raise ValueError(f"conv2d_at: input {tuple(x.shape)}, weight {tuple(weight.shape)}, padding {padding}: "
                         "needs C_in to match and a same-size output (kernel = 2 x padding + 1)")
    b, y, xx = index
    xp = F.pad(x, (pw, pw, ph, ph))
    rows = y[:, None] + torch.arange(kh, device=x.device)  # (N, kh) rows of the patch in the padded map
    cols = xx[:, None] + torch.arange(kw, device=x.device)  # (N, kw)
    patches = xp[b[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N, kh, kw, C_in)
    patches = patches.permute(0, 3, 1, 2).reshape(len(b), c_in * kh * kw)  # the weight's (C_in, kh, kw) order
    return F.linear(patches, weight.reshape(c_out, c_in * kh * kw), bias)


def _adapter_conv(adapter: torch.nn.Module) -> torch.nn.Conv2d:
    """Return the conv of an FGFI adapter, checked to be ``Sequential(Conv2d(stride 1, zero padding), ReLU)``."""
    conv = adapter[0] if isinstance(adapter, torch.nn.Sequential) and len(adapter) == 2 else None
    if not (isinstance(conv, torch.nn.Conv2d) and isinstance(adapter[1], torch.nn.ReLU) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple)):
        raise ValueError(f"fgfi adapter must be Sequential(Conv2d with stride 1 and zero padding, ReLU), got {adapter}")
    return conv


def fgfi_adapted_loss(
    adapters: Sequence[torch.nn.Module],
    student: Sequence[torch.Tensor],
    teacher: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    dense_above: float = 0.25,
) -> torch.Tensor:
    """``fgfi_loss([adapter(s) ...], teacher, masks)`` with each adapter evaluated only where the mask is set.

    The loss reads the adapted student at the masked locations only (a small fraction of the map), so each
    adapter (``Conv2d`` with zero padding and stride 1, then ``ReLU``, as ``model.make_adapter`` builds it) is
    evaluated there with ``conv2d_at``: the same value and gradients as the dense form, up to float rounding. A
    level whose mask covers more than ``dense_above`` of its locations runs the dense conv and gathers instead
    (cheaper there; same result).

    Args:
        adapters (Sequence[torch.nn.Module]): Per level ``nn.Sequential(nn.Conv2d, nn.ReLU)``.
        student (Sequence[torch.Tensor]): Per level the student feature (B, C_s, H, W).
        teacher (Sequence[torch.Tensor]): Per level the teacher feature (B, C_t, H, W).
        masks (Sequence[torch.Tensor]): Per level the (B, H, W) bool imitation mask.
        dense_above (float): Masked fraction of a level above which its adapter runs densely.

    Returns:
        (torch.Tensor): Scalar loss, zero (with a graph through the adapters) when no location is masked.
    """
    if not (len(adapters) == len(student) == len(teacher) == len(masks)):
        raise ValueError(f"fgfi: {len(adapters)} adapters, {len(student)} student, {len(teacher)} teacher, "
                         f"{len(masks)} mask levels")
    total, n_p = student[0].new_zeros(()), 0
    for adapter, s, t, m in zip(adapters, student, teacher, masks):
        conv = _adapter_conv(adapter)
        if m.shape != (s.shape[0], *s.shape[2:]) or t.shape != (s.shape[0], conv.out_channels, *s.shape[2:]):
            raise ValueError(f"fgfi: student {tuple(s.shape)}, teacher {tuple(t.shape)}, mask {tuple(m.shape)}")
        b, y, x = m.nonzero(as_tuple=True)
        if len(b) > dense_above * m.numel():
            a = adapter(s)[b, :, y, x]  # (N, C_t)
        else:
            a = conv2d_at(s, conv.weight, conv.bias, (b, y, x), conv.padding).relu()
        total = total + ((a - t[b, :, y, x].to(a.dtype)) ** 2).sum()
        n_p += len(b)
    return total / (2 * max(n_p, 1))


def teacher_confidence(
    teacher_scores: torch.Tensor, mode: str = "none", threshold: float = 0.5, assigned: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-location weights from the teacher's class scores or from the label assignment.

    Args:
        teacher_scores (torch.Tensor): (B, nc, A) teacher class logits.
        mode (str): ``"none"`` (all 1), ``"soft"`` (max sigmoid score), ``"hard"`` (1 where the max sigmoid
            score exceeds ``threshold``, else 0) or ``"assigned"`` (1 on the positives of the batch's label
            assignment, ``assigned``, else 0).
        threshold (float): Confidence threshold for ``"hard"``.
        assigned (torch.Tensor, optional): (B, A) bool foreground mask of the assignment (``"assigned"`` only).

    Returns:
        (torch.Tensor): (B, A) non-negative weights.
    """
    if mode == "none":
        return teacher_scores.new_ones(teacher_scores.shape[0], teacher_scores.shape[2])
    if mode == "assigned":
        if assigned is None:
            raise ValueError("teacher weighting 'assigned' needs the label assignment's foreground mask")
        return assigned.to(teacher_scores.dtype)
    conf = teacher_scores.detach().float().sigmoid().amax(1)
    if mode == "soft":
        return conf
    if mode == "hard":
        return (conf > threshold).to(conf.dtype)
    raise ValueError(f"teacher weighting must be 'none', 'soft', 'hard' or 'assigned', got {mode!r}")


def _weighted_mean(per_loc: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of a (B, A) tensor weighted by (B, A) weights; 0 (with a graph) when all weights are 0."""
    if weights is None:
        return per_loc.mean()
    w = weights.to(per_loc.dtype)
    return (per_loc * w).sum() / w.sum().clamp(min=1e-9)


def dfl_kl(student_dfl: torch.Tensor, teacher_dfl: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-location KL(softmax(t/T) || softmax(s/T)) * T^2 on DFL bins, mean over bins and over the 4 sides.

    The mean over the ``reg_max`` bins follows mmdetection's ``KnowledgeDistillationKLDivLoss`` (used by LD),
    so a weight means the same whatever ``reg_max`` is.

    Args:
        student_dfl (torch.Tensor): (B, 4 * reg_max, A) student box logits (ultralytics ``preds["boxes"]``).
        teacher_dfl (torch.Tensor): (B, 4 * reg_max, A) teacher box logits.
        temperature (float): Softmax temperature T.

    Returns:
        (torch.Tensor): (B, A) KL per location.
    """
    if student_dfl.shape != teacher_dfl.shape:
        raise ValueError(f"DFL shapes differ: student {tuple(student_dfl.shape)}, teacher {tuple(teacher_dfl.shape)}")
    b, c, a = student_dfl.shape
    s = student_dfl.float().view(b, 4, c // 4, a) / temperature
    t = teacher_dfl.float().view(b, 4, c // 4, a) / temperature
    log_ps, log_pt = s.log_softmax(2), t.log_softmax(2)
    kl = (log_pt.exp() * (log_pt - log_ps)).mean(2)  # (B, 4, A): mean over bins
    return kl.mean(1) * temperature**2


def binary_kl(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s))) from logits.

    Equal to ``BCE(sigmoid(s), sigmoid(t)) - H(sigmoid(t))``: the gradient is that of the BCE against the teacher's
    soft targets, ``sigmoid(s) - sigmoid(t)`` per logit (no ``sigmoid'`` factor, unlike an L2 on probabilities),
    and the value is exactly 0 when student equals teacher.

    Args:
        student_scores (torch.Tensor): Student class logits.
        teacher_scores (torch.Tensor): Teacher class logits, same shape.

    Returns:
        (torch.Tensor): Non-negative tensor of the input shape.
    """
    s, t_logit = student_scores.float(), teacher_scores.float().detach()
    t = t_logit.sigmoid()
    bce = F.binary_cross_entropy_with_logits(s, t, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(t_logit, t, reduction="none")
    return (bce - entropy).clamp(min=0)


def teacher_score_sum(teacher_scores: torch.Tensor) -> torch.Tensor:
    """Sum of the teacher's sigmoid class scores, clamped to >= 1: the class-KD normaliser.

    The analogue of ultralytics' ``target_scores_sum`` (the detection class loss is a BCE summed over every
    anchor and class divided by the sum of the target scores), with the teacher's scores as the targets.
    """
    return teacher_scores.detach().float().sigmoid().sum().clamp(min=1.0)


def cls_kd_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                normalizer: torch.Tensor | float | None = None) -> torch.Tensor:
    """Class KD as a BCE against the teacher's sigmoid targets, normalised like the detection class loss.

    ``L = sum_{a, c} KL_bin(sigmoid(t_ac) || sigmoid(s_ac)) / N`` with ``N`` the sum of the teacher's scores
    (``teacher_score_sum``) unless given, so the gradient per logit is ``(sigmoid(s) - sigmoid(t)) / N``, of the
    same order as the detection class loss' ``(sigmoid(s) - target) / target_scores_sum``.

    Args:
        student_scores (torch.Tensor): (B, nc, A) student class logits.
        teacher_scores (torch.Tensor): (B, nc, A) teacher class logits.
        normalizer (torch.Tensor | float, optional): ``N``; default the sum of the teacher's scores.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    n = teacher_score_sum(teacher_scores) if normalizer is None else normalizer
    return binary_kl(student_scores, teacher_scores).sum() / n


def response_loss(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    student_dfl: torch.Tensor,
    teacher_dfl: torch.Tensor,
    lam: float = 0.5,
    temperature: float = 1.0,
    weights: torch.Tensor | None = None,
    cls_form: str = "bce",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrated (response-based) distillation (Z. Cheng, 2023, "Integrated Knowledge Distillation ...").

    ``L = lam * L_cls + (1 - lam) * L_reg`` with the task weight ``lam`` and

    * ``L_cls``: ``cls_form="bce"`` (default) ``cls_kd_loss``: BCE against the teacher's sigmoid targets over
      every anchor, divided by the sum of the teacher's scores; ``cls_form="l2"`` the paper's L2 on the
      class probabilities, ``sum_a w_a mean_c (sigmoid(s) - sigmoid(t))^2 / sum_a w_a``. The L2 carries a
      ``sigmoid'(s)`` factor (about 0.01 for a cold student) and was measured 20,000 times below the detection
      class loss: keep it only to reproduce the paper.
    * ``L_reg``: ``sum_a w_a KL_dfl(t || s) / sum_a w_a`` on the DFL bins (mean over bins and sides, times
      T^2; "KL after softmax" mapped onto the YOLOv5u DFL head as in LD), on the locations ``weights``
      selects (teacher-confident or assigned ones; uniform if None).

    Args:
        student_scores (torch.Tensor): (B, nc, A) student class logits.
        teacher_scores (torch.Tensor): (B, nc, A) teacher class logits.
        student_dfl (torch.Tensor): (B, 4 * reg_max, A) student box logits.
        teacher_dfl (torch.Tensor): (B, 4 * reg_max, A) teacher box logits.
        lam (float): Task weight between classification and localisation, in [0, 1].
        temperature (float): Softmax temperature T for the DFL bins.
        weights (torch.Tensor, optional): (B, A) location weights of the box half (and of the L2 class half).
        cls_form (str): ``"bce"`` or ``"l2"``.

    Returns:
        (tuple[torch.Tensor, torch.Tensor, torch.Tensor]): Total, L_cls and L_reg scalars.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"response lam must be in [0, 1], got {lam}")
    if cls_form == "bce":
        l_cls = cls_kd_loss(student_scores, teacher_scores)
    elif cls_form == "l2":
        l2 = ((student_scores.float().sigmoid() - teacher_scores.float().sigmoid()) ** 2).mean(1)  # (B, A)
        l_cls = _weighted_mean(l2, weights)
    else:
        raise ValueError(f"response cls_form must be 'bce' or 'l2', got {cls_form!r}")
    if lam == 1.0:  # class KD only: the box distributions are not read (they may differ in bins, or be absent)
        return l_cls, l_cls, l_cls.new_zeros(())
    l_reg = _weighted_mean(dfl_kl(student_dfl, teacher_dfl, temperature), weights)
    return lam * l_cls + (1 - lam) * l_reg, l_cls, l_reg


def ld_loss(
    student_dfl: torch.Tensor, teacher_dfl: torch.Tensor, temperature: float = 10.0, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Localization distillation (Zheng et al., CVPR 2022, "Localization Distillation for Dense Object Detection").

    ``L_LD = sum_a w_a * KL_dfl(t || s) / sum_a w_a`` on the DFL bins (mean over bins and sides, times T^2, as
    mmdetection's ``KnowledgeDistillationKLDivLoss``); the paper uses T = 10 on the positive locations (the
    main distillation region): pass the assignment's foreground mask as ``weights``.

    Args:
        student_dfl (torch.Tensor): (B, 4 * reg_max, A) student box logits.
        teacher_dfl (torch.Tensor): (B, 4 * reg_max, A) teacher box logits.
        temperature (float): Softmax temperature.
        weights (torch.Tensor, optional): (B, A) location weights; uniform if None.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    return _weighted_mean(dfl_kl(student_dfl, teacher_dfl, temperature), weights)


def bckd_cls_loss(
    student_scores: torch.Tensor, teacher_scores: torch.Tensor, beta: float = 1.0,
    num_pos: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Binary classification KD (Yang et al., ICCV 2023, "Bridging Cross-task Protocol Inconsistency for KD").

    Per anchor and class a binary cross-entropy against the teacher's sigmoid score, modulated as in quality
    focal loss, summed over every anchor and class and divided by the number of positives (as the authors'
    ``avg_factor``): ``L = sum_{a, c} BCE(sigmoid(s_ac), sigmoid(t_ac)) * |sigmoid(t_ac) - sigmoid(s_ac)|^beta
    / max(N_pos, 1)``. The modulation makes the loss exactly 0 when student equals teacher.

    Args:
        student_scores (torch.Tensor): (B, nc, A) student class logits.
        teacher_scores (torch.Tensor): (B, nc, A) teacher class logits.
        beta (float): Modulation exponent.
        num_pos (torch.Tensor | float): Number of positive locations of the batch's label assignment.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    s = student_scores.float()
    t = teacher_scores.float().detach().sigmoid()
    bce = F.binary_cross_entropy_with_logits(s, t, reduction="none")
    mod = (t - s.sigmoid()).abs().pow(beta)
    n = torch.as_tensor(num_pos, dtype=bce.dtype, device=bce.device).clamp(min=1.0)
    return (bce * mod).sum() / n


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of corresponding xyxy boxes ``a[..., i]`` and ``b[..., i]`` (same shape (..., 4))."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    return inter / (area_a + area_b - inter + eps)


def bckd_box_loss(student_boxes: torch.Tensor, teacher_boxes: torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """IoU-based localisation KD of BCKD (Yang et al., ICCV 2023): ``sum_a w_a (1 - IoU(b_s, b_t)) / sum_a w_a``.

    Args:
        student_boxes (torch.Tensor): (B, A, 4) decoded student boxes, xyxy.
        teacher_boxes (torch.Tensor): (B, A, 4) decoded teacher boxes, xyxy, same units.
        weights (torch.Tensor, optional): (B, A) location weights (the authors: the teacher's max score).

    Returns:
        (torch.Tensor): Scalar loss.
    """
    return _weighted_mean(1.0 - box_iou_pairs(student_boxes.float(), teacher_boxes.float().detach()), weights)


def blend_predictions(student: torch.Tensor, teacher: torch.Tensor, alpha: float) -> torch.Tensor:
    """``alpha * teacher + (1 - alpha) * student``; exactly ``student`` when ``alpha == 0``, ``teacher`` at 1.

    Used by label-assignment distillation (Nguyen et al., WACV 2022, "Improving Object Detection by Label
    Assignment Distillation") to feed the assigner a blend of the teacher's and the student's predictions.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"lad blend must be in [0, 1], got {alpha}")
    if alpha == 0.0:
        return student
    if alpha == 1.0:
        return teacher.to(student.dtype)
    return alpha * teacher.to(student.dtype) + (1.0 - alpha) * student


def schedule_factor(
    kind: str,
    epoch: int,
    epochs: int,
    iteration: int,
    total_iterations: int,
    warmup_iters: int = 0,
    off_last_epochs: int = 0,
    final: float = 0.1,
) -> float:
    """Multiplier of a KD term's weight at one training iteration.

    0 during the first ``warmup_iters`` iterations (the FGFI paper switches imitation off for 400) and during the last
    ``off_last_epochs`` epochs (e.g. the close_mosaic epochs); otherwise with progress
    ``p = iteration / total_iterations``: ``constant`` 1, ``linear`` ``1 - (1 - final) p``, ``cosine``
    ``final + (1 - final) (1 + cos(pi p)) / 2`` (1 -> final).

    Args:
        kind (str): ``"constant"``, ``"linear"`` or ``"cosine"``.
        epoch (int): 0-based epoch.
        epochs (int): Total epochs.
        iteration (int): 0-based global iteration (batch) index.
        total_iterations (int): Total iterations of the run.
        warmup_iters (int): Iterations with the term off at the start.
        off_last_epochs (int): Final epochs with the term off.
        final (float): Final multiplier of the decaying schedules.

    Returns:
        (float): The multiplier.
    """
    if kind not in {"constant", "linear", "cosine"}:
        raise ValueError(f"schedule must be 'constant', 'linear' or 'cosine', got {kind!r}")
    if iteration < warmup_iters or (off_last_epochs > 0 and epoch >= epochs - off_last_epochs):
        return 0.0
    p = min(max(iteration / max(total_iterations, 1), 0.0), 1.0)
    if kind == "constant":
        return 1.0
    if kind == "linear":
        return 1.0 - (1.0 - final) * p
    return final + (1.0 - final) * (1.0 + math.cos(math.pi * p)) / 2
