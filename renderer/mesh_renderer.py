"""Differentiable mesh rendering of per-vertex attributes.

screen-space vertices (pixels) -> clip space (renderer.camera.screen_to_clip)
-> rasterizer op (which triangle covers each pixel, perspective-correct
barycentrics with a compiled gradient) -> interpolated attributes
(renderer.interpolate), mask.

Gradients w.r.t. the vertices flow through the barycentrics. Two
implementations compute the same values and gradients, selected by
BARYCENTRICS_GRADIENT (or render_clip's `barycentrics_gradient`):
  'op': the op's own barycentrics, whose gradient is the compiled
    FullposeRasterizeTrianglesGrad, and the compiled interpolation
    (renderer.rasterize_op.interpolate_attributes; default, fast).
  'tf': barycentrics recomputed in TensorFlow ops from the triangle ids
    (renderer.interpolate.differentiable_barycentrics) and interpolation in
    TensorFlow ops (renderer.interpolate.interpolate): the reference.
"""

import collections

import tensorflow as tf

from renderer import camera
from renderer import interpolate as interpolate_lib

# 'op' (compiled gradient) or 'tf' (TensorFlow-ops reference); see above.
BARYCENTRICS_GRADIENT = 'op'
_BARYCENTRICS_GRADIENTS = ('op', 'tf')

RenderOutput = collections.namedtuple(
    'RenderOutput', ['image', 'mask', 'triangle_ids', 'barycentrics'])
RenderOutput.__doc__ = """Result of `render`.

  image: [B, H, W, C] float32 interpolated attributes, `background` outside.
  mask: [B, H, W, 1] float32, 1 where a triangle covers the pixel centre.
  triangle_ids: [B, H, W] int32, -1 on background.
  barycentrics: [B, H, W, 3] float32 differentiable barycentrics (0 outside).
"""


def rasterize_fragments(clip_vertices, triangles, image_size,
                        cull_backfaces):
  """renderer.rasterize_op.rasterize, imported on first use.

  Imported lazily so that the pure-TF parts of renderer/ (cameras, shading,
  interpolation) work without the compiled op.
  """
  from renderer import rasterize_op  # pylint: disable=g-import-not-at-top
  return rasterize_op.rasterize(clip_vertices, triangles, image_size,
                                cull_backfaces=cull_backfaces)


def render_clip(clip_vertices, triangles, attributes, image_size,
                cull_backfaces=True, background=0.0,
                barycentrics_gradient=None):
  """Renders per-vertex attributes from clip-space vertices.

  Use this directly for the pinhole camera (camera.perspective_clip) to get
  perspective-correct interpolation.

  Args:
    clip_vertices: [B, N, 4] float32 clip-space vertices (or [B, N, 3] NDC).
    triangles: [T, 3] int32, counter-clockwise front faces (in NDC, y up).
    attributes: [B, N, C] float32 per-vertex attributes.
    image_size: (height, width) python ints.
    cull_backfaces: python bool, drop clockwise (back-facing) triangles.
    background: python float or [C] float32, value of uncovered pixels.
    barycentrics_gradient: None (BARYCENTRICS_GRADIENT), 'op' or 'tf': which
      implementation differentiates the barycentrics (module docstring).

  Returns:
    RenderOutput. image and barycentrics are differentiable w.r.t.
    clip_vertices and attributes (not w.r.t. which triangle is visible).
  """
  method = barycentrics_gradient or BARYCENTRICS_GRADIENT
  if method not in _BARYCENTRICS_GRADIENTS:
    raise ValueError('render: barycentrics_gradient must be one of %s, got %r'
                     % (_BARYCENTRICS_GRADIENTS, method))
  clip_vertices = tf.convert_to_tensor(clip_vertices, tf.float32)
  attributes = tf.convert_to_tensor(attributes, tf.float32)
  triangles = tf.convert_to_tensor(triangles)
  if attributes.shape.rank != 3:
    raise ValueError('render: attributes must be [B, N, C], got shape %s' %
                     attributes.shape)
  if (clip_vertices.shape.rank == 3 and
      attributes.shape[:2] != clip_vertices.shape[:2] and
      None not in attributes.shape[:2] and
      None not in clip_vertices.shape[:2]):
    raise ValueError('render: attributes %s and vertices %s must agree in '
                     '[B, N]' % (attributes.shape, clip_vertices.shape))
  if method == 'op':
    from renderer import rasterize_op  # pylint: disable=g-import-not-at-top
    fragments = rasterize_fragments(clip_vertices, triangles, image_size,
                                    cull_backfaces)
    triangle_ids, bary = fragments.triangle_ids, fragments.barycentrics
    values = rasterize_op.interpolate_attributes(attributes, triangles,
                                                 triangle_ids, bary)
  else:
    fragments = rasterize_fragments(tf.stop_gradient(clip_vertices),
                                    triangles, image_size, cull_backfaces)
    triangle_ids = fragments.triangle_ids
    bary = interpolate_lib.differentiable_barycentrics(
        clip_vertices, triangles, triangle_ids)
    values = interpolate_lib.interpolate(attributes, triangles, triangle_ids,
                                         bary)
  mask = tf.cast(triangle_ids >= 0, tf.float32)[..., None]
  # values are zero on background pixels.
  if isinstance(background, (int, float)) and background == 0.0:
    image = values
  else:
    image = values + tf.cast(background, tf.float32) * (1.0 - mask)
  return RenderOutput(image, mask, triangle_ids, bary)


def render(screen_vertices, triangles, attributes, image_size,
           cull_backfaces=True, background=0.0,
           depth_range_px=camera.DEFAULT_DEPTH_RANGE_PX):
  """Renders per-vertex attributes of screen-space vertices.

  Args:
    screen_vertices: [B, N, 3] float32: x, y pixels (origin top-left corner,
      x right, y down, pixel centres at +0.5), z depth, larger = closer (as
      returned by camera.orthographic_project).
    triangles: [T, 3] int32, counter-clockwise seen from outside in model
      space (front faces stay counter-clockwise after the camera).
    attributes: [B, N, C] float32 per-vertex attributes (colours, normals...).
    image_size: (height, width) python ints.
    cull_backfaces: python bool.
    background: python float or [C], value of uncovered pixels.
    depth_range_px: |z| must stay below this (see camera.screen_to_clip).

  Returns:
    RenderOutput(image [B,H,W,C], mask [B,H,W,1] float32, triangle_ids
    [B,H,W] int32, barycentrics [B,H,W,3]); image is differentiable w.r.t.
    screen_vertices and attributes. The interpolation is affine in screen
    space (orthographic), i.e. exact for the orthographic camera.
  """
  clip_vertices = camera.screen_to_clip(screen_vertices, image_size,
                                        depth_range_px)
  return render_clip(clip_vertices, triangles, attributes, image_size,
                     cull_backfaces=cull_backfaces, background=background)
