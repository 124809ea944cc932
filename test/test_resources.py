"""resources.py: ``share_path`` finds the package's installed files through the ament index and in the source tree."""

import shutil
import sys
from pathlib import Path

import pytest

from kd_traffic_light import resources

REPO = Path(__file__).resolve().parent.parent


def test_share_path_falls_back_to_the_source_tree(monkeypatch):
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    monkeypatch.setattr(sys, "prefix", "/nonexistent-prefix")
    assert resources.share_path("config", "student.yaml") == REPO / "config" / "student.yaml"
    assert resources.share_path("launch", "detector.launch.py").is_file()
    with pytest.raises(FileNotFoundError, match="nothing.yaml"):
        resources.share_path("config", "nothing.yaml")


def test_share_path_uses_the_ament_index_of_an_install_tree(tmp_path, monkeypatch, dist):
    # Lay the data_files out as `pip install .`/colcon would, then resolve through the ament index.
    for dest, files in dist.data_files:
        (tmp_path / dest).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(REPO / f, tmp_path / dest / Path(f).name)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    share = tmp_path / "share" / "kd_traffic_light"
    for rel in ["config/student.yaml", "config/teacher.yaml", "config/comparison.yaml",
                "config/kd_traffic_light.rviz", "launch/detector.launch.py", "launch/teacher_student.launch.py"]:
        assert resources.share_path(*rel.split("/")) == share / rel
