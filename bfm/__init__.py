"""bfm: the 3D morphable face model (shape, expression, albedo bases, topology, landmarks, UVs, masks)."""
