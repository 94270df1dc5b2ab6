// TensorFlow op registration and kernels for FullposeRasterizeTriangles.
// The rasterization itself lives in rasterize_triangles_core.{h,cc} (CPU)
// and rasterize_triangles_gpu.cu.cc (CUDA, built when GOOGLE_CUDA); this
// file validates inputs, allocates outputs and lends TF's CPU thread pool.
#include <functional>
#include <limits>
#include <string>

#include "rasterize_triangles_core.h"
#if GOOGLE_CUDA
#include "rasterize_triangles_gpu.h"
#include "tensorflow/core/platform/stream_executor.h"
#endif
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/lib/core/threadpool.h"

// The TensorFlow version this library was compiled against, found by
// renderer/rasterize_op.py in the library file before loading it.
#ifndef FULLPOSE_TF_VERSION
#error "Define FULLPOSE_TF_VERSION (setup.py does) to the TensorFlow version."
#endif
extern "C" __attribute__((used, visibility("default"))) const char
    kFullposeBuiltForTf[] = "FULLPOSE_BUILT_FOR_TF=" FULLPOSE_TF_VERSION;
extern "C" __attribute__((used, visibility("default"))) const char
    kFullposeBuiltWithCuda[] =
#if GOOGLE_CUDA
        "FULLPOSE_BUILT_WITH_CUDA=1";
#else
        "FULLPOSE_BUILT_WITH_CUDA=0";
#endif

namespace fullpose {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("FullposeRasterizeTriangles")
    .Input("clip_vertices: float32")
    .Input("triangles: int32")
    .Attr("image_height: int >= 1")
    .Attr("image_width: int >= 1")
    .Attr("cull_backfaces: bool = false")
    .Output("triangle_ids: int32")
    .Output("barycentrics: float32")
    .Output("depth: float32")
    .SetShapeFn([](InferenceContext* c) {
      int64_t height, width;
      TF_RETURN_IF_ERROR(c->GetAttr("image_height", &height));
      TF_RETURN_IF_ERROR(c->GetAttr("image_width", &width));
      // Ranks are checked by the kernel (an InvalidArgument error in both
      // eager and graph mode); here only a well-formed input gets a shape.
      DimensionHandle batch = c->UnknownDim();
      ShapeHandle vertices = c->input(0);
      if (c->RankKnown(vertices) && c->Rank(vertices) == 3) {
        batch = c->Dim(vertices, 0);
      }
      c->set_output(0, c->MakeShape({batch, height, width}));
      c->set_output(1, c->MakeShape({batch, height, width, 3}));
      c->set_output(2, c->MakeShape({batch, height, width}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Rasterizes a batch of triangle meshes sharing one triangle list.

clip_vertices: [B, N, 4] homogeneous clip-space vertices, or [B, N, 3] NDC
  (w = 1). NDC x = -1 left, +1 right; y = +1 top row; z_ndc in [-1, 1],
  smaller is closer.
triangles: [T, 3] vertex indices in [0, N); counter-clockwise in NDC is front.
triangle_ids: [B, H, W] id of the nearest triangle, -1 on background.
barycentrics: [B, H, W, 3] perspective-correct, zeros on background.
depth: [B, H, W] z_ndc of the nearest fragment, 1 on background.
)doc");

::tensorflow::Status CheckShapes(const Tensor& vertices,
                                 const Tensor& triangles, int64_t height,
                                 int64_t width) {
  if (!(vertices.dims() == 3 &&
        (vertices.dim_size(2) == 3 || vertices.dim_size(2) == 4))) {
    return InvalidArgument(
        "rasterize: clip_vertices must have shape [B, N, 4] (clip) or "
        "[B, N, 3] (NDC), got ",
        vertices.shape().DebugString());
  }
  if (!(triangles.dims() == 2 && triangles.dim_size(1) == 3)) {
    return InvalidArgument("rasterize: triangles must have shape [T, 3], got ",
                           triangles.shape().DebugString());
  }
  if (vertices.dim_size(0) > std::numeric_limits<int>::max() ||
      vertices.dim_size(1) > std::numeric_limits<int32_t>::max() ||
      triangles.dim_size(0) > std::numeric_limits<int>::max()) {
    return InvalidArgument("rasterize: too many images, vertices or triangles");
  }
  if (height * width > (int64_t{1} << 31)) {
    return InvalidArgument("rasterize: image too large: ", height, "x", width);
  }
  return absl::OkStatus();
}

::tensorflow::Status NonFiniteError(const Tensor& vertices, int64_t index,
                                    float value) {
  const int64_t dim = vertices.dim_size(2);
  const int64_t per_image = vertices.dim_size(1) * dim;
  return InvalidArgument("rasterize: clip_vertices has a non-finite value (",
                         value, ") at [", index / per_image, ", ",
                         (index % per_image) / dim, ", ", index % dim, "]");
}

::tensorflow::Status OutOfRangeError(int64_t index, int32_t value,
                                     int64_t num_vertices) {
  return InvalidArgument("rasterize: triangles[", index / 3, ", ", index % 3,
                         "] = ", value, " is out of range [0, ", num_vertices,
                         ") for clip_vertices with ", num_vertices,
                         " vertices");
}

::tensorflow::Status AllocateOutputs(OpKernelContext* context, int64_t batch,
                                     int64_t height, int64_t width,
                                     Tensor** ids, Tensor** barycentrics,
                                     Tensor** depth) {
  TF_RETURN_IF_ERROR(context->allocate_output(
      0, TensorShape({batch, height, width}), ids));
  TF_RETURN_IF_ERROR(context->allocate_output(
      1, TensorShape({batch, height, width, 3}), barycentrics));
  return context->allocate_output(2, TensorShape({batch, height, width}),
                                  depth);
}

RasterizeParams Params(const Tensor& vertices, const Tensor& triangles,
                       int64_t height, int64_t width, bool cull_backfaces,
                       int num_threads) {
  RasterizeParams params;
  params.batch = static_cast<int>(vertices.dim_size(0));
  params.num_vertices = static_cast<int>(vertices.dim_size(1));
  params.vertex_dim = static_cast<int>(vertices.dim_size(2));
  params.num_triangles = static_cast<int>(triangles.dim_size(0));
  params.image_height = static_cast<int>(height);
  params.image_width = static_cast<int>(width);
  params.cull_backfaces = cull_backfaces;
  params.num_threads = num_threads;
  return params;
}

class RasterizeTrianglesOp : public OpKernel {
 public:
  explicit RasterizeTrianglesOp(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("image_height", &image_height_));
    OP_REQUIRES_OK(context, context->GetAttr("image_width", &image_width_));
    OP_REQUIRES_OK(context,
                   context->GetAttr("cull_backfaces", &cull_backfaces_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& vertices = context->input(0);
    const Tensor& triangles = context->input(1);
    OP_REQUIRES_OK(context, CheckShapes(vertices, triangles, image_height_,
                                        image_width_));
    auto* workers = context->device()->tensorflow_cpu_worker_threads()->workers;
    ParallelForFn parallel_for =
        [workers](int64_t total, int64_t cost_per_unit,
                  const std::function<void(int64_t, int64_t)>& work) {
          workers->ParallelFor(total, cost_per_unit, work);
        };
    const float* vertex_data = vertices.flat<float>().data();
    const int64_t bad_value =
        FindNonFinite(vertex_data, vertices.NumElements(), parallel_for);
    if (bad_value >= 0) {
      context->CtxFailure(
          NonFiniteError(vertices, bad_value, vertex_data[bad_value]));
      return;
    }
    const int32_t* triangle_data = triangles.flat<int32_t>().data();
    const int64_t bad_index =
        FindOutOfRange(triangle_data, triangles.NumElements(),
                       vertices.dim_size(1), parallel_for);
    if (bad_index >= 0) {
      context->CtxFailure(OutOfRangeError(
          bad_index, triangle_data[bad_index], vertices.dim_size(1)));
      return;
    }
    Tensor *ids, *barycentrics, *depth;
    OP_REQUIRES_OK(context, AllocateOutputs(context, vertices.dim_size(0),
                                            image_height_, image_width_, &ids,
                                            &barycentrics, &depth));
    if (vertices.dim_size(0) == 0) return;
    RasterizeTriangles(Params(vertices, triangles, image_height_, image_width_,
                              cull_backfaces_, workers->NumThreads()),
                       vertex_data, triangle_data, parallel_for,
                       ids->flat<int32_t>().data(),
                       barycentrics->flat<float>().data(),
                       depth->flat<float>().data());
  }

 private:
  int64_t image_height_;
  int64_t image_width_;
  bool cull_backfaces_;
};

REGISTER_KERNEL_BUILDER(
    Name("FullposeRasterizeTriangles").Device(::tensorflow::DEVICE_CPU),
    RasterizeTrianglesOp);

#if GOOGLE_CUDA
// GPU kernel: validation and rasterization run on the device
// (rasterize_triangles_gpu.cu.cc); one stream synchronization per call reads
// the validation result.
class RasterizeTrianglesGpuOp : public OpKernel {
 public:
  explicit RasterizeTrianglesGpuOp(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("image_height", &image_height_));
    OP_REQUIRES_OK(context, context->GetAttr("image_width", &image_width_));
    OP_REQUIRES_OK(context,
                   context->GetAttr("cull_backfaces", &cull_backfaces_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& vertices = context->input(0);
    const Tensor& triangles = context->input(1);
    OP_REQUIRES_OK(context, CheckShapes(vertices, triangles, image_height_,
                                        image_width_));
    const int64_t batch = vertices.dim_size(0);
    Tensor *ids, *barycentrics, *depth;
    OP_REQUIRES_OK(context, AllocateOutputs(context, batch, image_height_,
                                            image_width_, &ids, &barycentrics,
                                            &depth));
    const RasterizeParams params =
        Params(vertices, triangles, image_height_, image_width_,
               cull_backfaces_, 1);
    Tensor scratch;
    OP_REQUIRES_OK(context,
                   context->allocate_temp(
                       ::tensorflow::DT_UINT8,
                       TensorShape({GpuScratchBytes(params)}), &scratch));
    void* stream = context->op_device_context()
                       ->stream()
                       ->platform_specific_handle()
                       .stream;
    GpuValidation validation;
    const std::string error = RasterizeTrianglesGpu(
        params, vertices.flat<float>().data(),
        triangles.flat<int32_t>().data(), stream,
        scratch.flat<uint8_t>().data(), &validation,
        ids->flat<int32_t>().data(), barycentrics->flat<float>().data(),
        depth->flat<float>().data());
    OP_REQUIRES(context, error.empty(),
                ::tensorflow::errors::Internal("rasterize (GPU): ", error));
    if (validation.bad_vertex >= 0) {
      context->CtxFailure(NonFiniteError(vertices, validation.bad_vertex,
                                         validation.bad_vertex_value));
      return;
    }
    if (validation.bad_triangle >= 0) {
      context->CtxFailure(OutOfRangeError(validation.bad_triangle,
                                          validation.bad_triangle_value,
                                          vertices.dim_size(1)));
      return;
    }
  }

 private:
  int64_t image_height_;
  int64_t image_width_;
  bool cull_backfaces_;
};

REGISTER_KERNEL_BUILDER(
    Name("FullposeRasterizeTriangles").Device(::tensorflow::DEVICE_GPU),
    RasterizeTrianglesGpuOp);
#endif  // GOOGLE_CUDA

}  // namespace fullpose
