"""Training with PyTorch Lightning: one model per fold, checkpoints chosen on training patients."""
