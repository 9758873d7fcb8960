"""The network: a 4-channel ResNet18 with a grade head and a tumour head, and its weights."""
