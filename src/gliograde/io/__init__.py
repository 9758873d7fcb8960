"""Reading what users bring (folder layouts, label CSVs, NIfTI volumes), checking it, and
writing SYNTHETIC cohorts."""
