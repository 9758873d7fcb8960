"""One subject's volumes → normalised axial slices: what prepare, predict and explain share."""
