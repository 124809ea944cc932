"""The DTLD left camera the synthetic scenes are seen through: intrinsics, mounting, projection."""

from __future__ import annotations

# DTLD left camera (calibration/intrinsic_left.yml, projection_left.yml of the official parser).
FX, CX, CY = 2290.51, 1066.94, 477.152
K_LEFT = (FX, 0.0, CX, 0.0, FX, CY, 0.0, 0.0, 1.0)
D_LEFT = (-0.036004, 0.0, 0.0, 0.0, 0.0)
R_LEFT = (0.999999, -0.001186, 0.000677, 0.001181, 0.999972, 0.007356, -0.000686, -0.007355, 0.999973)
P_LEFT = (2269.699585, 0.0, 1051.294655, 0.0, 0.0, 2269.699585, 458.462746, 0.0, 0.0, 0.0, 1.0, 0.0)
CAM_HEIGHT = 1.3  # m above the road


def project(x: float, y: float, z: float) -> tuple[float, float]:
    """Camera projection of a world point (x right, y up from the road, z forward) to pixels."""
    return CX + FX * x / z, CY - FX * (y - CAM_HEIGHT) / z
