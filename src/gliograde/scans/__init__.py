"""Raw hospital scans: DICOM exports read, their series identified (FLAIR, T1ce, T1, T2)."""
