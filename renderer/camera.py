"""Cameras: rotation, Chen20's orthographic camera, pinhole camera, clip space.

Coordinate frames (see /work/contract.md):
  * Model space: millimetres, x towards the subject's left (image right in a
    frontal view), y up, z out of the face towards the viewer; right-handed.
  * Screen space: x, y in PIXELS, origin at the top-left CORNER of the image,
    x to the right, y DOWN; the centre of pixel (row r, col c) is at
    (x, y) = (c + 0.5, r + 0.5). Screen z is a depth in which LARGER = CLOSER
    to the camera (pixels for the orthographic camera, millimetres for the
    pinhole camera).
  * Clip space / NDC as the rasterizer op expects: x = -1 left edge, +1 right
    edge, y = +1 TOP row, -1 bottom row, z_ndc = z / w in [-1, 1] with SMALLER
    = CLOSER.

Rotation and sign conventions (`rotation_matrix`, used by both cameras):
  R = Rz(roll) @ Ry(yaw) @ Rx(pitch), each a standard right-handed rotation
  (tensorflow_graphics `rotation_matrix_3d.from_euler`), applied as R @ v.
  Seen by the camera (which looks along model -z):
  * positive YAW turns the face towards IMAGE RIGHT: the nose tip moves to
    larger screen x and the subject's right cheek (model -x) turns towards the
    camera while the subject's left half (model +x) turns away;
  * positive PITCH tilts the face DOWN: the nose tip moves to larger screen y;
  * positive ROLL rotates the face COUNTER-CLOCKWISE in the image: the top of
    the head moves to smaller screen x (image left).

Where this matches / differs from Chen20 (cyj907/unsupervised-detail-layer,
tools/render_utils.py, `Projector.calc_trans_matrix` and `_ortho_trans_clip`):
  * Same pose layout (pitch, yaw, roll, tx, ty, log_scale), same orthographic
    model (scaled rotation + 2D translation, image y flipped), same
    R @ v application.
  * Chen20 builds R = Rx'(pitch) Ry'(yaw) Rz'(roll) from the TRANSPOSED
    elementary matrices, i.e. R_chen20(angles) = rotation_matrix(angles)^T.
    So for a single-axis pose our angle equals MINUS Chen20's angle (Chen20's
    positive yaw turns the face towards image left), and for combined poses
    the composition order is reversed. Poses are not interchangeable with
    Chen20 checkpoints without this conversion.
  * Scale: Chen20 uses s = exp(log_scale) * W * 1.5 / 300 px/mm and tx, ty in
    pixels of the actual image; we use s = exp(log_scale) * W / 224 px/mm and
    tx, ty in pixels of a 224-px image (contract), so that at 224 px and
    log_scale = 0 one millimetre is one pixel.
"""

import tensorflow as tf
try:
  from tensorflow_graphics.geometry.transformation import rotation_matrix_3d
except ImportError as e:  # `pip install -e .` alone does not install it
  raise ImportError('tensorflow-graphics is missing (%s); complete the install '
                    'with: pip install --no-deps tensorflow-graphics==2021.12.3'
                    % e) from e

# Reference image width that tx, ty and the scale refer to (contract).
REFERENCE_SIZE = 224.0
# Default half-range of screen depth mapped onto NDC [-1, 1] (Chen20 maps
# clip z = -z / 10000 in `_ortho_trans_clip`).
DEFAULT_DEPTH_RANGE_PX = 10000.0


def _check_image_size(image_size, name):
  if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2 or
      not all(isinstance(s, int) and s > 0 for s in image_size)):
    raise ValueError('%s: image_size must be (height, width) positive python '
                     'ints, got %r' % (name, image_size))
  return image_size


def _check_last_dim(tensor, dim, arg, name, rank=None):
  tensor = tf.convert_to_tensor(tensor, tf.float32)
  if tensor.shape.rank is not None:
    if rank is not None and tensor.shape.rank != rank:
      raise ValueError('%s: %s must have rank %d, got shape %s' %
                       (name, arg, rank, tensor.shape))
    if tensor.shape[-1] is not None and tensor.shape[-1] != dim:
      raise ValueError('%s: %s must have last dimension %d, got shape %s' %
                       (name, arg, dim, tensor.shape))
  return tensor


def rotation_matrix(angles):
  """Rotation matrices from (pitch, yaw, roll) Euler angles.

  R = Rz(roll) @ Ry(yaw) @ Rx(pitch) (tensorflow_graphics
  `rotation_matrix_3d.from_euler`); rotate points as R @ v. See the module
  docstring for the image-space meaning of each sign.

  Args:
    angles: [B, 3] float32 radians, (pitch, yaw, roll).

  Returns:
    [B, 3, 3] float32 rotation matrices.
  """
  angles = _check_last_dim(angles, 3, 'angles', 'rotation_matrix', rank=2)
  return rotation_matrix_3d.from_euler(angles)


def orthographic_project(vertices, pose, image_size):
  """Chen20's scaled orthographic camera.

  p = s R v; x = W/2 + p_x + tx W/224; y = H/2 - (p_y + ty H/224); z = p_z,
  with s = exp(log_scale) W/224 pixels per millimetre and R =
  rotation_matrix(pitch, yaw, roll).

  Args:
    vertices: [B, N, 3] float32 model-space vertices, millimetres.
    pose: [B, 6] float32 (pitch, yaw, roll [radians], tx, ty [pixels of a
      224-px image, tx right, ty UP], log_scale).
    image_size: (height, width) python ints.

  Returns:
    [B, N, 3] float32 screen vertices: x, y in pixels (origin top-left
    corner, x right, y down), z depth in pixels, larger = closer.
  """
  name = 'orthographic_project'
  height, width = _check_image_size(image_size, name)
  vertices = _check_last_dim(vertices, 3, 'vertices', name, rank=3)
  pose = _check_last_dim(pose, 6, 'pose', name, rank=2)
  rotation = rotation_matrix(pose[:, :3])
  scale = tf.exp(pose[:, 5]) * (width / REFERENCE_SIZE)  # [B] px per mm
  p = tf.einsum('bij,bnj->bni', rotation, vertices) * scale[:, None, None]
  x = width / 2.0 + p[..., 0] + pose[:, 3:4] * (width / REFERENCE_SIZE)
  y = height / 2.0 - (p[..., 1] + pose[:, 4:5] * (height / REFERENCE_SIZE))
  return tf.stack([x, y, p[..., 2]], axis=-1)


def screen_to_clip(screen_vertices, image_size,
                   depth_range_px=DEFAULT_DEPTH_RANGE_PX):
  """Screen-space vertices to homogeneous clip space (w = 1) for the op.

  x_ndc = 2x/W - 1; y_ndc = 1 - 2y/H; z_ndc = -z / depth_range_px; w = 1.
  Screen depths must lie in (-depth_range_px, depth_range_px); outside they
  are clipped away by the rasterizer.

  Args:
    screen_vertices: [B, N, 3] float32, x, y pixels (top-left origin, y down),
      z depth, larger = closer.
    image_size: (height, width) python ints.
    depth_range_px: positive python float, half-range of screen depth.

  Returns:
    [B, N, 4] float32 clip-space vertices.
  """
  name = 'screen_to_clip'
  height, width = _check_image_size(image_size, name)
  screen_vertices = _check_last_dim(screen_vertices, 3, 'screen_vertices',
                                    name, rank=3)
  if not depth_range_px > 0:
    raise ValueError('%s: depth_range_px must be > 0, got %r' %
                     (name, depth_range_px))
  x = 2.0 * screen_vertices[..., 0] / width - 1.0
  y = 1.0 - 2.0 * screen_vertices[..., 1] / height
  z = -screen_vertices[..., 2] / depth_range_px
  return tf.stack([x, y, z, tf.ones_like(x)], axis=-1)


def _camera_space(vertices, angles, translation, name):
  vertices = _check_last_dim(vertices, 3, 'vertices', name, rank=3)
  translation = _check_last_dim(translation, 3, 'translation', name, rank=2)
  rotation = rotation_matrix(angles)
  return (tf.einsum('bij,bnj->bni', rotation, vertices) +
          translation[:, None, :])


def _intrinsics(focal_px, principal_point, image_size, name):
  """Pinhole intrinsics in pixels, shaped to broadcast against [B, N].

  Args:
    focal_px: python float or [B] float32, focal length in pixels.
    principal_point: None (image centre) or [B, 2] float32 (cx, cy) pixels.
    image_size: (height, width) python ints.
    name: caller's name, for the error messages.

  Returns:
    (focal [B or 1, 1], cx, cy): cx, cy python floats or [B, 1] float32.
  """
  height, width = image_size
  focal = tf.reshape(tf.convert_to_tensor(focal_px, tf.float32), [-1, 1])
  if principal_point is None:
    return focal, width / 2.0, height / 2.0
  principal_point = _check_last_dim(principal_point, 2, 'principal_point',
                                    name, rank=2)
  return focal, principal_point[:, 0:1], principal_point[:, 1:2]


def perspective_project(vertices, angles, translation, focal_px, image_size,
                        principal_point=None):
  """Pinhole camera at the origin looking along -z (OpenGL convention).

  c = R v + t (camera space, mm; the face must be at c_z < 0, e.g.
  t = (0, 0, -500)); x = cx + f c_x / (-c_z); y = cy - f c_y / (-c_z);
  z = c_z (mm, larger = closer). Same R and sign conventions as the
  orthographic camera.

  Args:
    vertices: [B, N, 3] float32 model-space vertices, mm.
    angles: [B, 3] float32 (pitch, yaw, roll) radians.
    translation: [B, 3] float32 mm, camera-space translation.
    focal_px: python float or [B] float32, focal length in pixels.
    image_size: (height, width) python ints.
    principal_point: None (image centre) or [B, 2] float32 (cx, cy) pixels.

  Returns:
    [B, N, 3] float32 screen vertices (x, y pixels, z = c_z millimetres).
    Rasterize with `perspective_clip` (not `screen_to_clip`) to keep the
    interpolation perspective-correct.
  """
  name = 'perspective_project'
  _check_image_size(image_size, name)
  c = _camera_space(vertices, angles, translation, name)
  focal, cx, cy = _intrinsics(focal_px, principal_point, image_size, name)
  depth = -c[..., 2]
  x = cx + focal * c[..., 0] / depth
  y = cy - focal * c[..., 1] / depth
  return tf.stack([x, y, c[..., 2]], axis=-1)


def perspective_clip(vertices, angles, translation, focal_px, image_size,
                     near=10.0, far=10000.0, principal_point=None):
  """Clip-space vertices of the pinhole camera of `perspective_project`.

  An OpenGL projection matrix; x_ndc, y_ndc land on the same pixels as
  `perspective_project`, w = -c_z, z_ndc in [-1, 1] between near and far.

  Args:
    vertices, angles, translation, focal_px, image_size, principal_point: as
      in `perspective_project`.
    near, far: python floats, mm, clipping distances (0 < near < far).

  Returns:
    [B, N, 4] float32 clip-space vertices.
  """
  name = 'perspective_clip'
  height, width = _check_image_size(image_size, name)
  if not 0 < near < far:
    raise ValueError('%s: need 0 < near < far, got near=%r far=%r' %
                     (name, near, far))
  c = _camera_space(vertices, angles, translation, name)
  focal, cx, cy = _intrinsics(focal_px, principal_point, image_size, name)
  w = -c[..., 2]
  # pixel x = cx + f c_x / w  ->  x_ndc = 2 x / W - 1.
  x = (2.0 * focal / width) * c[..., 0] + (2.0 * cx / width - 1.0) * w
  y = (2.0 * focal / height) * c[..., 1] + (1.0 - 2.0 * cy / height) * w
  z = ((far + near) * w - 2.0 * far * near) / (far - near)
  return tf.stack([x, y, z, w], axis=-1)
