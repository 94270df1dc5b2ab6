// TensorFlow op registration and kernels for FullposeRasterizeTriangles and
// its gradient, FullposeRasterizeTrianglesGrad (registered as the forward
// op's gradient in renderer/rasterize_op.py). The arithmetic lives in
// rasterize_triangles_core.{h,cc} (CPU) and rasterize_triangles_gpu.cu.cc
// (CUDA, built when GOOGLE_CUDA); this file validates inputs, allocates
// outputs and lends TF's CPU thread pool.
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

REGISTER_OP("FullposeRasterizeTrianglesGrad")
    .Input("clip_vertices: float32")
    .Input("triangles: int32")
    .Input("triangle_ids: int32")
    .Input("d_barycentrics: float32")
    .Output("d_clip_vertices: float32")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Gradient of FullposeRasterizeTriangles' barycentrics w.r.t. clip_vertices.

clip_vertices: [B, N, 4] or [B, N, 3] as given to the forward op.
triangles: [T, 3] as given to the forward op.
triangle_ids: [B, H, W] the forward op's triangle_ids, in [-1, T).
d_barycentrics: [B, H, W, 3] gradient of the loss w.r.t. the barycentrics.
d_clip_vertices: [B, N, 4] or [B, N, 3] gradient w.r.t. clip_vertices
  (zero for z; background pixels contribute nothing).
)doc");

REGISTER_OP("FullposeInterpolateAttributes")
    .Input("attributes: float32")
    .Input("triangles: int32")
    .Input("triangle_ids: int32")
    .Input("barycentrics: float32")
    .Output("values: float32")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle ids = c->input(2);
      ShapeHandle attributes = c->input(0);
      if (!c->RankKnown(ids) || c->Rank(ids) != 3 ||
          !c->RankKnown(attributes) || c->Rank(attributes) != 3) {
        c->set_output(0, c->UnknownShapeOfRank(4));
        return absl::OkStatus();
      }
      c->set_output(0, c->MakeShape({c->Dim(ids, 0), c->Dim(ids, 1),
                                     c->Dim(ids, 2), c->Dim(attributes, 2)}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Interpolates per-vertex attributes at every pixel with the rasterizer's
barycentrics.

attributes: [B, N, C] per-vertex attributes.
triangles: [T, 3] vertex indices in [0, N).
triangle_ids: [B, H, W] from FullposeRasterizeTriangles, in [-1, T).
barycentrics: [B, H, W, 3].
values: [B, H, W, C] sum_k barycentrics[k] * attributes[triangle corner k],
  zero where triangle_ids is -1.
)doc");

REGISTER_OP("FullposeInterpolateAttributesGrad")
    .Input("attributes: float32")
    .Input("triangles: int32")
    .Input("triangle_ids: int32")
    .Input("barycentrics: float32")
    .Input("d_values: float32")
    .Output("d_attributes: float32")
    .Output("d_barycentrics: float32")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(3));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Gradient of FullposeInterpolateAttributes w.r.t. attributes and
barycentrics, given d_values [B, H, W, C].
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

::tensorflow::Status CheckGradShapes(const Tensor& vertices,
                                     const Tensor& triangles,
                                     const Tensor& ids,
                                     const Tensor& d_barycentrics) {
  TF_RETURN_IF_ERROR(CheckShapes(vertices, triangles, 1, 1));
  if (!(ids.dims() == 3 && ids.dim_size(0) == vertices.dim_size(0))) {
    return InvalidArgument(
        "rasterize gradient: triangle_ids must have shape [B, H, W] with B = ",
        vertices.dim_size(0), ", got ", ids.shape().DebugString());
  }
  if (!(d_barycentrics.dims() == 4 &&
        d_barycentrics.dim_size(0) == ids.dim_size(0) &&
        d_barycentrics.dim_size(1) == ids.dim_size(1) &&
        d_barycentrics.dim_size(2) == ids.dim_size(2) &&
        d_barycentrics.dim_size(3) == 3)) {
    return InvalidArgument(
        "rasterize gradient: d_barycentrics must have shape [B, H, W, 3] = ",
        ids.shape().DebugString(), " + [3], got ",
        d_barycentrics.shape().DebugString());
  }
  if (ids.dim_size(1) * ids.dim_size(2) > (int64_t{1} << 31)) {
    return InvalidArgument("rasterize gradient: image too large: ",
                           ids.shape().DebugString());
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

RasterizeParams GradParams(const Tensor& vertices, const Tensor& triangles,
                           const Tensor& ids, int num_threads) {
  return Params(vertices, triangles, ids.dim_size(1), ids.dim_size(2),
                /*cull_backfaces=*/false, num_threads);
}

// Checks the interpolation inputs' shapes; d_values (may be null) must have
// the values' shape [B, H, W, C].
::tensorflow::Status CheckInterpolateShapes(const Tensor& attributes,
                                            const Tensor& triangles,
                                            const Tensor& ids,
                                            const Tensor& barycentrics,
                                            const Tensor* d_values) {
  if (attributes.dims() != 3) {
    return InvalidArgument("interpolate: attributes must have shape "
                           "[B, N, C], got ",
                           attributes.shape().DebugString());
  }
  if (!(triangles.dims() == 2 && triangles.dim_size(1) == 3)) {
    return InvalidArgument("interpolate: triangles must have shape [T, 3], "
                           "got ", triangles.shape().DebugString());
  }
  if (!(ids.dims() == 3 && ids.dim_size(0) == attributes.dim_size(0))) {
    return InvalidArgument("interpolate: triangle_ids must have shape "
                           "[B, H, W] with B = ", attributes.dim_size(0),
                           ", got ", ids.shape().DebugString());
  }
  if (!(barycentrics.dims() == 4 && barycentrics.dim_size(3) == 3 &&
        barycentrics.dim_size(0) == ids.dim_size(0) &&
        barycentrics.dim_size(1) == ids.dim_size(1) &&
        barycentrics.dim_size(2) == ids.dim_size(2))) {
    return InvalidArgument("interpolate: barycentrics must have shape ",
                           ids.shape().DebugString(), " + [3], got ",
                           barycentrics.shape().DebugString());
  }
  if (d_values != nullptr &&
      !(d_values->dims() == 4 &&
        d_values->dim_size(0) == ids.dim_size(0) &&
        d_values->dim_size(1) == ids.dim_size(1) &&
        d_values->dim_size(2) == ids.dim_size(2) &&
        d_values->dim_size(3) == attributes.dim_size(2))) {
    return InvalidArgument("interpolate gradient: d_values must have shape "
                           "[B, H, W, C], got ",
                           d_values->shape().DebugString());
  }
  if (attributes.dim_size(0) > std::numeric_limits<int>::max() ||
      attributes.dim_size(1) > std::numeric_limits<int32_t>::max() ||
      attributes.dim_size(2) > std::numeric_limits<int>::max() ||
      triangles.dim_size(0) > std::numeric_limits<int>::max() ||
      ids.dim_size(1) * ids.dim_size(2) > (int64_t{1} << 31)) {
    return InvalidArgument("interpolate: input too large");
  }
  return absl::OkStatus();
}

InterpolateParams MakeInterpolateParams(const Tensor& attributes,
                                        const Tensor& triangles,
                                        const Tensor& ids, int num_threads) {
  InterpolateParams params;
  params.batch = static_cast<int>(attributes.dim_size(0));
  params.num_vertices = static_cast<int>(attributes.dim_size(1));
  params.num_channels = static_cast<int>(attributes.dim_size(2));
  params.num_triangles = static_cast<int>(triangles.dim_size(0));
  params.image_height = static_cast<int>(ids.dim_size(1));
  params.image_width = static_cast<int>(ids.dim_size(2));
  params.num_threads = num_threads;
  return params;
}

// TF's CPU thread pool of the kernel's device as a ParallelForFn (blocks
// claimed dynamically: robust to pool threads that a loaded machine starts
// late); *threads receives its size.
ParallelForFn CpuParallelFor(OpKernelContext* context, int* threads) {
  auto* workers = context->device()->tensorflow_cpu_worker_threads()->workers;
  *threads = workers->NumThreads();
  return DynamicParallelFor(
      [workers](std::function<void()> task) {
        workers->Schedule(std::move(task));
      },
      *threads);
}

// Attributes, shape checks and outputs shared by the CPU and GPU forward
// kernels; each implements Rasterize.
class RasterizeTrianglesOpBase : public OpKernel {
 public:
  explicit RasterizeTrianglesOpBase(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("image_height", &image_height_));
    OP_REQUIRES_OK(context, context->GetAttr("image_width", &image_width_));
    OP_REQUIRES_OK(context,
                   context->GetAttr("cull_backfaces", &cull_backfaces_));
  }

  // Checks the inputs' shapes, allocates the three outputs, rasterizes.
  void Compute(OpKernelContext* context) final {
    const Tensor& vertices = context->input(0);
    OP_REQUIRES_OK(context, CheckShapes(vertices, context->input(1),
                                        image_height_, image_width_));
    Tensor *ids, *barycentrics, *depth;
    OP_REQUIRES_OK(context, AllocateOutputs(context, vertices.dim_size(0),
                                            image_height_, image_width_, &ids,
                                            &barycentrics, &depth));
    Rasterize(context, vertices, context->input(1),
              ids->flat<int32_t>().data(), barycentrics->flat<float>().data(),
              depth->flat<float>().data());
  }

 protected:
  // Validates the values and indices and writes the outputs (shapes as in
  // the op's documentation).
  virtual void Rasterize(OpKernelContext* context, const Tensor& vertices,
                         const Tensor& triangles, int32_t* ids,
                         float* barycentrics, float* depth) = 0;

  RasterizeParams MakeParams(OpKernelContext* context, int num_threads) const {
    return Params(context->input(0), context->input(1), image_height_,
                  image_width_, cull_backfaces_, num_threads);
  }

 private:
  int64_t image_height_;
  int64_t image_width_;
  bool cull_backfaces_;
};

class RasterizeTrianglesOp : public RasterizeTrianglesOpBase {
 public:
  using RasterizeTrianglesOpBase::RasterizeTrianglesOpBase;

 protected:
  void Rasterize(OpKernelContext* context, const Tensor& vertices,
                 const Tensor& triangles, int32_t* ids, float* barycentrics,
                 float* depth) override {
    int num_threads;
    const ParallelForFn parallel_for = CpuParallelFor(context, &num_threads);
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
    if (vertices.dim_size(0) == 0) return;
    RasterizeTriangles(MakeParams(context, num_threads), vertex_data,
                       triangle_data, parallel_for, ids, barycentrics, depth);
  }
};

REGISTER_KERNEL_BUILDER(
    Name("FullposeRasterizeTriangles").Device(::tensorflow::DEVICE_CPU),
    RasterizeTrianglesOp);

// Validates triangles against num_vertices and ids against the triangle
// count on the CPU (InvalidArgument naming the first bad element).
::tensorflow::Status CheckIndices(const Tensor& triangles, const Tensor& ids,
                                  int64_t num_vertices,
                                  const ParallelForFn& parallel_for) {
  const int32_t* triangle_data = triangles.flat<int32_t>().data();
  const int64_t bad_index = FindOutOfRange(
      triangle_data, triangles.NumElements(), num_vertices, parallel_for);
  if (bad_index >= 0) {
    return OutOfRangeError(bad_index, triangle_data[bad_index], num_vertices);
  }
  const int32_t* id_data = ids.flat<int32_t>().data();
  const int64_t bad_id = FindIdOutOfRange(id_data, ids.NumElements(),
                                          triangles.dim_size(0), parallel_for);
  if (bad_id >= 0) {
    return InvalidArgument("triangle_ids has ", id_data[bad_id],
                           ", outside [-1, ", triangles.dim_size(0), ")");
  }
  return absl::OkStatus();
}

// On the CPU: TF's thread pool as *parallel_for (*num_threads its size),
// then triangles and ids validated (CheckIndices). On the GPU (`gpu`):
// nothing to validate here, *num_threads = 1.
::tensorflow::Status PrepareIndices(OpKernelContext* context, bool gpu,
                                    const Tensor& triangles, const Tensor& ids,
                                    int64_t num_vertices,
                                    ParallelForFn* parallel_for,
                                    int* num_threads) {
  *num_threads = 1;
  if (gpu) return absl::OkStatus();
  *parallel_for = CpuParallelFor(context, num_threads);
  return CheckIndices(triangles, ids, num_vertices, *parallel_for);
}

#if GOOGLE_CUDA
// The CUDA stream (a cudaStream_t) of the kernel's device context.
void* GpuStream(OpKernelContext* context) {
  return context->op_device_context()
      ->stream()
      ->platform_specific_handle()
      .stream;
}

#endif  // GOOGLE_CUDA

// dL/dclip_vertices from dL/dbarycentrics (rasterize_triangles_core.h) on
// the CPU, or on the GPU (rasterize_triangles_gpu.cu.cc), where
// out-of-range ids or vertex indices are skipped rather than reported (no
// stream synchronization; the forward op never produces them).
template <bool kGpu>
class RasterizeTrianglesGradOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* context) override {
    const Tensor& vertices = context->input(0);
    const Tensor& triangles = context->input(1);
    const Tensor& ids = context->input(2);
    const Tensor& d_barycentrics = context->input(3);
    OP_REQUIRES_OK(context,
                   CheckGradShapes(vertices, triangles, ids, d_barycentrics));
    int num_threads;
    ParallelForFn parallel_for;
    OP_REQUIRES_OK(context,
                   PrepareIndices(context, kGpu, triangles, ids,
                                  vertices.dim_size(1), &parallel_for,
                                  &num_threads));
    Tensor* d_vertices;
    OP_REQUIRES_OK(context, context->allocate_output(0, vertices.shape(),
                                                     &d_vertices));
    if (vertices.NumElements() == 0) return;
    const RasterizeParams params =
        GradParams(vertices, triangles, ids, num_threads);
    const float* vertex_data = vertices.flat<float>().data();
    const int32_t* triangle_data = triangles.flat<int32_t>().data();
    const int32_t* id_data = ids.flat<int32_t>().data();
    const float* d_bary_data = d_barycentrics.flat<float>().data();
    float* out = d_vertices->flat<float>().data();
    if (!kGpu) {
      RasterizeTrianglesGrad(params, vertex_data, triangle_data, id_data,
                             d_bary_data, parallel_for, out);
      return;
    }
#if GOOGLE_CUDA
    Tensor scratch;
    OP_REQUIRES_OK(context,
                   context->allocate_temp(
                       ::tensorflow::DT_UINT8,
                       TensorShape({GpuGradScratchBytes(params)}), &scratch));
    const std::string error = RasterizeTrianglesGradGpu(
        params, vertex_data, triangle_data, id_data, d_bary_data,
        GpuStream(context), scratch.flat<uint8_t>().data(), out);
    OP_REQUIRES(context, error.empty(),
                ::tensorflow::errors::Internal("rasterize gradient (GPU): ",
                                               error));
#endif
  }
};

// Interpolation (kGradient false) or its gradient (true) on the CPU or, with
// kGpu, the GPU (rasterize_triangles_gpu.cu.cc: shapes are checked here;
// out-of-range indices give zeros on the device, no stream
// synchronization).
template <bool kGpu, bool kGradient>
class InterpolateAttributesOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* context) override {
    const Tensor& attributes = context->input(0);
    const Tensor& triangles = context->input(1);
    const Tensor& ids = context->input(2);
    const Tensor& barycentrics = context->input(3);
    const Tensor* d_values = kGradient ? &context->input(4) : nullptr;
    OP_REQUIRES_OK(context, CheckInterpolateShapes(attributes, triangles, ids,
                                                   barycentrics, d_values));
    int num_threads;
    ParallelForFn parallel_for;
    OP_REQUIRES_OK(context,
                   PrepareIndices(context, kGpu, triangles, ids,
                                  attributes.dim_size(1), &parallel_for,
                                  &num_threads));
    // Forward: values [B, H, W, C]; gradient: d_attributes, d_barycentrics.
    Tensor* out[2] = {nullptr, nullptr};
    if (kGradient) {
      OP_REQUIRES_OK(context, context->allocate_output(0, attributes.shape(),
                                                       &out[0]));
      OP_REQUIRES_OK(context, context->allocate_output(
                                  1, barycentrics.shape(), &out[1]));
    } else {
      OP_REQUIRES_OK(context, context->allocate_output(
                                  0,
                                  TensorShape({ids.dim_size(0), ids.dim_size(1),
                                               ids.dim_size(2),
                                               attributes.dim_size(2)}),
                                  &out[0]));
    }
    if (ids.NumElements() == 0 && attributes.NumElements() == 0) return;
    const InterpolateParams params =
        MakeInterpolateParams(attributes, triangles, ids, num_threads);
    const float* attribute_data = attributes.flat<float>().data();
    const int32_t* triangle_data = triangles.flat<int32_t>().data();
    const int32_t* id_data = ids.flat<int32_t>().data();
    const float* bary_data = barycentrics.flat<float>().data();
    const float* d_value_data =
        kGradient ? d_values->flat<float>().data() : nullptr;
    float* out0 = out[0]->flat<float>().data();
    float* out1 = kGradient ? out[1]->flat<float>().data() : nullptr;
    if (!kGpu) {
      if (kGradient) {
        InterpolateAttributesGrad(params, attribute_data, triangle_data,
                                  id_data, bary_data, d_value_data,
                                  parallel_for, out0, out1);
      } else {
        InterpolateAttributes(params, attribute_data, triangle_data, id_data,
                              bary_data, parallel_for, out0);
      }
      return;
    }
#if GOOGLE_CUDA
    const std::string error =
        kGradient ? InterpolateAttributesGradGpu(
                        params, attribute_data, triangle_data, id_data,
                        bary_data, d_value_data, GpuStream(context), out0,
                        out1)
                  : InterpolateAttributesGpu(params, attribute_data,
                                             triangle_data, id_data,
                                             bary_data, GpuStream(context),
                                             out0);
    OP_REQUIRES(context, error.empty(),
                ::tensorflow::errors::Internal("interpolate (GPU): ", error));
#endif
  }
};

REGISTER_KERNEL_BUILDER(
    Name("FullposeRasterizeTrianglesGrad").Device(::tensorflow::DEVICE_CPU),
    RasterizeTrianglesGradOp<false>);
REGISTER_KERNEL_BUILDER(
    Name("FullposeInterpolateAttributes").Device(::tensorflow::DEVICE_CPU),
    (InterpolateAttributesOp<false, false>));
REGISTER_KERNEL_BUILDER(Name("FullposeInterpolateAttributesGrad")
                            .Device(::tensorflow::DEVICE_CPU),
                        (InterpolateAttributesOp<false, true>));

#if GOOGLE_CUDA
// GPU kernel: validation and rasterization run on the device
// (rasterize_triangles_gpu.cu.cc); one stream synchronization per call reads
// the validation result.
class RasterizeTrianglesGpuOp : public RasterizeTrianglesOpBase {
 public:
  using RasterizeTrianglesOpBase::RasterizeTrianglesOpBase;

 protected:
  void Rasterize(OpKernelContext* context, const Tensor& vertices,
                 const Tensor& triangles, int32_t* ids, float* barycentrics,
                 float* depth) override {
    const RasterizeParams params = MakeParams(context, 1);
    Tensor scratch;
    OP_REQUIRES_OK(context,
                   context->allocate_temp(
                       ::tensorflow::DT_UINT8,
                       TensorShape({GpuScratchBytes(params)}), &scratch));
    void* stream = GpuStream(context);
    GpuValidation validation;
    const std::string error = RasterizeTrianglesGpu(
        params, vertices.flat<float>().data(),
        triangles.flat<int32_t>().data(), stream,
        scratch.flat<uint8_t>().data(), &validation, ids, barycentrics,
        depth);
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
};

REGISTER_KERNEL_BUILDER(
    Name("FullposeRasterizeTriangles").Device(::tensorflow::DEVICE_GPU),
    RasterizeTrianglesGpuOp);

REGISTER_KERNEL_BUILDER(Name("FullposeRasterizeTrianglesGrad")
                            .Device(::tensorflow::DEVICE_GPU),
                        RasterizeTrianglesGradOp<true>);
REGISTER_KERNEL_BUILDER(
    Name("FullposeInterpolateAttributes").Device(::tensorflow::DEVICE_GPU),
    (InterpolateAttributesOp<true, false>));
REGISTER_KERNEL_BUILDER(Name("FullposeInterpolateAttributesGrad")
                            .Device(::tensorflow::DEVICE_GPU),
                        (InterpolateAttributesOp<true, true>));
#endif  // GOOGLE_CUDA

}  // namespace fullpose
