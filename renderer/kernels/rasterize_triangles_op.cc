// TensorFlow op registration and CPU kernel for FullposeRasterizeTriangles.
// The rasterization itself lives in rasterize_triangles_core.{h,cc}; this
// file validates inputs, allocates outputs and lends TF's CPU thread pool.
#include <string>

#include "rasterize_triangles_core.h"
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
    OP_REQUIRES(context,
                vertices.dims() == 3 && (vertices.dim_size(2) == 3 ||
                                         vertices.dim_size(2) == 4),
                InvalidArgument("rasterize: clip_vertices must have shape "
                                "[B, N, 4] (clip) or [B, N, 3] (NDC), got ",
                                vertices.shape().DebugString()));
    OP_REQUIRES(context, triangles.dims() == 2 && triangles.dim_size(1) == 3,
                InvalidArgument("rasterize: triangles must have shape [T, 3], "
                                "got ",
                                triangles.shape().DebugString()));
    const int64_t num_vertices = vertices.dim_size(1);
    OP_REQUIRES(context,
                vertices.dim_size(0) <= std::numeric_limits<int>::max() &&
                    num_vertices <= std::numeric_limits<int32_t>::max() &&
                    triangles.dim_size(0) <= std::numeric_limits<int>::max(),
                InvalidArgument("rasterize: too many images, vertices or "
                                "triangles"));
    const int64_t pixels = image_height_ * image_width_;
    OP_REQUIRES(context, pixels <= (int64_t{1} << 31),
                InvalidArgument("rasterize: image too large: ", image_height_,
                                "x", image_width_));

    const float* vertex_data = vertices.flat<float>().data();
    const int64_t bad_value = FindNonFinite(vertex_data, vertices.NumElements());
    if (bad_value >= 0) {
      const int64_t dim = vertices.dim_size(2);
      const int64_t per_image = num_vertices * dim;
      context->CtxFailure(InvalidArgument(
          "rasterize: clip_vertices has a non-finite value (",
          vertex_data[bad_value], ") at [", bad_value / per_image, ", ",
          (bad_value % per_image) / dim, ", ", bad_value % dim, "]"));
      return;
    }
    const int32_t* triangle_data = triangles.flat<int32_t>().data();
    const int64_t bad_index =
        FindOutOfRange(triangle_data, triangles.NumElements(), num_vertices);
    if (bad_index >= 0) {
      context->CtxFailure(InvalidArgument(
          "rasterize: triangles[", bad_index / 3, ", ", bad_index % 3,
          "] = ", triangle_data[bad_index], " is out of range [0, ",
          num_vertices, ") for clip_vertices with ", num_vertices,
          " vertices"));
      return;
    }

    const int64_t batch = vertices.dim_size(0);
    Tensor* ids = nullptr;
    Tensor* barycentrics = nullptr;
    Tensor* depth = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({batch, image_height_,
                                                image_width_}),
                                &ids));
    OP_REQUIRES_OK(context, context->allocate_output(
                                1, TensorShape({batch, image_height_,
                                                image_width_, 3}),
                                &barycentrics));
    OP_REQUIRES_OK(context, context->allocate_output(
                                2, TensorShape({batch, image_height_,
                                                image_width_}),
                                &depth));
    if (batch == 0) return;

    auto* workers = context->device()->tensorflow_cpu_worker_threads()->workers;
    ParallelForFn parallel_for =
        [workers](int64_t total, int64_t cost_per_unit,
                  const std::function<void(int64_t, int64_t)>& work) {
          workers->ParallelFor(total, cost_per_unit, work);
        };
    RasterizeParams params;
    params.batch = static_cast<int>(batch);
    params.num_vertices = static_cast<int>(num_vertices);
    params.vertex_dim = static_cast<int>(vertices.dim_size(2));
    params.num_triangles = static_cast<int>(triangles.dim_size(0));
    params.image_height = static_cast<int>(image_height_);
    params.image_width = static_cast<int>(image_width_);
    params.cull_backfaces = cull_backfaces_;
    params.num_threads = workers->NumThreads();
    RasterizeTriangles(params, vertex_data, triangle_data, parallel_for,
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

}  // namespace fullpose
