"""The registry of distillation terms: each term is declared once, here.

A ``TermSpec`` holds everything the rest of the code needs about a term: its defaults (the config keys it
accepts), the allowed values of its string settings, its loss column, the function that computes its raw value
on one batch, and the row that documents it. ``training.distill.config`` validates against the specs,
``training.distill.model`` iterates them, and ``docs/training.md``'s term table is generated from them
(``python -m training.distill.terms`` prints it).

A term's compute function receives a ``KDContext`` (everything one batch produced: student and teacher features
and head outputs, the label assignment, decoded boxes) and its frozen ``TermSettings``; it returns a scalar.
``lad`` has no compute function and no column: it acts at the assignment seam (see ``KDDistillationModel.loss``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from training.distill import losses

COMMON_TERM_KEYS: dict[str, Any] = {
    "weight": 1.0,  # multiplier of the term in the total loss (lad: the teacher's share of the assignment)
    "schedule": "constant",  # constant | linear | cosine (1 -> final)
    "final": 0.1,  # final multiplier of the decaying schedules
    "warmup_iters": 0,  # iterations with the term off at the start
    "warmup_epochs": 0.0,  # epochs with the term off at the start (the longer of the two warm-ups applies)
    "off_last_epochs": 0,  # final epochs with the term off; -1 = the run's close_mosaic
}
COMMON_CHOICES: dict[str, tuple[str, ...]] = {"schedule": ("constant", "linear", "cosine")}
WEIGHTINGS = ("none", "soft", "hard", "assigned")


@dataclass(frozen=True)
class TermSettings:
    """One term's resolved settings, immutable (the config is resolved once, then only read).

    Attributes:
        name: Term name (a key of ``TERMS``).
        values: ``(key, value)`` pairs, every key of the spec's defaults; lists are stored as tuples.
    """

    name: str
    values: tuple[tuple[str, Any], ...]

    def __getitem__(self, key: str) -> Any:
        for k, v in self.values:
            if k == key:
                return v
        raise KeyError(f"distill.terms.{self.name} has no setting '{key}'")

    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self.values)

    def as_dict(self) -> dict[str, Any]:
        """Plain (YAML/JSON-friendly) copy, tuples back to lists."""
        return {k: _thaw(v) for k, v in self.values}

    @classmethod
    def from_dict(cls, name: str, settings: Mapping[str, Any]) -> TermSettings:
        """Freeze a resolved settings mapping."""
        return cls(name, tuple((k, _freeze(v)) for k, v in settings.items()))


def _freeze(value: Any) -> Any:
    """Turn lists into tuples, recursively (hashable, immutable)."""
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def _thaw(value: Any) -> Any:
    """Turn tuples into lists, recursively."""
    return [_thaw(v) for v in value] if isinstance(value, (list, tuple)) else value


@dataclass
class KDContext:
    """What one training batch produced, shared by every term (one teacher pass per batch).

    Attributes:
        model: The ``KDDistillationModel`` (adapters, projector, anchors).
        batch: The ultralytics batch.
        img: Input images (B, 3, H, W).
        s_feats, t_feats: Detect-input features per level of student and teacher.
        s_head, t_head: Head outputs ``{"boxes": (B, 4*reg_max, A), "scores": (B, nc, A)}``.
        fg_mask: (B, A) bool positives of the batch's label assignment (stock or LAD).
        target_scores: (B, A, nc) target scores of that assignment.
        decode: ``head -> (B, A, 4)`` xyxy boxes in grid units; ``s_boxes`` / ``t_boxes`` decode on first use
            (only the terms that need boxes pay for the decoding).
    """

    model: Any
    batch: dict
    img: torch.Tensor
    s_feats: list
    t_feats: list
    s_head: dict
    t_head: dict
    fg_mask: torch.Tensor | None = None
    target_scores: torch.Tensor | None = None
    decode: Callable[[dict], torch.Tensor] | None = None
    _boxes: dict = field(default_factory=dict)
    _weights: dict = field(default_factory=dict)

    def _decoded(self, which: str) -> torch.Tensor:
        if which not in self._boxes:
            if self.decode is None:
                raise RuntimeError("KDContext has no box decoder")
            self._boxes[which] = self.decode(self.s_head if which == "s" else self.t_head)
        return self._boxes[which]

    @property
    def s_boxes(self) -> torch.Tensor:
        """Return the student's decoded (B, A, 4) boxes in grid units (decoded once, on first use)."""
        return self._decoded("s")

    @property
    def t_boxes(self) -> torch.Tensor:
        """Return the teacher's decoded (B, A, 4) boxes in grid units (decoded once, on first use)."""
        return self._decoded("t")

    def weights(self, cfg: TermSettings, key: str = "weighting") -> torch.Tensor:
        """(B, A) location weights of a term's ``weighting`` setting (computed once per setting and batch)."""
        k = (cfg[key], cfg["conf_threshold"])
        if k not in self._weights:
            self._weights[k] = losses.teacher_confidence(self.t_head["scores"], k[0], k[1], self.fg_mask)
        return self._weights[k]

    def num_pos(self) -> torch.Tensor:
        """Return the number of positives of the batch's assignment (a tensor, no host sync)."""
        if self.fg_mask is None:
            raise RuntimeError("the label assignment was not recorded for this batch")
        return self.fg_mask.sum().float()


@dataclass(frozen=True)
class TermSpec:
    """Declaration of one distillation term.

    Attributes:
        name: Config key under ``distill.terms``.
        column: Loss column in ultralytics' results.csv (None: the term adds no loss).
        defaults: The term's own settings with their defaults (the common keys are added to every term).
        choices: Allowed values of string settings.
        compute: ``(KDContext, TermSettings) -> scalar`` raw term value, or None (acts elsewhere).
        formula: One-line formula for the docs.
        source: Paper and where the default comes from.
        dfl_bins: ``settings -> bool``: whether the term compares the teacher's and student's DFL box
            distributions bin by bin with these settings (then both heads need the same ``reg_max`` > 1).
    """

    name: str
    column: str | None
    defaults: Mapping[str, Any]
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    compute: Callable[[KDContext, TermSettings], torch.Tensor] | None = None
    formula: str = ""
    source: str = ""
    dfl_bins: Callable[[TermSettings], bool] | None = None

    def all_defaults(self) -> dict[str, Any]:
        """Return the common keys overlaid with the term's own defaults."""
        return {**COMMON_TERM_KEYS, **self.defaults}

    def all_choices(self) -> dict[str, tuple[str, ...]]:
        """Return the allowed values of every string setting."""
        return {**COMMON_CHOICES, **self.choices}


# ------------------------------------------------------------------------------------------ compute functions
def _fgfi(ctx: KDContext, cfg: TermSettings) -> torch.Tensor:
    return ctx.model.fgfi_term(ctx, cfg)


def _response(ctx: KDContext, cfg: TermSettings) -> torch.Tensor:
    return losses.response_loss(
        ctx.s_head["scores"], ctx.t_head["scores"], ctx.s_head["boxes"], ctx.t_head["boxes"],
        cfg["lam"], cfg["temperature"], ctx.weights(cfg), cfg["cls_form"],
    )[0]


def _ld(ctx: KDContext, cfg: TermSettings) -> torch.Tensor:
    return losses.ld_loss(ctx.s_head["boxes"], ctx.t_head["boxes"], cfg["temperature"], ctx.weights(cfg))


def _bckd(ctx: KDContext, cfg: TermSettings) -> torch.Tensor:
    cls = losses.bckd_cls_loss(ctx.s_head["scores"], ctx.t_head["scores"], cfg["beta"], ctx.num_pos())
    if cfg["box_weight"] == 0:
        return cls
    box = losses.bckd_box_loss(ctx.s_boxes, ctx.t_boxes, ctx.weights(cfg))
    return cls + cfg["box_weight"] * box


def _native(ctx: KDContext, cfg: TermSettings) -> torch.Tensor:
    return ctx.model.native_term(ctx)


_BOX_WEIGHTING = {"weighting": WEIGHTINGS}

TERMS: dict[str, TermSpec] = {
    spec.name: spec
    for spec in (
        TermSpec(
            "fgfi", "fgfi_loss",
            {"weight": 0.1, "warmup_epochs": 1.0, "psi": 0.5, "max_over": "all", "anchors": "yolov5",
             "anchors_per_level": 3, "adapter_init": "default"},
            {"max_over": ("all", "level"), "adapter_init": ("default", "paper")},
            _fgfi,
            "1/(2 N_p) sum_masked sum_c (f_adap(s) - t)^2 on the Detect inputs, mask IoU > psi * max IoU",
            "Wang et al., CVPR 2019. Paper preset (training/configs/fgfi.yaml): weight 0.01, 400 warm-up "
            "iterations, adapter N(0, 1e-4); defaults here: PyTorch's conv init, 1 warm-up epoch, weight by "
            "gradient share",
        ),
        TermSpec(
            "response", "resp_loss",
            {"lam": 0.5, "temperature": 1.0, "cls_form": "bce", "weighting": "assigned", "conf_threshold": 0.5},
            {"cls_form": ("bce", "l2"), **_BOX_WEIGHTING},
            _response,
            "lam * KL_bin(t, s) summed / sum sigmoid(t) + (1 - lam) * KL_dfl(t, s) on weighted locations",
            "Cheng 2023 (integrated KD: coupled-head student, task weight lam); cls_form l2 = the paper's L2",
            dfl_bins=lambda cfg: cfg["lam"] < 1.0,
        ),
        TermSpec(
            "ld", "ld_loss",
            {"weight": 10.0, "temperature": 10.0, "weighting": "assigned", "conf_threshold": 0.5},
            _BOX_WEIGHTING,
            _ld,
            "KL(softmax(t/T), softmax(s/T)) T^2 on the DFL bins, mean over bins, on weighted locations",
            "Zheng et al., CVPR 2022 (T = 10, positive locations)",
            dfl_bins=lambda cfg: True,
        ),
        TermSpec(
            "bckd", "bckd_loss",
            {"weight": 5.0, "beta": 1.0, "box_weight": 1.0, "weighting": "soft", "conf_threshold": 0.5},
            _BOX_WEIGHTING,
            _bckd,
            "sum BCE(s, sigmoid(t)) abs(sigmoid(t) - sigmoid(s))^beta / N_pos + box_weight * (1 - IoU(b_s, b_t))",
            "Yang et al., ICCV 2023 (binary class KD / positives, IoU box KD weighted by teacher score)",
        ),
        TermSpec(
            "native", "dis_loss",
            {"weight": 6.0},
            {},
            _native,
            "ultralytics: score-weighted L2 of projected Detect-input features",
            "ultralytics 8.4.190 distill_model / dis (default 6.0), the peer to beat",
        ),
        TermSpec(
            "lad", None,
            {"schedule": "linear", "final": 0.0},
            {},
            None,
            "assigner scores/boxes = w * teacher + (1 - w) * student (w = weight x schedule)",
            "Nguyen et al., WACV 2022 (label assignment distillation); anneals teacher -> student by default",
        ),
    )
}
TERM_ORDER: tuple[str, ...] = tuple(TERMS)


def docs_table() -> str:
    """Return the Markdown table of terms for docs/training.md, generated from the registry."""
    rows = ["| term | column | formula | defaults | source |", "|---|---|---|---|---|"]
    for spec in TERMS.values():
        defaults = ", ".join(f"{k}={v}" for k, v in spec.all_defaults().items())
        rows.append(f"| `{spec.name}` | {spec.column or '-'} | {spec.formula} | {defaults} | {spec.source} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(docs_table(), end="")
