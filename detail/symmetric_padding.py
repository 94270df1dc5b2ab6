"""Symmetric UV padding for large-pose detail reconstruction (paper Sec. 3.4).

In a large-pose image one half of the face is self-occluded, so its part of
the unwrapped UV maps holds no real texture. The paper replaces, in both the
unwrapped input image and the unwrapped coarse render, the self-occluded half
by the mirror image of the frontal half (Fig. 4-5), then predicts displacement
from the padded maps.

The two halves are defined in model space: a texel belongs to the subject's
left half when the model-space x of its surface point is > 0 (x points to the
subject's left, see contract). Which half is occluded follows from the yaw via
renderer.camera.rotation_matrix: the half whose outward side direction (+-x)
points away from the camera (rotated z < 0) is the occluded one. Mirror texel
coordinates come from renderer.uv (bfm's vertex symmetry map).
"""

import tensorflow as tf

from renderer import camera
from renderer import uv as uv_lib

LEFT = 1  # subject's left half, model x > 0
RIGHT = -1  # subject's right half, model x < 0


def occluded_side(yaw):
  """Which half the yaw turns away from the camera.

  Args:
    yaw: [B] float32 radians, the coarse pose's yaw (pose[:, 1]).
  Returns: [B] float32, LEFT (+1) if the subject's left half (model +x) is
    self-occluded, RIGHT (-1) if the right half is; 0 exactly at yaw = 0.
  """
  yaw = tf.convert_to_tensor(yaw, tf.float32)
  if yaw.shape.rank != 1:
    raise ValueError('occluded_side: yaw must be [B], got %s' % yaw.shape)
  zeros = tf.zeros_like(yaw)
  rotation = camera.rotation_matrix(tf.stack([zeros, yaw, zeros],
                                             -1))  # [B,3,3]
  # z (towards the viewer) of the rotated +x direction: < 0 => the +x half
  # faces away.
  z_of_left = rotation[:, 2, 0]
  return -tf.sign(z_of_left)


def side_map(model, uv_size):
  """[S,S,1] float32: +1 on the left half (x > 0), -1 on the right, 0 elsewhere.

  Built by rasterising the mean shape's x coordinate into UV (renderer.uv).
  """
  x = tf.constant(model.mean_shape[None, :, :1], tf.float32)
  x_uv, coverage = uv_lib.render_to_uv(x, model.uv, model.triangles, uv_size)
  return tf.sign(x_uv[0]) * tf.cast(coverage > 0.5, tf.float32)


def pad_occluded_half(uv_maps, sides, mirror_coords, occluded,
                      mirror_scale=None):
  """Replaces the occluded half of each UV map by the mirrored frontal half.

  Args:
    uv_maps: [B,S,S,C] float32 UV maps (e.g. unwrapped image and render).
    sides: [S,S,1] float32, side_map(): +1 left half, -1 right half, 0 neither.
    mirror_coords: [S,S,2] from renderer.uv.uv_mirror_coordinates.
    occluded: [B] float32, occluded_side() per image; 0 leaves the map as is.
    mirror_scale: None or [C] factors applied to the mirrored texels (e.g.
      -1 on a channel that changes sign under mirroring, an x slope).
  Returns: [B,S,S,C]: texels with sides == occluded replaced by
    renderer.uv.mirror_sample(uv_maps, mirror_coords) (x mirror_scale); all
    others unchanged.
  """
  uv_maps = tf.convert_to_tensor(uv_maps, tf.float32)
  if uv_maps.shape.rank != 4:
    raise ValueError('pad_occluded_half: uv_maps must be [B,S,S,C], got %s' %
                     uv_maps.shape)
  size = uv_maps.shape[1]
  if sides.shape[0] != size or mirror_coords.shape[0] != size:
    raise ValueError('pad_occluded_half: uv_maps (%s), sides (%s) and '
                     'mirror_coords (%s) must have the same UV size' %
                     (uv_maps.shape, sides.shape, mirror_coords.shape))
  occluded = tf.reshape(tf.cast(occluded, tf.float32), [-1, 1, 1, 1])
  replace = tf.logical_and(tf.equal(sides[None], occluded),
                           tf.not_equal(occluded, 0.0))
  mirrored = uv_lib.mirror_sample(uv_maps, mirror_coords)
  if mirror_scale is not None:
    mirrored *= tf.constant(mirror_scale, tf.float32)
  return tf.where(replace, mirrored, uv_maps)


class SymmetricPadding:
  """Precomputed halves and mirror map of one face model at one UV size.

  pad(uv_maps [B,S,S,C], yaw [B]) -> [B,S,S,C].
  """

  def __init__(self, model, uv_size):
    self.uv_size = int(uv_size)
    self.sides = side_map(model, self.uv_size)
    self.mirror_coords = tf.convert_to_tensor(
        uv_lib.uv_mirror_coordinates(model.uv, model.triangles, model.symmetry,
                                     self.uv_size), tf.float32)

  def pad(self, uv_maps, yaw):
    return pad_occluded_half(uv_maps, self.sides, self.mirror_coords,
                             occluded_side(yaw))

  def pad_where(self, uv_maps, yaw, yaw_threshold):
    """Inference rule: pad only images with |yaw| > yaw_threshold (radians)."""
    side = occluded_side(yaw) * tf.cast(tf.abs(yaw) > yaw_threshold, tf.float32)
    return pad_occluded_half(uv_maps, self.sides, self.mirror_coords, side)
