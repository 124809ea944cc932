"""The state classifier: a small CNN that reads a light's state from a crop of the frame (offline training).

``data`` cuts the labelled lights of a ``relevance_state`` YOLO dataset into crops, ``model`` is the network,
``train`` trains, evaluates and exports it to ONNX for ``kd_traffic_light.core.state_classifier``, ``cli`` is
``python -m training state-classifier``. docs/training.md ("Light state") says why and how.
"""
