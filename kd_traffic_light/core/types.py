"""Plain data types shared by the detector, the comparison and the drawing code."""

from __future__ import annotations

from dataclasses import dataclass

from kd_traffic_light.core.classes import DEFAULT_SCHEME, class_names

# The default scheme's class order (index -> name); core/classes.py has every scheme.
CLASS_NAMES: dict[int, str] = class_names(DEFAULT_SCHEME)


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected traffic light, in ORIGINAL image pixels (letterbox and resize undone).

    Attributes:
        x1: Left edge (pixels).
        y1: Top edge (pixels).
        x2: Right edge (pixels).
        y2: Bottom edge (pixels).
        score: Confidence in [0, 1].
        class_id: Class index in the model's scheme (core/classes.py: 0 relevant, 1 not_relevant by default).
        label: Class name as the model reports it ("" when unknown).
    """

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str = ""

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """Corners as ``(x1, y1, x2, y2)``."""
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        """Box centre ``(cx, cy)`` in pixels."""
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
