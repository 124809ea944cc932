"""Locate the package's installed files (config/, launch/) the same way on a ROS install and in a pip venv.

Order: the ament index (colcon/apt install, or a non-editable pip install whose prefix is on
AMENT_PREFIX_PATH), then `<sys.prefix>/share/kd_traffic_light` (non-editable pip install), then the
source tree next to this package (editable install or a checkout: `pip install -e .` installs no
data_files, see docs).
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "kd_traffic_light"


def _ament_share() -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (LookupError, OSError, ValueError):  # not registered / AMENT_PREFIX_PATH unset
        return None


def share_roots() -> list[Path]:
    """Candidate roots holding `config/` and `launch/`, most authoritative first."""
    roots = [_ament_share(), Path(sys.prefix) / "share" / PACKAGE, Path(__file__).resolve().parent.parent]
    return [r for r in roots if r is not None]


def share_path(*parts: str) -> Path:
    """Path of an installed package file, e.g. `share_path("config", "student.yaml")`.

    Args:
        *parts: Path components below the package's share directory.

    Returns:
        The first existing candidate (see the module docstring for the order).

    Raises:
        FileNotFoundError: Naming the file and every place looked in.
    """
    for root in share_roots():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    looked = ", ".join(str(r) for r in share_roots())
    raise FileNotFoundError(f"{PACKAGE} file {'/'.join(parts)!r} not found in: {looked}")
