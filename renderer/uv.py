"""UV-space maps: render attributes into UV, unwrap images, masks, mirroring.

These are THE UV functions of the project (coarse/ and detail/ call them).

UV image layout: [S, S] texels, row 0 is the TOP (v = 1), row r covers
v in [1 - (r+1)/S, 1 - r/S]; column c covers u in [c/S, (c+1)/S]. Texel
coordinates used by `uv_mirror_coordinates` / `mirror_sample` follow the
screen convention: (x, y) = (u S, (1 - v) S), so the centre of texel (row r,
col c) is at (c + 0.5, r + 0.5).
"""

import tensorflow as tf

from renderer import camera
from renderer import interpolate as interpolate_lib
from renderer import mesh_renderer


def _tensor_of_rank(value, rank, last_dim, name, expected):
  """float32 tensor of `value`; ValueError '<name> must be <expected>' when
  its rank (or static last dimension, unless None) differs."""
  value = tf.convert_to_tensor(value, tf.float32)
  if value.shape.rank != rank or (last_dim is not None and
                                  value.shape[-1] != last_dim):
    raise ValueError('%s must be %s, got %s' % (name, expected, value.shape))
  return value


def _check_uv(uv, triangles, uv_size, name):
  uv = tf.convert_to_tensor(uv, tf.float32)
  if uv.shape.rank != 2 or uv.shape[-1] != 2:
    raise ValueError('%s: uv must be [N, 2], got shape %s' % (name, uv.shape))
  triangles = interpolate_lib.check_triangles(triangles, name)
  if not isinstance(uv_size, int) or uv_size <= 0:
    raise ValueError('%s: uv_size must be a positive python int, got %r' %
                     (name, uv_size))
  return uv, triangles


def rasterize_uv(uv, triangles, uv_size):
  """Which triangle covers each texel centre of the UV layout.

  Args:
    uv: [N, 2] float32 in [0, 1] (u right, v up).
    triangles: [T, 3] int32.
    uv_size: python int S.

  Returns:
    (triangle_ids [S, S] int32 (-1 where no triangle), barycentrics
    [S, S, 3] float32, zero where no triangle; differentiable w.r.t. uv
    through the op's compiled gradient).
  """
  uv, triangles = _check_uv(uv, triangles, uv_size, 'rasterize_uv')
  clip = tf.concat([2.0 * uv - 1.0, tf.zeros_like(uv[:, :1]),
                    tf.ones_like(uv[:, :1])], axis=-1)[None]
  fragments = mesh_renderer.rasterize_fragments(
      clip, triangles, (uv_size, uv_size), cull_backfaces=False)
  return fragments.triangle_ids[0], fragments.barycentrics[0]


def render_to_uv(attributes, uv, triangles, uv_size):
  """Renders per-vertex attributes into a UV map.

  Args:
    attributes: [B, N, C] float32 per-vertex attributes.
    uv: [N, 2] float32 in [0, 1] (u right, v up), shared by the batch.
    triangles: [T, 3] int32.
    uv_size: python int S.

  Returns:
    (uv_map [B, S, S, C] float32, zero where uncovered; differentiable w.r.t.
    attributes, coverage [S, S, 1] float32 in {0, 1}).
  """
  attributes = tf.convert_to_tensor(attributes, tf.float32)
  if attributes.shape.rank != 3:
    raise ValueError('render_to_uv: attributes must be [B, N, C], got shape '
                     '%s' % attributes.shape)
  ids, bary = rasterize_uv(uv, triangles, uv_size)
  triangles = tf.cast(triangles, tf.int32)
  batch = tf.shape(attributes)[0]
  ids_b = tf.tile(ids[None], [batch, 1, 1])
  bary_b = tf.tile(bary[None], [batch, 1, 1, 1])
  uv_map = interpolate_lib.interpolate(attributes, triangles, ids_b, bary_b)
  coverage = tf.cast(ids >= 0, tf.float32)[..., None]
  return uv_map, coverage


def bilinear_sample(image, xy):
  """Bilinearly samples an image at continuous pixel coordinates.

  Args:
    image: [B, H, W, C] float32.
    xy: [B, ..., 2] float32 (x, y) pixel coordinates, origin at the top-left
      corner, pixel centres at +0.5. Outside the image the border values are
      repeated.

  Returns:
    [B, ..., C] float32, differentiable w.r.t. image and xy.
  """
  image = tf.convert_to_tensor(image, tf.float32)
  xy = tf.convert_to_tensor(xy, tf.float32)
  if image.shape.rank != 4:
    raise ValueError('bilinear_sample: image must be [B, H, W, C], got %s' %
                     image.shape)
  if xy.shape[-1] != 2:
    raise ValueError('bilinear_sample: xy must be [B, ..., 2], got %s' %
                     xy.shape)
  shape = tf.shape(image)
  height, width = shape[1], shape[2]
  out_shape = tf.concat([tf.shape(xy)[:-1], shape[3:]], axis=0)
  batch = tf.shape(xy)[0]
  xy = tf.reshape(xy, [batch, -1, 2])
  fx = xy[..., 0] - 0.5
  fy = xy[..., 1] - 0.5
  x0 = tf.floor(fx)
  y0 = tf.floor(fy)
  wx = (fx - x0)[..., None]
  wy = (fy - y0)[..., None]
  x0 = tf.cast(x0, tf.int32)
  y0 = tf.cast(y0, tf.int32)

  def tap(yy, xx):
    yy = tf.clip_by_value(yy, 0, height - 1)
    xx = tf.clip_by_value(xx, 0, width - 1)
    return tf.gather_nd(image, tf.stack([yy, xx], axis=-1), batch_dims=1)

  top = tap(y0, x0) * (1.0 - wx) + tap(y0, x0 + 1) * wx
  bottom = tap(y0 + 1, x0) * (1.0 - wx) + tap(y0 + 1, x0 + 1) * wx
  return tf.reshape(top * (1.0 - wy) + bottom * wy, out_shape)


def triangle_front_facing(screen_vertices, triangles):
  """Whether each triangle faces the camera (counter-clockwise on screen).

  Args:
    screen_vertices: [B, N, 3] float32 screen vertices (x right, y down).
    triangles: [T, 3] int32.

  Returns:
    [B, T] bool, True where the triangle is counter-clockwise as seen in the
    image (i.e. in NDC with y up), the rasterizer's front-face rule.
  """
  corners = tf.gather(screen_vertices[..., :2], triangles, axis=1)  # BT32
  e1 = corners[:, :, 1] - corners[:, :, 0]
  e2 = corners[:, :, 2] - corners[:, :, 0]
  # Cross product in y-down coordinates is negative for CCW-with-y-up.
  return (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]) < 0.0


def triangle_view_cosine(screen_vertices, triangles):
  """Cosine between each triangle's normal and the viewing direction.

  Under the orthographic camera (screen x, y and z in the same pixel units,
  camera.orthographic_project) it is the triangle's projected area over its
  area: 1 facing the camera, 0 seen edge-on; positive for front-facing
  triangles (`triangle_front_facing`), negative for back-facing ones.

  Args:
    screen_vertices: [B, N, 3] float32 screen vertices (x right, y down, z
      larger = closer), all three axes in pixels.
    triangles: [T, 3] int32.

  Returns:
    [B, T] float32 in [-1, 1] (0 for degenerate triangles).
  """
  corners = tf.gather(screen_vertices, triangles, axis=1)  # [B, T, 3, 3]
  e1 = corners[:, :, 1] - corners[:, :, 0]
  e2 = corners[:, :, 2] - corners[:, :, 0]
  normal = tf.linalg.cross(e1, e2)
  # Same sign rule as triangle_front_facing: negative z-cross is front.
  return tf.math.divide_no_nan(-normal[..., 2], tf.norm(normal, axis=-1))


def unwrap_image(image, screen_vertices, triangles, uv, uv_size,
                 depth_tolerance_px=2.0,
                 depth_range_px=camera.DEFAULT_DEPTH_RANGE_PX):
  """Unwraps an image into UV space through the projected mesh.

  Each texel's surface point is found by interpolating the screen vertices in
  UV; the image is sampled there bilinearly. A texel is VISIBLE when it is
  covered in UV, its surface point projects inside the image, its triangle is
  front-facing, and it is the front-most surface at that pixel: its depth is
  at most `depth_tolerance_px` behind the front-most depth rendered at the
  nearest pixel.

  Args:
    image: [B, H, W, C] float32.
    screen_vertices: [B, N, 3] float32 (x, y pixels top-left origin y down,
      z larger = closer), e.g. from camera.orthographic_project.
    triangles: [T, 3] int32.
    uv: [N, 2] float32 in [0, 1].
    uv_size: python int S.
    depth_tolerance_px: python float, screen-depth slack of the visibility
      test (in the units of screen z).
    depth_range_px: as in camera.screen_to_clip.

  Returns:
    (texture [B, S, S, C] float32, zero where not visible; differentiable
    w.r.t. image and screen_vertices, visibility [B, S, S, 1] float32 in
    {0, 1}).
  """
  image = _tensor_of_rank(image, 4, None, 'unwrap_image: image',
                          '[B, H, W, C]')
  screen_vertices = _tensor_of_rank(screen_vertices, 3, 3,
                                    'unwrap_image: screen_vertices',
                                    '[B, N, 3]')
  height, width = image.shape[1], image.shape[2]
  if height is None or width is None:
    raise ValueError('unwrap_image: image needs a static height and width')
  uv, triangles = _check_uv(uv, triangles, uv_size, 'unwrap_image')
  ids, bary = rasterize_uv(uv, triangles, uv_size)
  batch = tf.shape(screen_vertices)[0]
  ids_b = tf.tile(ids[None], [batch, 1, 1])
  bary_b = tf.tile(bary[None], [batch, 1, 1, 1])
  position = interpolate_lib.interpolate(screen_vertices, triangles, ids_b,
                                         bary_b)  # [B, S, S, 3]
  texture = bilinear_sample(image, position[..., :2])

  # Front-most depth per pixel (no culling: back faces may occlude too).
  front = mesh_renderer.render(
      tf.stop_gradient(screen_vertices), triangles,
      tf.stop_gradient(screen_vertices[..., 2:]), (height, width),
      cull_backfaces=False, depth_range_px=depth_range_px)
  position = tf.stop_gradient(position)
  col = tf.cast(tf.floor(position[..., 0]), tf.int32)
  row = tf.cast(tf.floor(position[..., 1]), tf.int32)
  inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
  pixel = tf.stack([tf.clip_by_value(row, 0, height - 1),
                    tf.clip_by_value(col, 0, width - 1)], axis=-1)
  front_depth = tf.gather_nd(front.image[..., 0], pixel, batch_dims=1)
  front_covered = tf.gather_nd(front.mask[..., 0], pixel, batch_dims=1) > 0
  depth_ok = position[..., 2] >= front_depth - depth_tolerance_px
  facing = tf.gather(triangle_front_facing(screen_vertices, triangles),
                     tf.maximum(ids, 0), axis=1)  # [B, S, S]
  visible = (ids[None] >= 0) & inside & front_covered & depth_ok & facing
  visibility = tf.cast(visible, tf.float32)[..., None]
  return texture * visibility, visibility


def uv_mask(uv, triangles, vertex_mask, uv_size):
  """UV-space mask of a vertex region.

  A texel is in the mask when the triangle covering it has all three
  vertices in `vertex_mask`.

  Args:
    uv: [N, 2] float32 in [0, 1].
    triangles: [T, 3] int32.
    vertex_mask: [N] bool (or 0/1) per-vertex mask (e.g. model.masks['detail']).
    uv_size: python int S.

  Returns:
    [S, S, 1] float32 in {0, 1}.
  """
  uv, triangles = _check_uv(uv, triangles, uv_size, 'uv_mask')
  vertex_mask = tf.cast(tf.convert_to_tensor(vertex_mask), tf.bool)
  if vertex_mask.shape.rank != 1 or vertex_mask.shape[0] != uv.shape[0]:
    raise ValueError('uv_mask: vertex_mask must be [N] with N = %s, got %s' %
                     (uv.shape[0], vertex_mask.shape))
  triangle_in = tf.reduce_all(tf.gather(vertex_mask, triangles), axis=-1)
  ids, _ = rasterize_uv(uv, triangles, uv_size)
  inside = (ids >= 0) & tf.gather(triangle_in, tf.maximum(ids, 0))
  return tf.cast(inside, tf.float32)[..., None]


def uv_mirror_coordinates(uv, triangles, symmetry, uv_size):
  """Texel coordinates of each texel's mirror image across the face.

  The mirror point of a texel is found by interpolating, with the texel's
  barycentrics, the UVs of the mirror vertices (uv[symmetry]) of its
  triangle's corners (exact when the mirror of a triangle is a triangle).

  Args:
    uv: [N, 2] float32 in [0, 1].
    triangles: [T, 3] int32.
    symmetry: [N] int32, mirror vertex of each vertex (an involution).
    uv_size: python int S.

  Returns:
    [S, S, 2] float32 (x, y) texel coordinates (x = u S, y = (1 - v) S;
    texel (row r, col c) centre at (c + 0.5, r + 0.5)) of the mirror point;
    uncovered texels map to their own centre.
  """
  uv, triangles = _check_uv(uv, triangles, uv_size, 'uv_mirror_coordinates')
  symmetry = tf.convert_to_tensor(symmetry)
  if symmetry.shape.rank != 1 or symmetry.shape[0] != uv.shape[0]:
    raise ValueError('uv_mirror_coordinates: symmetry must be [N] with N = %s,'
                     ' got %s' % (uv.shape[0], symmetry.shape))
  num_vertices = uv.shape[0]
  tf.debugging.assert_less(
      tf.cast(symmetry, tf.int64), tf.cast(num_vertices, tf.int64),
      message='uv_mirror_coordinates: symmetry index out of range')
  tf.debugging.assert_non_negative(
      symmetry, message='uv_mirror_coordinates: negative symmetry index')
  mirror_uv = tf.gather(uv, symmetry)
  ids, bary = rasterize_uv(uv, triangles, uv_size)
  mirrored = interpolate_lib.interpolate(mirror_uv[None], triangles, ids[None],
                                         bary[None])[0]
  mirror_xy = tf.stack([mirrored[..., 0] * uv_size,
                        (1.0 - mirrored[..., 1]) * uv_size], axis=-1)
  centres = tf.range(uv_size, dtype=tf.float32) + 0.5
  cx, cy = tf.meshgrid(centres, centres)
  own = tf.stack([cx, cy], axis=-1)
  return tf.where((ids >= 0)[..., None], mirror_xy, own)


def mirror_sample(uv_map, mirror_coords):
  """Samples a UV map at the mirror texels (bilinear).

  Args:
    uv_map: [B, S, S, C] float32.
    mirror_coords: [S, S, 2] float32 from `uv_mirror_coordinates`.

  Returns:
    [B, S, S, C] float32: out[b, r, c] = uv_map[b] at mirror_coords[r, c].
  """
  uv_map = _tensor_of_rank(uv_map, 4, None, 'mirror_sample: uv_map',
                           '[B, S, S, C]')
  mirror_coords = _tensor_of_rank(mirror_coords, 3, 2,
                                  'mirror_sample: mirror_coords', '[S, S, 2]')
  batch = tf.shape(uv_map)[0]
  coords = tf.tile(mirror_coords[None], [batch, 1, 1, 1])
  return bilinear_sample(uv_map, coords)
