// TensorFlow-free core of the triangle rasterizer (CPU).
//
// Conventions (shared with renderer/reference_rasterizer.py, which follows the
// same arithmetic step by step in float64 so that both agree bit for bit):
//   * Input vertices are homogeneous clip coordinates (x, y, z, w), or NDC
//     (x, y, z) with w = 1. NDC = clip / w.
//   * NDC x = -1 is the left image edge, +1 the right; y = +1 the TOP row.
//     Pixel (row r, col c) has its centre at x = -1 + (2c+1)/W,
//     y = 1 - (2r+1)/H. In "pixel space" below, (px, py) = (c, r) at centres:
//       px = (x_ndc + 1) * (W / 2) - 0.5,   py = (1 - y_ndc) * (H / 2) - 0.5.
//   * A triangle is front-facing when counter-clockwise in NDC, i.e. when its
//     pixel-space signed area (y down) is negative.
//   * A pixel is covered when its three edge functions all have the sign of
//     the area (zero included: shared edges are covered by both triangles and
//     the depth test decides). Degenerate (zero-area) triangles are never drawn.
//   * Depth z_ndc is interpolated linearly in screen space; smaller is closer.
//     Fragments with z_ndc outside [-1, 1] are dropped. Triangles with any
//     vertex at w <= 0 are dropped whole (no near-plane clipping).
//   * The nearest fragment wins; on equal depth the lower triangle id wins.
//   * Barycentrics are perspective-correct (divided by w, renormalised).
#ifndef FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_CORE_H_
#define FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_CORE_H_

#include <cstdint>
#include <functional>

namespace fullpose {

// Runs work(begin, end) over [0, total), possibly concurrently. cost_per_unit
// is a rough count of cycles per unit, used to choose block sizes.
using ParallelForFn = std::function<void(
    int64_t total, int64_t cost_per_unit,
    const std::function<void(int64_t, int64_t)>& work)>;

// Returns a ParallelForFn that runs everything on the calling thread.
ParallelForFn SerialParallelFor();

// Runs task() on some thread, later (e.g. a thread pool's Schedule).
using ScheduleFn = std::function<void(std::function<void()> task)>;

// Returns a ParallelForFn that splits [0, total) into blocks (by
// cost_per_unit, up to 4 per thread) which the calling thread and up to
// num_threads - 1 helper tasks (started with `schedule`) claim one at a time.
// The caller works too and waits only for blocks already claimed, so a
// helper that a loaded machine starts late (or never, before the caller is
// done) delays nothing. Blocks of one call may run concurrently.
ParallelForFn DynamicParallelFor(ScheduleFn schedule, int num_threads);

// Index of the first NaN or infinite value in data[0, size), or -1.
int64_t FindNonFinite(const float* data, int64_t size,
                      const ParallelForFn& parallel_for);

// Index of the first value outside [0, num_vertices) in indices[0, size), or -1.
int64_t FindOutOfRange(const int32_t* indices, int64_t size,
                       int64_t num_vertices, const ParallelForFn& parallel_for);

// Index of the first value outside [-1, num_triangles) in ids[0, size), or -1.
int64_t FindIdOutOfRange(const int32_t* ids, int64_t size,
                         int64_t num_triangles,
                         const ParallelForFn& parallel_for);

struct RasterizeParams {
  int batch = 0;           // B
  int num_vertices = 0;    // N
  int vertex_dim = 4;      // 4 (clip x, y, z, w) or 3 (NDC x, y, z; w = 1)
  int num_triangles = 0;   // T
  int image_height = 0;    // H >= 1
  int image_width = 0;     // W >= 1
  bool cull_backfaces = false;
  int num_threads = 1;     // Concurrency of parallel_for (a hint).
};

// Rasterizes a batch of meshes sharing one triangle list.
//   vertices:  [B, N, vertex_dim] float32, finite.
//   triangles: [T, 3] int32, each in [0, N).
// Outputs (all written for every pixel):
//   triangle_ids: [B, H, W] int32, -1 on background.
//   barycentrics: [B, H, W, 3] float32, perspective-correct, 0 on background.
//   depth:        [B, H, W] float32 z_ndc, 1 on background.
// Inputs must be validated by the caller (FindNonFinite, FindOutOfRange).
void RasterizeTriangles(const RasterizeParams& params, const float* vertices,
                        const int32_t* triangles,
                        const ParallelForFn& parallel_for,
                        int32_t* triangle_ids, float* barycentrics,
                        float* depth);

// Gradient of the op's barycentrics with respect to the clip-space vertices.
//
// For the pixel centre p = (x_ndc, y_ndc, 1) and the homogeneous 2D corners
// v_i = (x_i, y_i, w_i) of the pixel's triangle, the perspective-correct
// barycentrics are b_i = u_i / S with u_i = p . (v_j x v_k), (i, j, k)
// cyclic, and S = u_0 + u_1 + u_2 (equal to the op's e_i / w_i weights,
// normalised). With g = dL/db:
//   dL/du_i = (g_i - sum_k g_k b_k) / S,
//   dL/dv_m = dL/du_{m+1} (p x v_{m+2}) + dL/du_{m+2} (v_{m+1} x p).
// z gets no gradient (barycentrics do not depend on it); with NDC input
// (vertex_dim 3, w = 1) only x and y do. Computed in float64.
//   vertices:       [B, N, vertex_dim] float32 (params.vertex_dim 3 or 4).
//   triangles:      [T, 3] int32, each in [0, N).
//   triangle_ids:   [B, H, W] int32 in [-1, T); -1 (background) pixels and
//                   pixels whose S is zero or not finite contribute nothing.
//   d_barycentrics: [B, H, W, 3] float32, dL/db.
//   d_vertices:     [B, N, vertex_dim] float32 output, dL/dvertices (fully
//                   written). Deterministic for a given params.num_threads.
// Inputs must be validated by the caller (FindOutOfRange on triangles and,
// with FindIdOutOfRange, on triangle_ids).
void RasterizeTrianglesGrad(const RasterizeParams& params,
                            const float* vertices, const int32_t* triangles,
                            const int32_t* triangle_ids,
                            const float* d_barycentrics,
                            const ParallelForFn& parallel_for,
                            float* d_vertices);

struct InterpolateParams {
  int batch = 0;           // B
  int num_vertices = 0;    // N
  int num_channels = 0;    // C
  int num_triangles = 0;   // T
  int image_height = 0;    // H
  int image_width = 0;     // W
  int num_threads = 1;     // Concurrency of parallel_for (a hint).
};

// Interpolates per-vertex attributes with the rasterizer's barycentrics:
//   values[b, r, c, :] = sum_k barycentrics[b, r, c, k] *
//                        attributes[b, triangles[id, k], :],  id = ids[b, r, c]
// and zero where id = -1. Float32 arithmetic, sum in k order.
//   attributes:   [B, N, C] float32.
//   triangles:    [T, 3] int32, each in [0, N).
//   triangle_ids: [B, H, W] int32 in [-1, T).
//   barycentrics: [B, H, W, 3] float32.
//   values:       [B, H, W, C] float32 output (fully written).
// Inputs must be validated by the caller (FindOutOfRange, FindIdOutOfRange).
void InterpolateAttributes(const InterpolateParams& params,
                           const float* attributes, const int32_t* triangles,
                           const int32_t* triangle_ids,
                           const float* barycentrics,
                           const ParallelForFn& parallel_for, float* values);

// Gradient of InterpolateAttributes, given d_values = dL/dvalues
// [B, H, W, C]:
//   d_attributes:   [B, N, C] float32 output, sum over the pixels of
//                   barycentrics[k] * d_values (float64 sums; deterministic
//                   for a given params.num_threads).
//   d_barycentrics: [B, H, W, 3] float32 output, d_values . attributes of
//                   corner k; zero on background.
void InterpolateAttributesGrad(const InterpolateParams& params,
                               const float* attributes,
                               const int32_t* triangles,
                               const int32_t* triangle_ids,
                               const float* barycentrics,
                               const float* d_values,
                               const ParallelForFn& parallel_for,
                               float* d_attributes, float* d_barycentrics);

}  // namespace fullpose

#endif  // FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_CORE_H_
