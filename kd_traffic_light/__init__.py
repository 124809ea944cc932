"""kd_traffic_light: traffic-light relevance detection with a distilled YOLO student (ROS 2 runtime).

The ROS-free core lives in :mod:`kd_traffic_light.core`; the nodes are thin wrappers around it.
"""

__version__ = "0.1.0"
