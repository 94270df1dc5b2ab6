"""Posed, SH-lit rendering of a model-space mesh: the one shading path.

  model-space vertices and normals -> pose (Chen20's orthographic camera,
  renderer/camera.py) -> normals rotated into the camera frame -> SH shading
  of the albedo (renderer/shading.py) -> rasterized colours, plus optional
  extra per-vertex channels (region masks) rendered alongside.

Used by the coarse face render (coarse/face_reconstruction.py) and the
detailed face render (detail/displacement.py), so that zero displacement
reproduces the coarse render exactly.
"""

import collections

import tensorflow as tf

from renderer import camera
from renderer import mesh_renderer
from renderer import shading

ShadedRender = collections.namedtuple(
    'ShadedRender',
    ['screen_vertices', 'normals', 'colors', 'image', 'mask', 'extra'])
ShadedRender.__doc__ = """Result of `render_shaded`.

  screen_vertices: [B,N,3] float32, x, y pixels (top-left origin), z depth in
    pixels, larger = closer (camera.orthographic_project).
  normals: [B,N,3] float32 unit vertex normals in the camera frame.
  colors: [B,N,3] float32 shaded vertex colours (not clipped).
  image: [B,H,W,3] float32 render clipped to [0,1], 0 on background.
  mask: [B,H,W,1] float32, 1 where the mesh covers the pixel.
  extra: [B,H,W,E] float32 interpolated extra channels (E may be 0).
"""


def render_shaded(vertices, model_normals, albedo, pose, lighting, triangles,
                  image_size, extra=None):
  """Renders a model-space mesh with a pose and SH lighting.

  Back faces are culled.

  Args:
    vertices: [B,N,3] float32 mm, model space.
    model_normals: [B,N,3] float32 unit vertex normals in model space.
    albedo: [B,N,3] float32 in [0,1].
    pose: [B,6] float32 (renderer/camera.py layout).
    lighting: [B,27] float32 (renderer/shading.py layout).
    triangles: [T,3] int32, counter-clockwise seen from outside.
    image_size: (height, width) python ints.
    extra: optional [B,N,E] float32 per-vertex channels to render alongside.

  Returns:
    ShadedRender, differentiable w.r.t. every tensor input (not w.r.t. which
    triangle covers a pixel).
  """
  vertices = tf.convert_to_tensor(vertices, tf.float32)
  pose = tf.convert_to_tensor(pose, tf.float32)
  screen = camera.orthographic_project(vertices, pose, image_size)
  # SH lighting is defined in the camera frame (renderer/shading.py).
  rotation = camera.rotation_matrix(pose[:, :3])
  normals = tf.einsum('bij,bnj->bni', rotation, model_normals)
  colors = shading.sh_shade(albedo, normals, lighting)
  attributes = colors if extra is None else tf.concat([colors, extra], -1)
  out = mesh_renderer.render(screen, triangles, attributes, image_size,
                             cull_backfaces=True)
  return ShadedRender(screen_vertices=screen,
                      normals=normals,
                      colors=colors,
                      image=tf.clip_by_value(out.image[..., :3], 0.0, 1.0),
                      mask=out.mask,
                      extra=out.image[..., 3:])
