"""gliograde: glioma grading (LGG vs HGG) from multi-modal brain MRI slices."""

__version__ = "0.1.0"

MODALITIES = ("flair", "t1ce", "t1", "t2")
"""Channel order of every slice: the order of the reference article (FLAIR, T1ce, T1, T2)."""

SEQUENCE_NAMES = {"flair": "FLAIR", "t1ce": "T1ce", "t1": "T1", "t2": "T2"}
"""How each sequence is named to users."""

GRADES = ("LGG", "HGG")
"""Class index → grade name: 0 is LGG, 1 is HGG."""
