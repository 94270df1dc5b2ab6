// CUDA kernels of the rasterizer. One thread per (image, triangle) writes
// its fragments with 64-bit atomics: pass 1 keeps the nearest depth per pixel,
// pass 2 the lowest triangle id among fragments at exactly that depth; a
// per-pixel pass then writes ids, barycentrics and depth. Arithmetic follows
// rasterize_triangles_core.cc in float64 (compile with -fmad=false).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "rasterize_triangles_gpu.h"
#include "rasterize_triangles_math.h"

namespace fullpose {
namespace {

constexpr int kThreads = 256;
constexpr unsigned long long kEmpty = ~0ull;

struct DeviceVertex {
  double px, py, z, inv_w;  // inv_w = 0 marks w <= 0.
};

__device__ inline double Edge(double ax, double ay, double bx, double by,
                              double px, double py) {
  return __dsub_rn(__dmul_rn(__dsub_rn(bx, ax), __dsub_rn(py, ay)),
                   __dmul_rn(__dsub_rn(by, ay), __dsub_rn(px, ax)));
}

// Order-preserving map of a double to an unsigned 64-bit key.
__device__ inline unsigned long long DepthKey(double z) {
  const unsigned long long bits =
      static_cast<unsigned long long>(__double_as_longlong(z));
  return (bits >> 63) ? ~bits : (bits | 0x8000000000000000ull);
}

__global__ void ValidateKernel(const float* vertices, int64_t num_values,
                               const int32_t* triangles, int64_t num_indices,
                               int64_t num_vertices,
                               unsigned long long* bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < num_values || i < num_indices; i += stride) {
    if (i < num_values && !isfinite(vertices[i])) atomicMin(&bad[0], i);
    if (i < num_indices &&
        (triangles[i] < 0 || triangles[i] >= num_vertices)) {
      atomicMin(&bad[1], i);
    }
  }
}

__global__ void TransformKernel(RasterizeParams p, const float* vertices,
                                DeviceVertex* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(p.batch) * p.num_vertices) return;
  const float* v = vertices + i * p.vertex_dim;
  const double w = p.vertex_dim == 4 ? static_cast<double>(v[3]) : 1.0;
  DeviceVertex r = {0.0, 0.0, 0.0, 0.0};
  if (w > 0.0) {
    const double half_w = 0.5 * p.image_width, half_h = 0.5 * p.image_height;
    r.px = __dsub_rn(__dmul_rn(__dadd_rn(__ddiv_rn(v[0], w), 1.0), half_w),
                     0.5);
    r.py = __dsub_rn(__dmul_rn(__dsub_rn(1.0, __ddiv_rn(v[1], w)), half_h),
                     0.5);
    r.z = __ddiv_rn(v[2], w);
    r.inv_w = __ddiv_rn(1.0, w);
  }
  out[i] = r;
}

__device__ inline bool CentreRange(double lo, double hi, int size, int* first,
                                   int* last) {
  if (!(lo <= size - 1) || !(hi >= 0.0)) return false;
  lo = fmax(lo, 0.0);
  hi = fmin(hi, static_cast<double>(size - 1));
  int f = static_cast<int>(lo);
  if (f < lo) ++f;
  const int l = static_cast<int>(hi);
  if (f > l) return false;
  *first = f;
  *last = l;
  return true;
}

// pass 0: depth; pass 1: lowest id at the winning depth.
__global__ void RasterKernel(RasterizeParams p, const int32_t* triangles,
                             const DeviceVertex* vertices, int pass,
                             unsigned long long* zbuf,
                             unsigned long long* idbuf) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(p.batch) * p.num_triangles) return;
  const int64_t b = i / p.num_triangles;
  const int32_t t = static_cast<int32_t>(i % p.num_triangles);
  const DeviceVertex* verts = vertices + b * p.num_vertices;
  const DeviceVertex v0 = verts[triangles[3 * t]];
  const DeviceVertex v1 = verts[triangles[3 * t + 1]];
  const DeviceVertex v2 = verts[triangles[3 * t + 2]];
  if (!(v0.inv_w > 0.0 && v1.inv_w > 0.0 && v2.inv_w > 0.0)) return;
  const double area = Edge(v0.px, v0.py, v1.px, v1.py, v2.px, v2.py);
  if (area == 0.0 || !isfinite(area) || (p.cull_backfaces && area > 0.0)) {
    return;
  }
  int c0, c1, r0, r1;
  if (!CentreRange(fmin(v0.px, fmin(v1.px, v2.px)),
                   fmax(v0.px, fmax(v1.px, v2.px)), p.image_width, &c0, &c1) ||
      !CentreRange(fmin(v0.py, fmin(v1.py, v2.py)),
                   fmax(v0.py, fmax(v1.py, v2.py)), p.image_height, &r0,
                   &r1)) {
    return;
  }
  const double inv_area = __ddiv_rn(1.0, area);
  const int64_t image = b * p.image_height * static_cast<int64_t>(p.image_width);
  for (int r = r0; r <= r1; ++r) {
    for (int c = c0; c <= c1; ++c) {
      const double e0 = Edge(v1.px, v1.py, v2.px, v2.py, c, r);
      const double e1 = Edge(v2.px, v2.py, v0.px, v0.py, c, r);
      const double e2 = Edge(v0.px, v0.py, v1.px, v1.py, c, r);
      const bool covers = area > 0.0
                              ? (e0 >= 0.0 && e1 >= 0.0 && e2 >= 0.0)
                              : (e0 <= 0.0 && e1 <= 0.0 && e2 <= 0.0);
      if (!covers) continue;
      const double z = __dmul_rn(
          __dadd_rn(__dadd_rn(__dmul_rn(e0, v0.z), __dmul_rn(e1, v1.z)),
                    __dmul_rn(e2, v2.z)),
          inv_area);
      if (!(z >= -1.0 && z <= 1.0)) continue;
      const int64_t pixel = image + r * static_cast<int64_t>(p.image_width) + c;
      if (pass == 0) {
        atomicMin(&zbuf[pixel], DepthKey(z));
      } else if (zbuf[pixel] == DepthKey(z)) {
        atomicMin(&idbuf[pixel], static_cast<unsigned long long>(t));
      }
    }
  }
}

__global__ void ResolveKernel(RasterizeParams p, const int32_t* triangles,
                              const DeviceVertex* vertices,
                              const unsigned long long* idbuf,
                              int32_t* triangle_ids, float* barycentrics,
                              float* depth) {
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= p.batch * pixels) return;
  float* bary = barycentrics + 3 * i;
  if (idbuf[i] == kEmpty) {
    triangle_ids[i] = -1;
    bary[0] = bary[1] = bary[2] = 0.0f;
    depth[i] = 1.0f;
    return;
  }
  const int32_t t = static_cast<int32_t>(idbuf[i]);
  const DeviceVertex* verts = vertices + (i / pixels) * p.num_vertices;
  const DeviceVertex v0 = verts[triangles[3 * t]];
  const DeviceVertex v1 = verts[triangles[3 * t + 1]];
  const DeviceVertex v2 = verts[triangles[3 * t + 2]];
  const double r = static_cast<double>((i % pixels) / p.image_width);
  const double c = static_cast<double>((i % pixels) % p.image_width);
  const double area = Edge(v0.px, v0.py, v1.px, v1.py, v2.px, v2.py);
  const double e0 = Edge(v1.px, v1.py, v2.px, v2.py, c, r);
  const double e1 = Edge(v2.px, v2.py, v0.px, v0.py, c, r);
  const double e2 = Edge(v0.px, v0.py, v1.px, v1.py, c, r);
  const double p0 = __dmul_rn(e0, v0.inv_w), p1 = __dmul_rn(e1, v1.inv_w),
               p2 = __dmul_rn(e2, v2.inv_w);
  const double inv_sum = __ddiv_rn(1.0, __dadd_rn(__dadd_rn(p0, p1), p2));
  triangle_ids[i] = t;
  bary[0] = static_cast<float>(__dmul_rn(p0, inv_sum));
  bary[1] = static_cast<float>(__dmul_rn(p1, inv_sum));
  bary[2] = static_cast<float>(__dmul_rn(p2, inv_sum));
  depth[i] = static_cast<float>(__dmul_rn(
      __dadd_rn(__dadd_rn(__dmul_rn(e0, v0.z), __dmul_rn(e1, v1.z)),
                __dmul_rn(e2, v2.z)),
      __ddiv_rn(1.0, area)));
}

int Blocks(int64_t n) {
  return static_cast<int>((n + kThreads - 1) / kThreads);
}

int64_t Align(int64_t bytes) { return (bytes + 255) / 256 * 256; }

std::string CudaError(const char* what, cudaError_t error) {
  return std::string(what) + ": " + cudaGetErrorString(error);
}

}  // namespace

int64_t GpuScratchBytes(const RasterizeParams& p) {
  const int64_t pixels =
      static_cast<int64_t>(p.batch) * p.image_height * p.image_width;
  return Align(2 * sizeof(unsigned long long)) +
         Align(static_cast<int64_t>(p.batch) * p.num_vertices *
               sizeof(DeviceVertex)) +
         2 * Align(pixels * sizeof(unsigned long long));
}

std::string RasterizeTrianglesGpu(const RasterizeParams& p,
                                  const float* vertices,
                                  const int32_t* triangles, void* stream_ptr,
                                  void* scratch, GpuValidation* validation,
                                  int32_t* triangle_ids, float* barycentrics,
                                  float* depth) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  char* bytes = static_cast<char*>(scratch);
  auto* bad = reinterpret_cast<unsigned long long*>(bytes);
  bytes += Align(2 * sizeof(unsigned long long));
  auto* device_vertices = reinterpret_cast<DeviceVertex*>(bytes);
  bytes += Align(static_cast<int64_t>(p.batch) * p.num_vertices *
                 sizeof(DeviceVertex));
  const int64_t pixels =
      static_cast<int64_t>(p.batch) * p.image_height * p.image_width;
  auto* zbuf = reinterpret_cast<unsigned long long*>(bytes);
  bytes += Align(pixels * sizeof(unsigned long long));
  auto* idbuf = reinterpret_cast<unsigned long long*>(bytes);

  const int64_t num_values =
      static_cast<int64_t>(p.batch) * p.num_vertices * p.vertex_dim;
  const int64_t num_indices = 3 * static_cast<int64_t>(p.num_triangles);
  cudaError_t error = cudaMemsetAsync(bad, 0xFF, 2 * sizeof(*bad), stream);
  if (error != cudaSuccess) return CudaError("cudaMemsetAsync", error);
  const int64_t n = num_values > num_indices ? num_values : num_indices;
  if (n > 0) {
    ValidateKernel<<<Blocks(n) < 4096 ? Blocks(n) : 4096, kThreads, 0,
                     stream>>>(vertices, num_values, triangles, num_indices,
                               p.num_vertices, bad);
  }
  unsigned long long host_bad[2];
  error = cudaMemcpyAsync(host_bad, bad, sizeof(host_bad),
                          cudaMemcpyDeviceToHost, stream);
  if (error == cudaSuccess) error = cudaStreamSynchronize(stream);
  if (error != cudaSuccess) return CudaError("validating inputs", error);
  if (host_bad[0] != kEmpty || host_bad[1] != kEmpty) {
    if (host_bad[0] != kEmpty) {
      validation->bad_vertex = static_cast<int64_t>(host_bad[0]);
      cudaMemcpy(&validation->bad_vertex_value, vertices + host_bad[0],
                 sizeof(float), cudaMemcpyDeviceToHost);
    }
    if (host_bad[1] != kEmpty) {
      validation->bad_triangle = static_cast<int64_t>(host_bad[1]);
      cudaMemcpy(&validation->bad_triangle_value, triangles + host_bad[1],
                 sizeof(int32_t), cudaMemcpyDeviceToHost);
    }
    return "";
  }
  if (pixels == 0) return "";
  cudaMemsetAsync(zbuf, 0xFF, pixels * sizeof(*zbuf), stream);
  cudaMemsetAsync(idbuf, 0xFF, pixels * sizeof(*idbuf), stream);
  const int64_t vertex_threads = static_cast<int64_t>(p.batch) * p.num_vertices;
  if (vertex_threads > 0) {
    TransformKernel<<<Blocks(vertex_threads), kThreads, 0, stream>>>(
        p, vertices, device_vertices);
  }
  const int64_t triangle_threads =
      static_cast<int64_t>(p.batch) * p.num_triangles;
  if (triangle_threads > 0) {
    for (int pass = 0; pass < 2; ++pass) {
      RasterKernel<<<Blocks(triangle_threads), kThreads, 0, stream>>>(
          p, triangles, device_vertices, pass, zbuf, idbuf);
    }
  }
  ResolveKernel<<<Blocks(pixels), kThreads, 0, stream>>>(
      p, triangles, device_vertices, idbuf, triangle_ids, barycentrics, depth);
  error = cudaGetLastError();
  if (error != cudaSuccess) return CudaError("launching the rasterizer", error);
  return "";
}

namespace {

// One thread per pixel: dL/d(x, y, w) of its triangle's corners
// (PixelBarycentricsGrad, shared with the CPU core), added to acc [B, N, 3]
// (float64).
__global__ void BarycentricsGradKernel(RasterizeParams p,
                                       const float* vertices,
                                       const int32_t* triangles,
                                       const int32_t* triangle_ids,
                                       const float* d_barycentrics,
                                       double* acc) {
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= p.batch * pixels) return;
  const int32_t t = triangle_ids[i];
  if (t < 0 || t >= p.num_triangles) return;
  const float* g = d_barycentrics + 3 * i;
  if (g[0] == 0.0f && g[1] == 0.0f && g[2] == 0.0f) return;
  const int64_t b = i / pixels;
  const int r = static_cast<int>((i % pixels) / p.image_width);
  const int c = static_cast<int>((i % pixels) % p.image_width);
  const double px = -1.0 + (2.0 * c + 1.0) / p.image_width;
  const double py = 1.0 - (2.0 * r + 1.0) / p.image_height;
  const int D = p.vertex_dim;
  int32_t index[3];
  double v[3][3];
  for (int k = 0; k < 3; ++k) {
    index[k] = triangles[3 * t + k];
    if (index[k] < 0 || index[k] >= p.num_vertices) return;
    const float* src = vertices + (b * p.num_vertices + index[k]) * D;
    v[k][0] = src[0];
    v[k][1] = src[1];
    v[k][2] = D == 4 ? static_cast<double>(src[3]) : 1.0;
  }
  double dv[3][3];
  if (!PixelBarycentricsGrad(px, py, v, g, dv)) return;
  for (int m = 0; m < 3; ++m) {
    double* out = acc + 3 * (b * p.num_vertices + index[m]);
    atomicAdd(out, dv[m][0]);
    atomicAdd(out + 1, dv[m][1]);
    atomicAdd(out + 2, dv[m][2]);
  }
}

// d_vertices [B, N, D] float32 from acc [B, N, 3]; z gets zero.
__global__ void WriteVertexGradKernel(RasterizeParams p, const double* acc,
                                      float* d_vertices) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= static_cast<int64_t>(p.batch) * p.num_vertices) return;
  float* out = d_vertices + n * p.vertex_dim;
  out[0] = static_cast<float>(acc[3 * n]);
  out[1] = static_cast<float>(acc[3 * n + 1]);
  out[2] = 0.0f;
  if (p.vertex_dim == 4) out[3] = static_cast<float>(acc[3 * n + 2]);
}

}  // namespace

int64_t GpuGradScratchBytes(const RasterizeParams& p) {
  return Align(3 * static_cast<int64_t>(p.batch) * p.num_vertices *
               sizeof(double));
}

std::string RasterizeTrianglesGradGpu(const RasterizeParams& p,
                                      const float* vertices,
                                      const int32_t* triangles,
                                      const int32_t* triangle_ids,
                                      const float* d_barycentrics,
                                      void* stream_ptr, void* scratch,
                                      float* d_vertices) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  auto* acc = static_cast<double*>(scratch);
  const int64_t num_vertices = static_cast<int64_t>(p.batch) * p.num_vertices;
  if (num_vertices == 0) return "";
  cudaError_t error = cudaMemsetAsync(acc, 0, 3 * num_vertices * sizeof(double),
                                      stream);
  if (error != cudaSuccess) return CudaError("cudaMemsetAsync", error);
  const int64_t pixels =
      static_cast<int64_t>(p.batch) * p.image_height * p.image_width;
  if (pixels > 0) {
    BarycentricsGradKernel<<<Blocks(pixels), kThreads, 0, stream>>>(
        p, vertices, triangles, triangle_ids, d_barycentrics, acc);
  }
  WriteVertexGradKernel<<<Blocks(num_vertices), kThreads, 0, stream>>>(
      p, acc, d_vertices);
  error = cudaGetLastError();
  if (error != cudaSuccess) {
    return CudaError("launching the rasterizer gradient", error);
  }
  return "";
}

namespace {

// Vertex indices of pixel i's triangle in *corners, or false when the pixel
// is background or an index is out of range.
__device__ inline bool PixelCorners(const InterpolateParams& p,
                                    const int32_t* triangles,
                                    const int32_t* triangle_ids, int64_t i,
                                    int64_t* corners) {
  const int32_t t = triangle_ids[i];
  if (t < 0 || t >= p.num_triangles) return false;
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int64_t image = (i / pixels) * p.num_vertices;
  for (int k = 0; k < 3; ++k) {
    const int32_t v = triangles[3 * t + k];
    if (v < 0 || v >= p.num_vertices) return false;
    corners[k] = (image + v) * p.num_channels;
  }
  return true;
}

__global__ void InterpolateKernel(InterpolateParams p,
                                  const float* attributes,
                                  const int32_t* triangles,
                                  const int32_t* triangle_ids,
                                  const float* barycentrics, float* values) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(p.batch) * p.image_height * p.image_width) {
    return;
  }
  const int C = p.num_channels;
  float* out = values + i * C;
  int64_t corners[3];
  if (!PixelCorners(p, triangles, triangle_ids, i, corners)) {
    for (int ch = 0; ch < C; ++ch) out[ch] = 0.0f;
    return;
  }
  const float b0 = barycentrics[3 * i], b1 = barycentrics[3 * i + 1],
              b2 = barycentrics[3 * i + 2];
  for (int ch = 0; ch < C; ++ch) {
    out[ch] = __fadd_rn(__fadd_rn(__fmul_rn(b0, attributes[corners[0] + ch]),
                                  __fmul_rn(b1, attributes[corners[1] + ch])),
                        __fmul_rn(b2, attributes[corners[2] + ch]));
  }
}

__global__ void InterpolateGradKernel(InterpolateParams p,
                                      const float* attributes,
                                      const int32_t* triangles,
                                      const int32_t* triangle_ids,
                                      const float* barycentrics,
                                      const float* d_values,
                                      float* d_attributes,
                                      float* d_barycentrics) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(p.batch) * p.image_height * p.image_width) {
    return;
  }
  float* d_bary = d_barycentrics + 3 * i;
  int64_t corners[3];
  if (!PixelCorners(p, triangles, triangle_ids, i, corners)) {
    d_bary[0] = d_bary[1] = d_bary[2] = 0.0f;
    return;
  }
  const int C = p.num_channels;
  const float* g = d_values + i * C;
  for (int k = 0; k < 3; ++k) {
    const float weight = barycentrics[3 * i + k];
    float dot = 0.0f;
    for (int ch = 0; ch < C; ++ch) {
      dot += g[ch] * attributes[corners[k] + ch];
      atomicAdd(d_attributes + corners[k] + ch, weight * g[ch]);
    }
    d_bary[k] = dot;
  }
}

}  // namespace

std::string InterpolateAttributesGpu(const InterpolateParams& p,
                                     const float* attributes,
                                     const int32_t* triangles,
                                     const int32_t* triangle_ids,
                                     const float* barycentrics,
                                     void* stream_ptr, float* values) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t pixels =
      static_cast<int64_t>(p.batch) * p.image_height * p.image_width;
  if (pixels == 0) return "";
  InterpolateKernel<<<Blocks(pixels), kThreads, 0, stream>>>(
      p, attributes, triangles, triangle_ids, barycentrics, values);
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return CudaError("launching interpolate", error);
  return "";
}

std::string InterpolateAttributesGradGpu(const InterpolateParams& p,
                                         const float* attributes,
                                         const int32_t* triangles,
                                         const int32_t* triangle_ids,
                                         const float* barycentrics,
                                         const float* d_values,
                                         void* stream_ptr,
                                         float* d_attributes,
                                         float* d_barycentrics) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t num_values =
      static_cast<int64_t>(p.batch) * p.num_vertices * p.num_channels;
  cudaError_t error = cudaSuccess;
  if (num_values > 0) {
    error = cudaMemsetAsync(d_attributes, 0, num_values * sizeof(float),
                            stream);
    if (error != cudaSuccess) return CudaError("cudaMemsetAsync", error);
  }
  const int64_t pixels =
      static_cast<int64_t>(p.batch) * p.image_height * p.image_width;
  if (pixels == 0) return "";
  InterpolateGradKernel<<<Blocks(pixels), kThreads, 0, stream>>>(
      p, attributes, triangles, triangle_ids, barycentrics, d_values,
      d_attributes, d_barycentrics);
  error = cudaGetLastError();
  if (error != cudaSuccess) {
    return CudaError("launching the interpolate gradient", error);
  }
  return "";
}

}  // namespace fullpose
