"""renderer: differentiable mesh rasterization (C++/CUDA op), interpolation, SH shading, cameras, UV maps."""
