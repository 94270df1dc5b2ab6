"""Coefficients -> coarse face: the ONE coefficients-to-render path.

  identity, expression -> vertices (bfm.MorphableModel.vertices, mm)
  texture -> albedo;  pose, lighting -> renderer.shaded_render (Chen20's
  orthographic camera, normals from bfm/mesh_geometry.py rotated to the
  camera frame, SH shading in Chen20's layout, one rasterizer call for the
  whole batch).

Used by the coarse losses, SAM (coarse/sam.py), detail/, the synthetic data
and the benchmark.

Landmarks: the 68 iBUG landmarks of the model, with the jaw landmarks 0..16
sliding to the silhouette (3DDFA-style "landmark marching"): landmark k < 8
(subject's right, image left in a frontal view) takes, among the model's
contour candidates of k (a horizontal band of vertices at that jaw height),
the one with the smallest screen x; k > 8 the largest; 8 (chin) is fixed.
This is what dlib (and the synthetic training data) marks on a turned face:
landmark_source='dlib', the default everywhere. With
landmark_source='facemesh' the jaw is the model's FIXED `landmarks68`
vertices instead, as FaceMesh marks fixed surface points (on the hidden side
they project inside the face); coarse/landmark_fit.py `landmark_vertices`
is the same choice for the fit. JAW_CONVENTIONS names both.
"""

import collections

import numpy as np
import tensorflow as tf

from bfm import mesh_geometry
from renderer import shaded_render
from coarse import coefficients as coefficients_lib

CoarseFace = collections.namedtuple('CoarseFace', [
    'vertices', 'screen_vertices', 'albedo', 'colors', 'normals', 'image',
    'mask', 'landmarks2d', 'photo_mask'
])
CoarseFace.__doc__ = """Output of `reconstruct` / `render_faces`.

  vertices: [B,N,3] float32 mm, model space (pose not applied).
  screen_vertices: [B,N,3] float32, x, y pixels (top-left origin, y down),
    z depth in pixels, larger = closer (renderer.camera.orthographic_project).
  albedo: [B,N,3] float32 in [0,1].
  colors: [B,N,3] float32 shaded vertex colours (not clipped).
  normals: [B,N,3] float32 unit vertex normals in the CAMERA frame (rotated
    by the pose; +z towards the viewer), the ones the shading uses.
  image: [B,H,W,3] float32 render in [0,1], 0 on background.
  mask: [B,H,W,1] float32, 1 where the face mesh covers the pixel.
  landmarks2d: [B,68,2] float32 pixels (x, y) of the model's 68 landmarks
    under the landmark source's jaw convention (default 'dlib': jaw sliding
    to the silhouette; 'facemesh': fixed jaw vertices).
  photo_mask: [B,H,W,1] float32, 1 on rendered pixels of the model's 'face'
    region outside the eyes ('wo_eyes'): where Chen20's photo loss looks.
"""

# Jaw convention of the model landmarks per photo landmark source
# (coarse/landmark_fit.LANDMARK_SOURCES; not imported here: landmark_fit
# imports this module).
JAW_CONVENTIONS = {'dlib': 'sliding', 'facemesh': 'fixed'}

_CACHE = {}


def _model_constants(model):
  """Per-model NumPy constants: contour candidate table and region masks."""
  key = id(model)
  if key in _CACHE and _CACHE[key][0] is model:
    return _CACHE[key][1]
  cands = [np.asarray(c, np.int32).reshape(-1)
           for c in model.contour_candidates]
  if len(cands) != 17 or any(c.size == 0 for c in cands):
    raise ValueError('face_reconstruction: model %r needs 17 non-empty contour '
                     'candidate lists, got %s' %
                     (model.name, [c.size for c in cands]))
  width = max(c.size for c in cands)
  table = np.stack([np.pad(c, (0, width - c.size), mode='edge') for c in cands])
  side = np.array([-1.0] * 8 + [0.0] + [1.0] * 8, np.float32)
  face = model.masks['face'].astype(np.float32)
  wo_eyes = model.masks['wo_eyes'].astype(np.float32)
  consts = {
      'contour_table': table,  # [17, C] int32
      'contour_side': side,  # [17]
      'region_masks': np.stack([face, wo_eyes], -1),  # [N, 2]
  }
  _CACHE[key] = (model, consts)
  return consts


def landmark_indices(model, screen_vertices):
  """[B,68] int32 vertex indices of the 68 landmarks after jaw marching.

  Args:
    model: bfm.MorphableModel.
    screen_vertices: [B,N,3] float32 screen vertices (pixels).
  """
  consts = _model_constants(model)
  table = tf.constant(consts['contour_table'])
  side = tf.constant(consts['contour_side'])
  xs = tf.gather(screen_vertices[..., 0], table, axis=1)  # [B,17,C]
  pick = tf.argmax(xs * side[None, :, None], axis=-1, output_type=tf.int32)
  # jaw[b, k] = table[k, pick[b, k]].
  batch = tf.shape(screen_vertices)[0]
  rows = tf.tile(tf.range(17)[None], [batch, 1])
  jaw = tf.gather_nd(table, tf.stack([rows, pick], -1))  # [B,17]
  rest = tf.tile(tf.constant(model.landmarks68[17:], tf.int32)[None],
                 [batch, 1])
  return tf.concat([jaw, rest], axis=1)


def silhouette_vertices(triangles, screen_vertices):
  """[B,N] float32: 1 on the vertices of the mesh's outline at this pose.

  A vertex is on the outline when some of its triangles face the camera and
  some face away (Chen20's contour mask for its second landmark loss, read
  as the fraction of front-facing triangles around the vertex strictly
  between 0 and 1). This includes inner occluding contours (the far side of
  the nose at large yaw); vertices on the mesh's open border whose
  triangles all face the camera are not on it.

  Args:
    triangles: [T,3] int vertex indices (NumPy), e.g. model.triangles.
    screen_vertices: [B,N,3] float32 screen vertices (pixels, y down, z
      larger = closer; renderer.camera).
  """
  corners = np.asarray(triangles, np.int32).T.reshape(-1)  # corner-major
  num_vertices = screen_vertices.shape[1]
  # Screen y points down: flipping it gives a right-handed frame whose +z
  # looks at the camera, where a front-facing triangle's normal has z > 0.
  flipped = screen_vertices * tf.constant([1.0, -1.0, 1.0])
  normals = mesh_geometry.triangle_normals(flipped, triangles,
                                           normalize=False)  # [B,T,3]
  front = tf.transpose(tf.cast(normals[..., 2] > 0.0, tf.float32))  # [T,B]
  front_count = tf.math.unsorted_segment_sum(
      tf.concat([front, front, front], 0), tf.constant(corners),
      num_vertices)  # [N,B]
  total = np.bincount(corners, minlength=num_vertices).astype(np.float32)
  outline = tf.logical_and(front_count > 0.0,
                           front_count < tf.constant(total)[:, None])
  return tf.transpose(tf.cast(outline, tf.float32))


def check_landmark_source(source):
  """`source` if it is a key of JAW_CONVENTIONS, else ValueError."""
  if source not in JAW_CONVENTIONS:
    raise ValueError('landmark_source must be one of %s, got %r' %
                     (', '.join(sorted(JAW_CONVENTIONS)), source))
  return source


def landmarks2d(model, screen_vertices, landmark_source='dlib'):
  """[B,68,2] float32 landmark pixels (x, y) of the model.

  Args:
    model: bfm.MorphableModel.
    screen_vertices: [B,N,3] float32 screen vertices (pixels).
    landmark_source: 'dlib' (jaw 0..16 sliding to the silhouette,
      `landmark_indices`) or 'facemesh' (all 68 at the fixed
      model.landmarks68 vertices).
  """
  if JAW_CONVENTIONS[check_landmark_source(landmark_source)] == 'fixed':
    return tf.gather(screen_vertices[..., :2],
                     tf.constant(model.landmarks68, tf.int32), axis=1)
  idx = landmark_indices(model, screen_vertices)
  return tf.gather(screen_vertices[..., :2], idx, axis=1, batch_dims=1)


def render_faces(model, vertices, albedo, pose, lighting, image_size,
                 model_normals=None, landmark_source='dlib'):
  """Renders model-space faces with a pose and SH lighting.

  Args:
    model: bfm.MorphableModel (triangles, masks, contour candidates).
    vertices: [B,N,3] float32 mm, model space.
    albedo: [B,N,3] float32 in [0,1].
    pose: [B,6] float32 (renderer/camera.py layout).
    lighting: [B,27] float32 (renderer/shading.py layout).
    image_size: (height, width) python ints, or one int for a square.
    model_normals: optional [B,N,3] float32 unit vertex normals of `vertices`
      in model space (model.vertex_normals(vertices)); computed when None.
      Callers that render one shape in several poses (coarse/sam.py) pass
      them to compute the normals once per shape.
    landmark_source: jaw convention of `landmarks2d` ('dlib' or 'facemesh',
      see `landmarks2d`).

  Returns:
    CoarseFace. Differentiable w.r.t. all tensor inputs (not w.r.t. which
    triangle covers a pixel).
  """
  if isinstance(image_size, int):
    image_size = (image_size, image_size)
  image_size = tuple(int(s) for s in image_size)
  check_landmark_source(landmark_source)
  vertices = tf.convert_to_tensor(vertices, tf.float32)
  if model_normals is None:
    model_normals = model.vertex_normals(vertices)
  consts = _model_constants(model)
  regions = tf.broadcast_to(
      tf.constant(consts['region_masks'])[None],
      tf.concat([tf.shape(vertices)[:2], [2]], 0))
  out = shaded_render.render_shaded(vertices, model_normals, albedo, pose,
                                    lighting, model.triangles, image_size,
                                    extra=regions)
  screen = out.screen_vertices
  region_px = tf.cast(out.extra > 0.5, tf.float32)
  photo_mask = out.mask * region_px[..., :1] * region_px[..., 1:2]
  return CoarseFace(vertices=vertices,
                    screen_vertices=screen,
                    albedo=albedo,
                    colors=out.colors,
                    normals=out.normals,
                    image=out.image,
                    mask=out.mask,
                    landmarks2d=landmarks2d(model, screen, landmark_source),
                    photo_mask=photo_mask)


def reconstruct(model, coeffs, image_size, landmark_source='dlib'):
  """Coefficients -> CoarseFace (the project's one coefficients->render path).

  Args:
    model: bfm.MorphableModel.
    coeffs: coarse.coefficients.Coefficients (or a flat [B, D] vector).
    image_size: (height, width) python ints, or one int for a square.
    landmark_source: jaw convention of the face's `landmarks2d`: 'dlib'
      (sliding silhouette) or 'facemesh' (fixed vertices); see `landmarks2d`.
  """
  if not isinstance(coeffs, coefficients_lib.Coefficients):
    coeffs = coefficients_lib.Coefficients.from_vector(model, coeffs)
  vertices = model.vertices(coeffs.identity, coeffs.expression)
  if model.num_tex:
    albedo = model.albedo(coeffs.texture)
  else:
    albedo = tf.tile(model.albedo(None), [tf.shape(vertices)[0], 1, 1])
  return render_faces(model, vertices, albedo, coeffs.pose, coeffs.lighting,
                      image_size, landmark_source=landmark_source)
