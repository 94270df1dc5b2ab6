"""coarse: VGG-16 3DMM coefficient regression, Chen20 losses, SAM."""
