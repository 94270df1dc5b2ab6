// Unit test of the TensorFlow-free core (no TensorFlow needed). Built and run
// by tests/test_renderer_core_cpp.py:
//   g++ -O2 -std=c++17 -pthread -ffp-contract=off
//       rasterize_triangles_core_test.cc rasterize_triangles_core.cc
// Prints "OK" and exits 0 when every check holds.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "rasterize_triangles_core.h"

namespace fullpose {
namespace {

#define CHECK(condition)                                              \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, \
                   #condition);                                       \
      return false;                                                   \
    }                                                                 \
  } while (0)

// Schedulers standing in for a thread pool.
void RunOnNewThread(std::function<void()> task) {
  std::thread(std::move(task)).detach();
}
void RunLate(std::function<void()> task) {  // A descheduled pool thread.
  std::thread([task] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    task();
  }).detach();
}
void NeverRun(std::function<void()>) {}  // A pool too busy to start helpers.

// Every index of [0, total) is handed to work exactly once, whether helpers
// start at once, late (after the call returned) or never.
bool TestDynamicParallelForCoversEachIndexOnce() {
  for (ScheduleFn schedule : {ScheduleFn(RunOnNewThread), ScheduleFn(RunLate),
                              ScheduleFn(NeverRun)}) {
    const ParallelForFn parallel_for = DynamicParallelFor(schedule, 4);
    for (int64_t total : {0, 1, 7, 1000, 100000}) {
      for (int64_t cost : {1, 1000, 1000000}) {
        std::vector<std::atomic<int>> counts(total);
        for (auto& count : counts) count = 0;
        parallel_for(total, cost, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) ++counts[i];
        });
        for (int64_t i = 0; i < total; ++i) CHECK(counts[i] == 1);
      }
    }
  }
  return true;
}

struct Mesh {
  RasterizeParams params;
  std::vector<float> vertices;
  std::vector<int32_t> triangles;
};

// Random overlapping triangles (many per pixel: depth test and ties across
// ranges) with varying w, every 97th vertex behind the camera.
Mesh RandomMesh(int batch, int num_triangles, int height, int width,
                bool cull, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> ndc(-1.2f, 1.2f), w(0.4f, 2.0f);
  Mesh mesh;
  RasterizeParams& p = mesh.params;
  p.batch = batch;
  p.num_vertices = 3 * num_triangles / 2 + 3;
  p.num_triangles = num_triangles;
  p.image_height = height;
  p.image_width = width;
  p.cull_backfaces = cull;
  for (int i = 0; i < batch * p.num_vertices; ++i) {
    const float wi = i % 97 == 0 ? -0.5f : w(rng);
    const float x = ndc(rng), y = ndc(rng), z = ndc(rng) * 0.8f;
    mesh.vertices.insert(mesh.vertices.end(), {x * wi, y * wi, z * wi, wi});
  }
  std::uniform_int_distribution<int> index(0, p.num_vertices - 1);
  for (int t = 0; t < num_triangles; ++t) {
    for (int k = 0; k < 3; ++k) mesh.triangles.push_back(index(rng));
  }
  return mesh;
}

struct Output {
  std::vector<int32_t> ids;
  std::vector<float> barycentrics, depth, d_vertices;
};

Output Run(const Mesh& mesh, const ParallelForFn& parallel_for,
           int num_threads) {
  RasterizeParams p = mesh.params;
  p.num_threads = num_threads;
  const int64_t pixels =
      static_cast<int64_t>(p.batch) * p.image_height * p.image_width;
  Output out;
  out.ids.resize(pixels);
  out.barycentrics.resize(3 * pixels);
  out.depth.resize(pixels);
  RasterizeTriangles(p, mesh.vertices.data(), mesh.triangles.data(),
                     parallel_for, out.ids.data(), out.barycentrics.data(),
                     out.depth.data());
  std::vector<float> d_barycentrics(3 * pixels);
  for (int64_t i = 0; i < 3 * pixels; ++i) {
    d_barycentrics[i] = std::sin(0.37f * i);
  }
  out.d_vertices.resize(mesh.vertices.size());
  RasterizeTrianglesGrad(p, mesh.vertices.data(), mesh.triangles.data(),
                         out.ids.data(), d_barycentrics.data(), parallel_for,
                         out.d_vertices.data());
  return out;
}

// The image split into triangle ranges (several threads) gives the same
// ids, barycentrics and depth, bit for bit, as one thread; the gradient
// (summed in a different order) agrees to float32 precision.
bool TestThreadsDoNotChangeOutputs() {
  for (int batch : {1, 3}) {
    for (bool cull : {false, true}) {
      const Mesh mesh = RandomMesh(batch, 20000, 61, 47, cull, 7 + batch);
      const Output serial = Run(mesh, SerialParallelFor(), 1);
      int covered = 0;
      for (int32_t id : serial.ids) covered += id >= 0;
      CHECK(covered > static_cast<int>(serial.ids.size()) / 2);
      for (ScheduleFn schedule :
           {ScheduleFn(RunOnNewThread), ScheduleFn(NeverRun)}) {
        for (int threads : {2, 3, 5}) {
          const Output parallel =
              Run(mesh, DynamicParallelFor(schedule, threads), threads);
          CHECK(parallel.ids == serial.ids);
          CHECK(std::memcmp(parallel.barycentrics.data(),
                            serial.barycentrics.data(),
                            4 * serial.barycentrics.size()) == 0);
          CHECK(std::memcmp(parallel.depth.data(), serial.depth.data(),
                            4 * serial.depth.size()) == 0);
          float scale = 0.0f;
          for (float g : serial.d_vertices) scale = std::max(scale, std::fabs(g));
          CHECK(scale > 0.1f);
          for (size_t i = 0; i < serial.d_vertices.size(); ++i) {
            CHECK(std::fabs(parallel.d_vertices[i] - serial.d_vertices[i]) <=
                  1e-5f * scale);
          }
        }
      }
    }
  }
  return true;
}

}  // namespace
}  // namespace fullpose

int main() {
  const bool ok = fullpose::TestDynamicParallelForCoversEachIndexOnce() &&
                  fullpose::TestThreadsDoNotChangeOutputs();
  // Late helpers (RunLate) may still be starting: let them finish first.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf(ok ? "OK\n" : "FAILED\n");
  return ok ? 0 : 1;
}
