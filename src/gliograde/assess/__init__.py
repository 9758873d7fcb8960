"""Held-out figures: metrics, calibration, flags, Grad-CAM attention, plots and the report."""
