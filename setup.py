"""ament_python setup for kd_traffic_light: installs the runtime package only (never training/)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "kd_traffic_light"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="kd_traffic_light maintainers",
    maintainer_email="maintainers@kd-traffic-light.invalid",
    description="Traffic-light relevance detection with a distilled YOLO student (ROS 2 nodes).",
    license="AGPL-3.0-or-later",
    entry_points={
        "console_scripts": [
            f"detector_node = {PACKAGE}.detector_node:main",
            f"comparison_node = {PACKAGE}.comparison_node:main",
            f"replay = {PACKAGE}.tools.replay:main",
            f"bag_eval = {PACKAGE}.tools.bag_eval:main",
        ],
    },
)
