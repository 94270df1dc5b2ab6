// Per-pixel arithmetic shared by the CPU core (rasterize_triangles_core.cc)
// and the CUDA kernels (rasterize_triangles_gpu.cu.cc), so that both compute
// the gradient with the same operations (float64; the CPU build uses
// -ffp-contract=off, nvcc -fmad=false).
#ifndef FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_MATH_H_
#define FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_MATH_H_

#ifdef __CUDACC__
#define FULLPOSE_HOST_DEVICE __host__ __device__
#else
#define FULLPOSE_HOST_DEVICE
#endif

namespace fullpose {

// Gradient of one pixel's perspective-correct barycentrics w.r.t. its
// triangle's corners (formulas in rasterize_triangles_core.h, at
// RasterizeTrianglesGrad).
//   px, py: the pixel centre in NDC.
//   v:      the corners' clip (x, y, w), v[k] for corner k.
//   g:      dL/db_k.
//   dv:     output, dL/d(x, y, w) of corner k in dv[k].
// With a_k = p x v_k: u_m = -v_{m+1} . a_{m+2} and
// dL/dv_m = dL/du_{m+1} a_{m+2} - dL/du_{m+2} a_{m+1}. Returns false (dv
// not written) when S = u_0 + u_1 + u_2 is zero or not finite.
FULLPOSE_HOST_DEVICE inline bool PixelBarycentricsGrad(double px, double py,
                                                       const double v[3][3],
                                                       const float g[3],
                                                       double dv[3][3]) {
  double a[3][3];
  for (int k = 0; k < 3; ++k) {
    a[k][0] = py * v[k][2] - v[k][1];
    a[k][1] = v[k][0] - px * v[k][2];
    a[k][2] = px * v[k][1] - py * v[k][0];
  }
  double u[3];
  for (int m = 0; m < 3; ++m) {
    const double* vj = v[(m + 1) % 3];
    const double* ak = a[(m + 2) % 3];
    u[m] = -(vj[0] * ak[0] + vj[1] * ak[1] + vj[2] * ak[2]);
  }
  const double sum = u[0] + u[1] + u[2];
  // Zero, or not finite (inf - inf and NaN - NaN are NaN).
  if (sum == 0.0 || !(sum - sum == 0.0)) return false;
  const double inv_sum = 1.0 / sum;
  const double g_mean = (g[0] * u[0] + g[1] * u[1] + g[2] * u[2]) * inv_sum;
  double du[3];
  for (int m = 0; m < 3; ++m) du[m] = (g[m] - g_mean) * inv_sum;
  for (int m = 0; m < 3; ++m) {
    const double d1 = du[(m + 1) % 3], d2 = du[(m + 2) % 3];
    const double* a2 = a[(m + 2) % 3];
    const double* a1 = a[(m + 1) % 3];
    for (int i = 0; i < 3; ++i) dv[m][i] = d1 * a2[i] - d2 * a1[i];
  }
  return true;
}

}  // namespace fullpose

#endif  // FULLPOSE_RENDERER_KERNELS_RASTERIZE_TRIANGLES_MATH_H_
