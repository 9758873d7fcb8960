"""Trained models on new slices: loading a run's models, running them, the one patient rule."""
