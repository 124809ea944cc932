"""Coupled-head YOLOv5u variant (vanilla YOLOv5 style): one shared 1x1 prediction conv per level.

The student of the integrated distillation (Z. Cheng, 2023). Each level's shared conv is stored as its box rows
(``cv2[i]``) and class rows (``cv3[i]``), the stock ``Detect`` layout, so checkpoints load, train, resume and
export as any ultralytics model's; :func:`shared_conv` rebuilds the fused conv for inspection::

    import training.distill.heads  # registers CoupledDetect with ultralytics' parse_model (see register)
    ultralytics.YOLO("training/configs/models/yolov5n-coupled.yaml")

Why this storage, the scales and when the import is needed: docs/training.md, "The coupled-head student".
"""

from __future__ import annotations

import copyreg
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from ultralytics.nn import tasks
from ultralytics.nn.modules.head import Detect

MODELS_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"
COUPLED_YAML = MODELS_DIR / "yolov5-coupled.yaml"
"""Scaled coupled-head YOLOv5u yaml; select a scale as ``MODELS_DIR / "yolov5{n,s,m,l,x}-coupled.yaml"``."""

NAME = "CoupledDetect"


class CoupledDetect(Detect):
    """YOLOv5u detection head with one shared 1x1 prediction conv per level (vanilla-YOLOv5 coupling).

    Outputs exactly what ``Detect`` outputs: in training a dict ``{"boxes": (B, 4*reg_max, A),
    "scores": (B, nc, A), "feats": [P3, P4, P5]}``; in inference the decoded ``(B, 4 + nc, A)`` tensor
    (alone in export mode, else with the raw dict). The shared conv of level ``i`` is stored as its box
    rows ``cv2[i]`` and class rows ``cv3[i]`` (why: docs/training.md, "The coupled-head student"); copies and
    pickles of an instance are stock ``Detect`` objects with identical state dicts.

    Examples:
        >>> head = CoupledDetect(nc=2, ch=(64, 128, 256))
        >>> [tuple(shared_conv(head, i).weight.shape) for i in range(head.nl)]
        [(66, 64, 1, 1), (66, 128, 1, 1), (66, 256, 1, 1)]
    """

    def __init__(self, nc: int = 80, reg_max: int = 16, end2end: bool = False, ch: Sequence[int] = ()):
        """Build the coupled head.

        Args:
            nc: Number of classes.
            reg_max: DFL bins per box side.
            end2end: Also build the one-to-one (NMS-free) head, coupled in the same way.
            ch: Input channels of each level (P3, P4, P5).
        """
        super().__init__(nc=nc, reg_max=reg_max, end2end=False, ch=tuple(ch))
        self.cv2 = nn.ModuleList(nn.Sequential(nn.Conv2d(c, 4 * self.reg_max, 1)) for c in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(nn.Conv2d(c, self.nc, 1)) for c in ch)
        if end2end:
            self.one2one_cv2 = nn.ModuleList(nn.Sequential(nn.Conv2d(c, 4 * self.reg_max, 1)) for c in ch)
            self.one2one_cv3 = nn.ModuleList(nn.Sequential(nn.Conv2d(c, self.nc, 1)) for c in ch)

    def __reduce_ex__(self, protocol: Any) -> tuple:
        """Pickle and deep-copy as a stock ``Detect`` so checkpoints never reference ``training``."""
        return copyreg._reconstructor, (Detect, object, None), self.__getstate__()


def is_coupled(head: nn.Module) -> bool:
    """Return True when ``head`` is a ``Detect`` whose box and class branches are single 1x1 convs.

    This holds for a freshly built :class:`CoupledDetect` and for its copies or unpickled checkpoints
    (which are stock ``Detect`` instances).
    """
    if not isinstance(head, Detect) or head.cv2 is None:
        return False
    return all(
        isinstance(b, nn.Sequential) and len(b) == 1 and isinstance(b[0], nn.Conv2d)
        and b[0].kernel_size == (1, 1)
        for b in (*head.cv2, *head.cv3)
    )


def shared_conv(head: Detect, level: int) -> nn.Conv2d:
    """Return the single fused ``Conv2d(c_in, 4*reg_max + nc, 1)`` that level ``level`` of a coupled head is.

    Args:
        head: A coupled head (``is_coupled(head)`` must hold).
        level: Detection level index (0 = P3).

    Returns:
        A new conv whose output channels are the box rows then the class rows (weights copied).

    Raises:
        ValueError: If ``head`` is not coupled.
    """
    if not is_coupled(head):
        raise ValueError(f"head {type(head).__name__}: expected a coupled Detect (one 1x1 conv per branch)")
    box, cls = head.cv2[level][0], head.cv3[level][0]
    conv = nn.Conv2d(box.in_channels, box.out_channels + cls.out_channels, 1).to(box.weight)
    with torch.no_grad():
        conv.weight.copy_(torch.cat((box.weight, cls.weight)))
        conv.bias.copy_(torch.cat((box.bias, cls.bias)))
    return conv


def _coupled_parse_model(original: Callable) -> Callable:
    """Wrap ultralytics' ``parse_model`` so yaml rows naming ``CoupledDetect`` build a :class:`CoupledDetect`.

    ``parse_model`` resolves module names in its own globals and picks each module's argument handling by
    identity (``m in {Detect, ...}``), so a subclass cannot be named directly. The wrapper builds the row as
    ``Detect`` (same arguments: nc, reg_max, end2end, input channels) and swaps in the coupled head.
    """

    @functools.wraps(original)
    def parse_model(d: dict, ch: int, verbose: bool = True) -> tuple[nn.Sequential, list[int]]:
        rows = d.get("backbone", []) + d.get("head", [])
        coupled = [i for i, row in enumerate(rows) if row[2] == NAME]
        if not coupled:
            return original(d, ch, verbose)
        nb = len(d.get("backbone", []))
        for i in coupled:
            section, j = ("backbone", i) if i < nb else ("head", i - nb)
            d[section][j] = [*d[section][j][:2], "Detect", *d[section][j][3:]]
        model, save = original(d, ch, verbose)
        for i in coupled:
            det = model[i]
            new = CoupledDetect(
                nc=det.nc,
                reg_max=det.reg_max,
                end2end=getattr(det, "one2one_cv2", None) is not None,
                ch=[_first_conv(seq).in_channels for seq in det.cv2],
            )
            new.i, new.f, new.type = det.i, det.f, f"{__name__}.{NAME}"
            new.np = sum(p.numel() for p in new.parameters())
            model[i] = new
        return model, save

    parse_model.__wrapped_coupled__ = True
    return parse_model


def register() -> None:
    """Make ultralytics build ``CoupledDetect`` from model yamls (idempotent; runs at import).

    Installs the :func:`_coupled_parse_model` wrapper as ``ultralytics.nn.tasks.parse_model`` (the name
    ``DetectionModel`` calls) and exposes ``CoupledDetect`` in that module's namespace.
    """
    if not getattr(tasks.parse_model, "__wrapped_coupled__", False):
        tasks.parse_model = _coupled_parse_model(tasks.parse_model)
    tasks.CoupledDetect = CoupledDetect


def head_cost(head: Detect, imgsz: int) -> dict[str, float]:
    """GFLOPs and parameters (millions) of a detection head alone at a square ``imgsz``.

    The head is profiled with thop (ultralytics' FLOP counter) on feature maps of the size the model's strides
    give at ``imgsz`` (prediction branches only: the DFL/box decoding is post-processing, not part of the head);
    FLOPs = 2 x multiply-accumulates, as in ultralytics' ``get_flops``. The head is left as it was.

    Args:
        head: A built ``Detect`` (or ``CoupledDetect``) with its strides set.
        imgsz: Square input size in pixels.

    Returns:
        ``{"head_gflops": ..., "head_params_m": ...}``.
    """
    import copy

    import thop

    head = copy.deepcopy(head).float().cpu()
    chans = [_first_conv(seq).in_channels for seq in head.cv2]
    feats = [torch.zeros(1, c, max(1, imgsz // int(s)), max(1, imgsz // int(s))) for c, s in zip(chans, head.stride)]
    head.train()
    macs = thop.profile(head, inputs=(feats,), verbose=False)[0]
    params = sum(p.numel() for name, p in head.named_parameters() if not name.startswith("dfl"))
    return {"head_gflops": macs * 2 / 1e9, "head_params_m": params / 1e6}


def head_gflops(model_yaml: str | Path, nc: int = 2, imgsz: int = 640) -> float:
    """GFLOPs of the detection head alone of a model yaml at ``imgsz`` (see ``head_cost``).

    Args:
        model_yaml: Model yaml (e.g. ``yolov5s.yaml`` for the stock decoupled head, or
            ``MODELS_DIR / "yolov5s-coupled.yaml"``).
        nc: Number of classes.
        imgsz: Square input size in pixels.

    Returns:
        The head's GFLOPs.
    """
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(str(model_yaml), nc=nc, verbose=False)
    return head_cost(model.model[-1], imgsz)["head_gflops"]


def _first_conv(module: nn.Module) -> nn.Conv2d:
    """Return the first ``nn.Conv2d`` inside ``module``."""
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def compare_head_gflops(scale: str = "s", nc: int = 2, imgsz: int = 640) -> dict[str, float]:
    """Head GFLOPs of the coupled student next to the stock decoupled YOLOv5u head of the same scale.

    Args:
        scale: YOLOv5 scale letter (n, s, m, l, x).
        nc: Number of classes.
        imgsz: Square input size in pixels.

    Returns:
        ``{"coupled": ..., "decoupled": ...}`` in GFLOPs.
    """
    if scale not in "nsmlx" or len(scale) != 1:
        raise ValueError(f"scale: expected one of n, s, m, l, x, got {scale!r}")
    return {
        "coupled": head_gflops(MODELS_DIR / f"yolov5{scale}-coupled.yaml", nc=nc, imgsz=imgsz),
        "decoupled": head_gflops(f"yolov5{scale}.yaml", nc=nc, imgsz=imgsz),
    }


register()
