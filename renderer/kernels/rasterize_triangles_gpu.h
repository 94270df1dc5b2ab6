// CUDA rasterizer launcher (TensorFlow-free interface).
//
// Same conventions and float64 arithmetic as rasterize_triangles_core.h, so
// that with nvcc's -fmad=false the GPU output equals the CPU output.
#ifndef FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_GPU_H_
#define FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_GPU_H_

#include <cstdint>
#include <string>

#include "rasterize_triangles_core.h"

namespace fullpose {

// Bytes of device scratch memory RasterizeTrianglesGpu needs.
int64_t GpuScratchBytes(const RasterizeParams& params);

// Result of input validation on the device: -1 when the input is fine, else
// the flat index of the first bad element and its value.
struct GpuValidation {
  int64_t bad_vertex = -1;
  float bad_vertex_value = 0.0f;
  int64_t bad_triangle = -1;
  int32_t bad_triangle_value = 0;
};

// Validates and rasterizes on `stream` (a cudaStream_t). All pointers are
// device memory; shapes as in RasterizeTriangles. Synchronizes the stream
// once (to read the validation result). Returns an empty string on success,
// else a CUDA error message; when validation fails nothing is rasterized.
std::string RasterizeTrianglesGpu(const RasterizeParams& params,
                                  const float* vertices,
                                  const int32_t* triangles, void* stream,
                                  void* scratch, GpuValidation* validation,
                                  int32_t* triangle_ids, float* barycentrics,
                                  float* depth);

// Bytes of device scratch memory RasterizeTrianglesGradGpu needs.
int64_t GpuGradScratchBytes(const RasterizeParams& params);

// Gradient of the barycentrics w.r.t. the vertices on `stream` (see
// RasterizeTrianglesGrad in rasterize_triangles_core.h for the formulas and
// shapes; params.image_height/width are the triangle_ids' H and W). All
// pointers are device memory. Sums in float64 with atomics (the order of
// additions, hence the last bits, may vary between runs); pixels with an id
// or vertex index out of range are skipped. Does not synchronize. Returns an
// empty string on success, else a CUDA error message.
std::string RasterizeTrianglesGradGpu(const RasterizeParams& params,
                                      const float* vertices,
                                      const int32_t* triangles,
                                      const int32_t* triangle_ids,
                                      const float* d_barycentrics,
                                      void* stream, void* scratch,
                                      float* d_vertices);

// InterpolateAttributes (rasterize_triangles_core.h) on `stream`; device
// pointers; pixels with an out-of-range id or vertex index get zeros. Does
// not synchronize. Returns an empty string or a CUDA error message.
std::string InterpolateAttributesGpu(const InterpolateParams& params,
                                     const float* attributes,
                                     const int32_t* triangles,
                                     const int32_t* triangle_ids,
                                     const float* barycentrics, void* stream,
                                     float* values);

// InterpolateAttributesGrad on `stream`: d_attributes summed with float32
// atomics (the order of additions may vary between runs), d_barycentrics
// written per pixel. Does not synchronize.
std::string InterpolateAttributesGradGpu(const InterpolateParams& params,
                                         const float* attributes,
                                         const int32_t* triangles,
                                         const int32_t* triangle_ids,
                                         const float* barycentrics,
                                         const float* d_values, void* stream,
                                         float* d_attributes,
                                         float* d_barycentrics);

}  // namespace fullpose

#endif  // FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_GPU_H_
