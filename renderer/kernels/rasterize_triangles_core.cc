// TensorFlow-free CPU rasterizer. See rasterize_triangles_core.h for the
// conventions; renderer/reference_rasterizer.py mirrors the arithmetic.
//
// Work plan for one image:
//   1. Transform vertices to pixel space (parallel over vertices).
//   2. Split the triangle list into P contiguous ranges (P = the thread
//      count for large meshes, else 1). Each range is rasterized on its own
//      (in parallel) into its own depth / id / perspective-weight buffer:
//      per triangle, set up (cull, area, bounding box of pixel centres) and
//      test its pixel centres at once, nearest fragment kept (the earlier,
//      i.e. lower, id on equal depth). No binning: a face-sized mesh at
//      224 px has ~1-pixel triangles, for which binning cost as much as
//      rasterizing.
//   3. Merge and resolve per pixel (parallel over rows): the nearest
//      fragment over the ranges, the lower range on equal depth (so the
//      lowest id overall), then ids, barycentrics and depth of the winner.
// With at least as many images as threads, images run concurrently instead
// and each image runs the steps on one thread with P = 1.
#include "rasterize_triangles_core.h"
#include "rasterize_triangles_math.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

namespace fullpose {
namespace {

// Triangles per range below which an image is not split (step 2).
constexpr int64_t kMinTrianglesPerRange = 4096;

// A vertex in pixel space; x = y = NaN when w <= 0 (so that any triangle
// using it gets a NaN area and is dropped).
struct ScreenVertex {
  double x, y, z, inv_w;
};

// Nearest fragment per pixel of one triangle range.
struct RangeBuffers {
  std::vector<double> depth;    // [H * W], +inf where no fragment.
  std::vector<int32_t> ids;     // [H * W], valid where depth is finite.
  std::vector<double> weights;  // [H * W, 3] e_i / w_i of the winner.
};

struct ImageWorkspace {
  std::vector<ScreenVertex> vertices;
  std::vector<RangeBuffers> ranges;
};

inline double Edge(double ax, double ay, double bx, double by, double px,
                   double py) {
  return (bx - ax) * (py - ay) - (by - ay) * (px - ax);
}

void TransformVertices(const RasterizeParams& p, const float* vertices,
                       int64_t begin, int64_t end, ImageWorkspace* ws) {
  const double half_w = 0.5 * p.image_width;
  const double half_h = 0.5 * p.image_height;
  for (int64_t n = begin; n < end; ++n) {
    const float* v = vertices + n * p.vertex_dim;
    const double w = p.vertex_dim == 4 ? static_cast<double>(v[3]) : 1.0;
    ScreenVertex& out = ws->vertices[n];
    if (!(w > 0.0)) {
      out.x = out.y = std::numeric_limits<double>::quiet_NaN();
      out.z = out.inv_w = 0.0;
      continue;
    }
    double x_ndc = v[0], y_ndc = v[1], z_ndc = v[2], inv_w = 1.0;
    if (w != 1.0) {  // Division by 1 is exact: skipped (orthographic input).
      x_ndc /= w;
      y_ndc /= w;
      z_ndc /= w;
      inv_w = 1.0 / w;
    }
    out.x = (x_ndc + 1.0) * half_w - 0.5;
    out.y = (1.0 - y_ndc) * half_h - 0.5;
    out.z = z_ndc;
    out.inv_w = inv_w;
  }
}

// Clamps a pixel-space coordinate range to integer pixel centres in
// [0, size - 1]; returns false when no centre is inside. (ceil and floor
// through integer conversion of the clamped values: exact, and without the
// libm calls that baseline x86-64 code makes for std::ceil / std::floor.)
inline bool CentreRange(double lo, double hi, int size, int32_t* first,
                        int32_t* last) {
  if (!(lo <= size - 1) || !(hi >= 0.0)) return false;
  lo = std::max(lo, 0.0);
  hi = std::min(hi, static_cast<double>(size - 1));
  int32_t f = static_cast<int32_t>(lo);  // Truncation = floor for lo >= 0.
  f += static_cast<int32_t>(static_cast<double>(f) < lo);  // ceil
  const int32_t l = static_cast<int32_t>(hi);  // floor for hi >= 0.
  *first = f;
  *last = l;
  return f <= l;
}

inline double Min3(double a, double b, double c) {
  return std::min(a, std::min(b, c));
}
inline double Max3(double a, double b, double c) {
  return std::max(a, std::max(b, c));
}

// Whether a pixel centre with edge functions e0, e1, e2 is inside (or on the
// border of) a triangle whose signed area has the sign of `area`.
inline bool Covers(double area, double e0, double e1, double e2) {
  return area > 0.0 ? (e0 >= 0.0 && e1 >= 0.0 && e2 >= 0.0)
                    : (e0 <= 0.0 && e1 <= 0.0 && e2 <= 0.0);
}

// Rasterizes triangles [begin, end) in order into `out` (nearest fragment
// kept; on equal depth the earlier triangle).
void RasterizeRange(const RasterizeParams& p, const int32_t* triangles,
                    const ScreenVertex* vertices, int64_t begin, int64_t end,
                    RangeBuffers* out) {
  const int W = p.image_width;
  double* depth = out->depth.data();
  int32_t* ids = out->ids.data();
  double* weights = out->weights.data();
  std::fill(out->depth.begin(), out->depth.end(),
            std::numeric_limits<double>::infinity());
  for (int64_t t = begin; t < end; ++t) {
    const ScreenVertex& v0 = vertices[triangles[3 * t]];
    const ScreenVertex& v1 = vertices[triangles[3 * t + 1]];
    const ScreenVertex& v2 = vertices[triangles[3 * t + 2]];
    const double x0 = v0.x, y0 = v0.y, x1 = v1.x, y1 = v1.y, x2 = v2.x,
                 y2 = v2.y;
    // First the pixel centres in the bounding box (none for most triangles
    // of a dense mesh; none either when a vertex has w <= 0, x = y = NaN).
    int32_t c0, c1, r0, r1;
    if (!CentreRange(Min3(y0, y1, y2), Max3(y0, y1, y2), p.image_height, &r0,
                     &r1) ||
        !CentreRange(Min3(x0, x1, x2), Max3(x0, x1, x2), W, &c0, &c1)) {
      continue;
    }
    // Front faces are counter-clockwise in NDC: negative area with y down.
    const double area = Edge(x0, y0, x1, y1, x2, y2);
    if (area == 0.0 || !std::isfinite(area) ||
        (p.cull_backfaces && area > 0.0)) {
      continue;
    }
    const double inv_area = 1.0 / area;
    for (int r = r0; r <= r1; ++r) {
      const double py = r;
      const int64_t row = static_cast<int64_t>(r) * W;
      for (int c = c0; c <= c1; ++c) {
        const double px = c;
        const double e0 = Edge(x1, y1, x2, y2, px, py);
        const double e1 = Edge(x2, y2, x0, y0, px, py);
        const double e2 = Edge(x0, y0, x1, y1, px, py);
        if (!Covers(inv_area, e0, e1, e2)) continue;
        const double z = (e0 * v0.z + e1 * v1.z + e2 * v2.z) * inv_area;
        if (!(z >= -1.0 && z <= 1.0)) continue;
        const int64_t pixel = row + c;
        if (z < depth[pixel]) {
          depth[pixel] = z;
          ids[pixel] = static_cast<int32_t>(t);
          // Perspective-correct: screen-space weights e_i divided by w_i
          // (normalised when resolving; the common factor 1 / area cancels).
          weights[3 * pixel] = e0 * v0.inv_w;
          weights[3 * pixel + 1] = e1 * v1.inv_w;
          weights[3 * pixel + 2] = e2 * v2.inv_w;
        }
      }
    }
  }
}

// Writes ids, barycentrics and depth of pixels [begin, end) from the nearest
// fragment over `num_ranges` range buffers (the earlier range on ties).
void Resolve(const ImageWorkspace& ws, int num_ranges, int64_t begin,
             int64_t end, int32_t* ids_out, float* bary_out,
             float* depth_out) {
  for (int64_t pixel = begin; pixel < end; ++pixel) {
    const RangeBuffers* best = &ws.ranges[0];
    double z = best->depth[pixel];
    for (int k = 1; k < num_ranges; ++k) {
      const double candidate = ws.ranges[k].depth[pixel];
      if (candidate < z) {
        z = candidate;
        best = &ws.ranges[k];
      }
    }
    float* bary = bary_out + 3 * pixel;
    if (z == std::numeric_limits<double>::infinity()) {
      ids_out[pixel] = -1;
      bary[0] = bary[1] = bary[2] = 0.0f;
      depth_out[pixel] = 1.0f;
      continue;
    }
    ids_out[pixel] = best->ids[pixel];
    const double p0 = best->weights[3 * pixel];
    const double p1 = best->weights[3 * pixel + 1];
    const double p2 = best->weights[3 * pixel + 2];
    const double inv_sum = 1.0 / (p0 + p1 + p2);
    bary[0] = static_cast<float>(p0 * inv_sum);
    bary[1] = static_cast<float>(p1 * inv_sum);
    bary[2] = static_cast<float>(p2 * inv_sum);
    depth_out[pixel] = static_cast<float>(z);
  }
}

// Rasterizes image b; inner steps use parallel_for.
void RasterizeImage(const RasterizeParams& p, const float* vertices,
                    const int32_t* triangles, int64_t b,
                    const ParallelForFn& parallel_for, int num_threads,
                    int32_t* triangle_ids, float* barycentrics, float* depth) {
  // Reused by later calls on this thread: no fresh pages to fault in per
  // image. (The lambdas below must see this thread's workspace, hence the
  // plain reference: a thread_local named inside a lambda is the running
  // thread's.)
  thread_local ImageWorkspace thread_workspace;
  ImageWorkspace& ws = thread_workspace;
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int num_ranges = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(num_threads,
                           p.num_triangles / kMinTrianglesPerRange)));
  ws.vertices.resize(p.num_vertices);
  if (static_cast<int>(ws.ranges.size()) < num_ranges) {
    ws.ranges.resize(num_ranges);
  }
  for (int k = 0; k < num_ranges; ++k) {
    ws.ranges[k].depth.resize(pixels);
    ws.ranges[k].ids.resize(pixels);
    ws.ranges[k].weights.resize(3 * pixels);
  }
  const float* image_vertices =
      vertices + b * static_cast<int64_t>(p.num_vertices) * p.vertex_dim;
  parallel_for(p.num_vertices, 30, [&](int64_t begin, int64_t end) {
    TransformVertices(p, image_vertices, begin, end, &ws);
  });
  const int64_t per_range = (p.num_triangles + num_ranges - 1) / num_ranges;
  parallel_for(num_ranges, 100 * per_range + 10 * pixels,
               [&](int64_t begin, int64_t end) {
                 for (int64_t k = begin; k < end; ++k) {
                   RasterizeRange(
                       p, triangles, ws.vertices.data(), k * per_range,
                       std::min<int64_t>(p.num_triangles, (k + 1) * per_range),
                       &ws.ranges[k]);
                 }
               });
  parallel_for(pixels, 20 + 5 * num_ranges, [&](int64_t begin, int64_t end) {
    Resolve(ws, num_ranges, begin, end, triangle_ids + b * pixels,
            barycentrics + 3 * b * pixels, depth + b * pixels);
  });
}

}  // namespace

ParallelForFn SerialParallelFor() {
  return [](int64_t total, int64_t,
            const std::function<void(int64_t, int64_t)>& work) {
    if (total > 0) work(0, total);
  };
}

namespace {

// Target work per block of DynamicParallelFor, in cost units (~cycles).
constexpr int64_t kBlockCost = 50000;

// Shared by the caller and the helpers of one DynamicParallelFor call; a
// helper that starts after the call returned touches only this.
struct DynamicForState {
  std::atomic<int64_t> next{0};  // Next block to claim.
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t total = 0;
  // Valid while blocks remain to be claimed (the caller waits for them).
  const std::function<void(int64_t, int64_t)>* work = nullptr;
  std::mutex mutex;
  std::condition_variable all_done;
  int64_t done = 0;  // Blocks finished (under mutex).
};

// Claims and runs blocks until none is left.
void RunBlocks(DynamicForState* state) {
  int64_t finished = 0;
  for (int64_t block = state->next.fetch_add(1); block < state->num_blocks;
       block = state->next.fetch_add(1)) {
    const int64_t begin = block * state->block_size;
    (*state->work)(begin, std::min(state->total, begin + state->block_size));
    ++finished;
  }
  if (finished == 0) return;
  std::lock_guard<std::mutex> lock(state->mutex);
  state->done += finished;
  if (state->done == state->num_blocks) state->all_done.notify_all();
}

}  // namespace

ParallelForFn DynamicParallelFor(ScheduleFn schedule, int num_threads) {
  return [schedule, num_threads](
             int64_t total, int64_t cost_per_unit,
             const std::function<void(int64_t, int64_t)>& work) {
    if (total <= 0) return;
    const int64_t cost = std::max<int64_t>(1, cost_per_unit) * total;
    const int64_t num_blocks = std::min<int64_t>(
        {total, std::max<int64_t>(1, cost / kBlockCost),
         4 * static_cast<int64_t>(std::max(1, num_threads))});
    if (num_blocks <= 1 || num_threads <= 1) {
      work(0, total);
      return;
    }
    auto state = std::make_shared<DynamicForState>();
    state->block_size = (total + num_blocks - 1) / num_blocks;
    state->num_blocks = (total + state->block_size - 1) / state->block_size;
    state->total = total;
    state->work = &work;
    const int64_t helpers =
        std::min<int64_t>(num_threads - 1, state->num_blocks - 1);
    for (int64_t h = 0; h < helpers; ++h) {
      schedule([state] { RunBlocks(state.get()); });
    }
    RunBlocks(state.get());
    std::unique_lock<std::mutex> lock(state->mutex);
    state->all_done.wait(
        lock, [&] { return state->done == state->num_blocks; });
  };
}

namespace {

// Runs image(b, parallel_for, num_threads) for b in [0, batch): images
// concurrently, each on one thread (serial parallel_for, num_threads 1),
// when there are at least as many images as threads; else one image after
// the other, each with the full parallel_for.
void ForEachImage(
    int batch, int num_threads, int64_t image_cost,
    const ParallelForFn& parallel_for,
    const std::function<void(int64_t, const ParallelForFn&, int)>& image) {
  if (batch >= num_threads && batch > 1) {
    const ParallelForFn serial = SerialParallelFor();
    parallel_for(batch, image_cost, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) image(b, serial, 1);
    });
  } else {
    for (int64_t b = 0; b < batch; ++b) image(b, parallel_for, num_threads);
  }
}

}  // namespace

namespace {

constexpr int64_t kCheckBlock = 1 << 14;

// Runs first_bad(begin, end) (index of the first bad element in [begin, end)
// or -1) over blocks in parallel; returns the smallest bad index or -1.
int64_t FindFirst(int64_t size, const ParallelForFn& parallel_for,
                  const std::function<int64_t(int64_t, int64_t)>& first_bad) {
  const int64_t num_blocks = (size + kCheckBlock - 1) / kCheckBlock;
  std::atomic<int64_t> first(std::numeric_limits<int64_t>::max());
  parallel_for(num_blocks, 2 * kCheckBlock, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t bad = first_bad(block * kCheckBlock,
                                    std::min(size, (block + 1) * kCheckBlock));
      if (bad < 0) continue;
      int64_t current = first.load();
      while (bad < current && !first.compare_exchange_weak(current, bad)) {
      }
      return;  // Later blocks of this range can only be larger.
    }
  });
  const int64_t result = first.load();
  return result == std::numeric_limits<int64_t>::max() ? -1 : result;
}

}  // namespace

int64_t FindNonFinite(const float* data, int64_t size,
                      const ParallelForFn& parallel_for) {
  return FindFirst(size, parallel_for, [data](int64_t begin, int64_t end) {
    // Branch-free test first (vectorizes): exponent bits all ones.
    uint32_t any = 0;
    for (int64_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, data + i, sizeof(bits));
      any |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (!any) return int64_t{-1};
    for (int64_t i = begin; i < end; ++i) {
      if (!std::isfinite(data[i])) return i;
    }
    return int64_t{-1};
  });
}

namespace {

// Index of the first value outside [lo, hi) in values[0, size), or -1.
int64_t FindOutside(const int32_t* values, int64_t size, int64_t lo,
                    int64_t hi, const ParallelForFn& parallel_for) {
  if (hi <= lo) return size > 0 ? 0 : -1;
  // v in [lo, hi) iff (uint32)(v - lo) < hi - lo (modular arithmetic; one
  // 32-bit compare per value, which vectorizes).
  const uint32_t offset = static_cast<uint32_t>(lo);
  const uint32_t range = static_cast<uint32_t>(
      std::min<int64_t>(hi - lo, std::numeric_limits<uint32_t>::max()));
  return FindFirst(size, parallel_for, [=](int64_t begin, int64_t end) {
    uint32_t any = 0;
    for (int64_t i = begin; i < end; ++i) {
      any |= static_cast<uint32_t>(
          static_cast<uint32_t>(values[i]) - offset >= range);
    }
    if (!any) return int64_t{-1};
    for (int64_t i = begin; i < end; ++i) {
      if (values[i] < lo || values[i] >= hi) return i;
    }
    return int64_t{-1};
  });
}

}  // namespace

int64_t FindOutOfRange(const int32_t* indices, int64_t size,
                       int64_t num_vertices,
                       const ParallelForFn& parallel_for) {
  return FindOutside(indices, size, 0, num_vertices, parallel_for);
}

int64_t FindIdOutOfRange(const int32_t* ids, int64_t size,
                         int64_t num_triangles,
                         const ParallelForFn& parallel_for) {
  return FindOutside(ids, size, -1, num_triangles, parallel_for);
}

void RasterizeTriangles(const RasterizeParams& params, const float* vertices,
                        const int32_t* triangles,
                        const ParallelForFn& parallel_for,
                        int32_t* triangle_ids, float* barycentrics,
                        float* depth) {
  const int64_t image_cost =
      100 * (static_cast<int64_t>(params.num_triangles) +
             static_cast<int64_t>(params.image_height) * params.image_width);
  ForEachImage(params.batch, params.num_threads, image_cost, parallel_for,
               [&](int64_t b, const ParallelForFn& image_parallel_for,
                   int threads) {
                 RasterizeImage(params, vertices, triangles, b,
                                image_parallel_for, threads, triangle_ids,
                                barycentrics, depth);
               });
}

namespace {

// Adds dL/d(x, y, w) of the vertices of image `b`, from pixel rows
// [row_begin, row_end), to acc [N, 3] (float64; PixelBarycentricsGrad).
void AccumulateBarycentricsGrad(const RasterizeParams& p,
                                const float* image_vertices,
                                const int32_t* triangles, const int32_t* ids,
                                const float* d_bary, int row_begin,
                                int row_end, double* acc) {
  const int W = p.image_width;
  const int D = p.vertex_dim;
  const double inv_w = 1.0 / W, inv_h = 1.0 / p.image_height;
  for (int r = row_begin; r < row_end; ++r) {
    const double py = 1.0 - (2.0 * r + 1.0) * inv_h;
    const int64_t row = static_cast<int64_t>(r) * W;
    for (int c = 0; c < W; ++c) {
      const int32_t t = ids[row + c];
      if (t < 0) continue;
      const float* g = d_bary + 3 * (row + c);
      if (g[0] == 0.0f && g[1] == 0.0f && g[2] == 0.0f) continue;
      const double px = -1.0 + (2.0 * c + 1.0) * inv_w;
      int32_t index[3];
      double v[3][3];  // Corners (x, y, w).
      for (int k = 0; k < 3; ++k) {
        index[k] = triangles[3 * t + k];
        const float* src = image_vertices + static_cast<int64_t>(index[k]) * D;
        v[k][0] = src[0];
        v[k][1] = src[1];
        v[k][2] = D == 4 ? static_cast<double>(src[3]) : 1.0;
      }
      double dv[3][3];
      if (!PixelBarycentricsGrad(px, py, v, g, dv)) continue;
      for (int m = 0; m < 3; ++m) {
        double* out = acc + 3 * static_cast<int64_t>(index[m]);
        out[0] += dv[m][0];
        out[1] += dv[m][1];
        out[2] += dv[m][2];
      }
    }
  }
}

// Writes the float32 d_vertices [N, D] of vertices [begin, end) from the sum
// of `num_parts` accumulators [N, 3] stored `stride` doubles apart.
void WriteVertexGrad(const RasterizeParams& p, const double* acc,
                     int64_t num_parts, int64_t stride, int64_t begin,
                     int64_t end, float* d_vertices) {
  const int D = p.vertex_dim;
  for (int64_t n = begin; n < end; ++n) {
    double x = 0.0, y = 0.0, w = 0.0;
    for (int64_t part = 0; part < num_parts; ++part) {
      const double* src = acc + part * stride + 3 * n;
      x += src[0];
      y += src[1];
      w += src[2];
    }
    float* out = d_vertices + n * D;
    out[0] = static_cast<float>(x);
    out[1] = static_cast<float>(y);
    out[2] = 0.0f;  // z_ndc does not move the barycentrics.
    if (D == 4) out[3] = static_cast<float>(w);
  }
}

// Scatter-adds per-pixel contributions of one image into float64 sums of
// `stride` values (per-vertex gradients): the image's rows run in up to
// num_threads fixed parts, each with its own zeroed accumulator (reused per
// thread), summed in part order by write (deterministic for a given
// num_threads).
//   accumulate(row_begin, row_end, acc): adds rows [row_begin, row_end).
//   write(begin, end, acc, num_parts): writes outputs [begin, end) of
//     [0, num_outputs) from the num_parts accumulators stride doubles apart.
template <typename Accumulate, typename Write>
void ScatterImageRows(int height, int width, int64_t stride,
                      int64_t num_outputs, int num_threads,
                      const ParallelForFn& parallel_for,
                      const Accumulate& accumulate, const Write& write) {
  thread_local std::vector<double> thread_acc;
  std::vector<double>& acc = thread_acc;
  const int64_t pixels = static_cast<int64_t>(height) * width;
  const int64_t parts = std::max<int64_t>(
      1, std::min<int64_t>({num_threads, height, pixels / 4096 + 1}));
  acc.resize(parts * stride);
  const int64_t rows_per_part = (height + parts - 1) / parts;
  parallel_for(parts, 40 * pixels / parts + stride,
               [&](int64_t begin, int64_t end) {
                 for (int64_t part = begin; part < end; ++part) {
                   double* part_acc = acc.data() + part * stride;
                   std::fill(part_acc, part_acc + stride, 0.0);
                   accumulate(static_cast<int>(part * rows_per_part),
                              static_cast<int>(std::min<int64_t>(
                                  height, (part + 1) * rows_per_part)),
                              part_acc);
                 }
               });
  parallel_for(num_outputs, 4 * parts + 4, [&](int64_t begin, int64_t end) {
    write(begin, end, static_cast<const double*>(acc.data()), parts);
  });
}

}  // namespace

void RasterizeTrianglesGrad(const RasterizeParams& params,
                            const float* vertices, const int32_t* triangles,
                            const int32_t* triangle_ids,
                            const float* d_barycentrics,
                            const ParallelForFn& parallel_for,
                            float* d_vertices) {
  const RasterizeParams& p = params;
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int64_t per_image = static_cast<int64_t>(p.num_vertices) * p.vertex_dim;
  ForEachImage(
      p.batch, p.num_threads, 40 * pixels + 10 * p.num_vertices, parallel_for,
      [&](int64_t b, const ParallelForFn& image_parallel_for, int threads) {
        ScatterImageRows(
            p.image_height, p.image_width, 3 * int64_t{p.num_vertices},
            p.num_vertices, threads, image_parallel_for,
            [&](int row_begin, int row_end, double* acc) {
              AccumulateBarycentricsGrad(
                  p, vertices + b * per_image, triangles,
                  triangle_ids + b * pixels, d_barycentrics + 3 * b * pixels,
                  row_begin, row_end, acc);
            },
            [&](int64_t begin, int64_t end, const double* acc,
                int64_t parts) {
              WriteVertexGrad(p, acc, parts, 3 * int64_t{p.num_vertices},
                              begin, end, d_vertices + b * per_image);
            });
      });
}

void InterpolateAttributes(const InterpolateParams& p,
                           const float* attributes, const int32_t* triangles,
                           const int32_t* triangle_ids,
                           const float* barycentrics,
                           const ParallelForFn& parallel_for, float* values) {
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int C = p.num_channels;
  parallel_for(p.batch * pixels, 6 * C + 10, [&](int64_t begin, int64_t end) {
    // The image of pixel i, updated when i crosses into the next image (no
    // division per pixel).
    int64_t image_end = (begin / pixels + 1) * pixels;
    const float* image = attributes + (begin / pixels) * p.num_vertices * C;
    for (int64_t i = begin; i < end; ++i) {
      if (i == image_end) {
        image += static_cast<int64_t>(p.num_vertices) * C;
        image_end += pixels;
      }
      float* out = values + i * C;
      const int32_t t = triangle_ids[i];
      if (t < 0) {
        std::fill(out, out + C, 0.0f);
        continue;
      }
      const float* a0 = image + static_cast<int64_t>(triangles[3 * t]) * C;
      const float* a1 = image + static_cast<int64_t>(triangles[3 * t + 1]) * C;
      const float* a2 = image + static_cast<int64_t>(triangles[3 * t + 2]) * C;
      const float b0 = barycentrics[3 * i], b1 = barycentrics[3 * i + 1],
                  b2 = barycentrics[3 * i + 2];
      for (int ch = 0; ch < C; ++ch) {
        out[ch] = b0 * a0[ch] + b1 * a1[ch] + b2 * a2[ch];
      }
    }
  });
}

void InterpolateAttributesGrad(const InterpolateParams& p,
                               const float* attributes,
                               const int32_t* triangles,
                               const int32_t* triangle_ids,
                               const float* barycentrics,
                               const float* d_values,
                               const ParallelForFn& parallel_for,
                               float* d_attributes, float* d_barycentrics) {
  const int64_t pixels = static_cast<int64_t>(p.image_height) * p.image_width;
  const int C = p.num_channels;
  const int64_t per_image = static_cast<int64_t>(p.num_vertices) * C;
  ForEachImage(
      p.batch, p.num_threads, (10 + 4 * C) * pixels + per_image, parallel_for,
      [&](int64_t b, const ParallelForFn& image_parallel_for, int threads) {
        const float* image = attributes + b * per_image;
        ScatterImageRows(
            p.image_height, p.image_width, per_image, per_image, threads,
            image_parallel_for,
            [&](int row_begin, int row_end, double* acc) {
              const int64_t end = b * pixels +
                                  static_cast<int64_t>(row_end) * p.image_width;
              for (int64_t i = b * pixels +
                               static_cast<int64_t>(row_begin) * p.image_width;
                   i < end; ++i) {
                float* d_bary = d_barycentrics + 3 * i;
                const int32_t t = triangle_ids[i];
                if (t < 0) {
                  d_bary[0] = d_bary[1] = d_bary[2] = 0.0f;
                  continue;
                }
                const float* g = d_values + i * C;
                for (int k = 0; k < 3; ++k) {
                  const int64_t v = triangles[3 * t + k];
                  const float* a = image + v * C;
                  double* sum = acc + v * C;
                  const double weight = barycentrics[3 * i + k];
                  float dot = 0.0f;
                  for (int ch = 0; ch < C; ++ch) {
                    dot += g[ch] * a[ch];
                    sum[ch] += weight * g[ch];
                  }
                  d_bary[k] = dot;
                }
              }
            },
            [&](int64_t begin, int64_t end, const double* acc,
                int64_t parts) {
              float* out = d_attributes + b * per_image;
              for (int64_t j = begin; j < end; ++j) {
                double total = 0.0;
                for (int64_t part = 0; part < parts; ++part) {
                  total += acc[part * per_image + j];
                }
                out[j] = static_cast<float>(total);
              }
            });
      });
}

}  // namespace fullpose
