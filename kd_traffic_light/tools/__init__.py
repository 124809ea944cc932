"""Offline tools and process helpers beside the vehicle nodes; nothing here runs on the car.

* :mod:`~kd_traffic_light.tools.replay`: replay a rosbag2's camera topics with their original stamps
  (``python -m kd_traffic_light.tools.replay BAG``, console script ``replay``);
* :mod:`~kd_traffic_light.tools.bag_eval`: student vs teacher over a bag, every node a real process
  (``python -m kd_traffic_light.tools.bag_eval BAG ...``, console script ``bag_eval``);
* :mod:`~kd_traffic_light.tools.processes`: nodes as child processes (environment, start, stop, logs);
* :mod:`~kd_traffic_light.tools.probe`: an in-process rclpy node to talk to them (tests, benchmarks, bag_eval).

The nodes and ``kd_traffic_light.core`` never import this package (test/test_layering.py). See docs/runtime.md.
"""
