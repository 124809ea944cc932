"""Offline training submodule of kd_traffic_light (never imported by the vehicle runtime).

Run as ``python -m training <command>``; see ``python -m training --help``.
"""
