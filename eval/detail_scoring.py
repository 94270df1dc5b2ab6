"""Scores of a detail-stage prediction against a known displacement map.

The detail benchmark's faces (eval/detail_sets.py) carry a known wrinkle
displacement (detail/synthetic_details.py); the coarse face is the ground-
truth one, so every error here is detail error. All scores are per image,
over the vertices of the dense detail mesh (detail/displacement.py: one
vertex per UV texel of the face mask), optionally restricted to a region
(the visible or the self-occluded half of a large-pose face):

* disp_mae_mm: mean |predicted - true displacement| (mm, model-space depth,
 both after the 'detail' mask of the detail stage);
* detail_mae_mm: the same after removing the low-frequency part of both
 maps (a masked Gaussian blur of sigma `lowpass_texels` in UV), i.e. the
 error of the wrinkles themselves, not of a smooth offset;
* normal_err_deg: mean angle (degrees) between the normals of the predicted
 detailed mesh and of the true detailed mesh (dense mesh displaced by the
 true map), the shading-relevant error.

The zero-displacement prediction (the coarse face alone) scores
disp_mae_mm = mean |true displacement|.
"""

import collections

import numpy as np
import tensorflow as tf

from bfm import mesh_geometry
from detail import symmetric_padding

METRICS = ('disp_mae_mm', 'detail_mae_mm', 'normal_err_deg')
REGIONS = ('all', 'visible', 'occluded')

Truth = collections.namedtuple(
    'Truth',
    [
        'dense',  # [B,M,3] mm, dense mesh of the ground-truth coarse face
        'displacement',  # [B,M,1] mm, true displacement (detail-masked)
        'normals',  # [B,M,3] unit normals of the truly displaced mesh
    ])


def truth(applier, coarse_vertices, maps, amplitude_mm):
  """The true detailed surface.

  Args:
    applier: detail.displacement.DisplacementApplier.
    coarse_vertices: [B,N,3] mm, ground-truth coarse face (model space).
    maps: [B,S,S,1] float32 in [-1,1], the known wrinkle maps.
    amplitude_mm: mm per unit of `maps`.
  Returns: Truth.
  """
  dense, displaced, disp = applier.apply(
      tf.convert_to_tensor(coarse_vertices, tf.float32),
      tf.convert_to_tensor(maps, tf.float32), amplitude_mm)
  normals = mesh_geometry.vertex_normals(displaced, applier.triangles)
  return Truth(dense, disp, normals)


def lowpass(values, mesh, sigma_texels):
  """Masked Gaussian blur of per-vertex values on the UV grid.

  Args:
    values: [B,M,1] float32 on the dense mesh's vertices.
    mesh: detail.dense_uv_mesh.DenseUVMesh.
    sigma_texels: Gaussian sigma in texels (> 0).
  Returns: [B,M,1] float32, the low-frequency part (the blur normalised by
      the blurred mask, so the face border is not pulled to zero).
  """
  if not sigma_texels > 0:
    raise ValueError('lowpass: sigma_texels must be > 0, got %r' %
                     (sigma_texels,))
  radius = int(np.ceil(3 * sigma_texels))
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  g = np.exp(-x**2 / (2 * sigma_texels**2))
  g = (g / g.sum()).astype(np.float32)
  ones = tf.ones_like(values)
  uv = mesh.to_uv(tf.concat([values, ones], -1))  # [B,S,S,2]

  def blur(img):
    img = tf.nn.depthwise_conv2d(
        img, tf.tile(tf.constant(g)[:, None, None, None], [1, 1, 2, 1]),
        [1, 1, 1, 1], 'SAME')
    return tf.nn.depthwise_conv2d(
        img, tf.tile(tf.constant(g)[None, :, None, None], [1, 1, 2, 1]),
        [1, 1, 1, 1], 'SAME')

  blurred = mesh.sample(blur(uv))
  return blurred[..., :1] / tf.maximum(blurred[..., 1:], 1e-6)


def region_weights(applier, sides, yaw, region):
  """[B,M] float32 weights of the dense vertices in `region`.

  Args:
    applier: DisplacementApplier.
    sides: [S,S,1] symmetric_padding.side_map (+1 left half, -1 right).
    yaw: [B] float32 radians of the faces.
    region: 'all', 'visible' (the half facing the camera) or 'occluded'
      (the half the yaw turns away; symmetric_padding.occluded_side).
  """
  if region not in REGIONS:
    raise ValueError('region must be one of %s, got %r' %
                     (REGIONS, region))
  batch = int(tf.shape(yaw)[0])
  if region == 'all':
    return tf.ones([batch, applier.mesh.num_vertices], tf.float32)
  side = applier.mesh.sample(sides[None])[0, :, 0]  # [M]
  occluded = symmetric_padding.occluded_side(yaw)  # [B]
  want = occluded if region == 'occluded' else -occluded
  return tf.cast(
      tf.logical_and(tf.equal(side[None], want[:, None]),
                     tf.not_equal(want[:, None], 0.0)), tf.float32)


def score(applier, truth_, displacement, weights, lowpass_texels):
  """Per-image scores of a predicted displacement.

  Args:
    applier: DisplacementApplier (its mesh and triangles).
    truth_: Truth of the images.
    displacement: [B,M,1] mm, predicted displacement on the dense mesh
      (after the detail mask), e.g. DetailOutput.detailed.displacement;
      zeros for the coarse face alone.
    weights: [B,M] float32 region weights (region_weights).
    lowpass_texels: sigma of the low-frequency part (texels).
  Returns: dict metric -> [B] float64 NumPy array.
  """
  displacement = tf.convert_to_tensor(displacement, tf.float32)
  err = tf.abs(displacement - truth_.displacement)[..., 0]
  high_pred = displacement - lowpass(displacement, applier.mesh,
                                     lowpass_texels)
  high_true = truth_.displacement - lowpass(truth_.displacement,
                                            applier.mesh, lowpass_texels)
  detail_err = tf.abs(high_pred - high_true)[..., 0]
  displaced = truth_.dense + tf.concat(
      [tf.zeros_like(displacement),
       tf.zeros_like(displacement), displacement], -1)
  normals = mesh_geometry.vertex_normals(displaced, applier.triangles)
  # atan2(|a x b|, a.b): accurate near 0, where acos of a float32 dot is not.
  angle = tf.math.atan2(
      tf.norm(tf.linalg.cross(normals, truth_.normals), axis=-1),
      tf.reduce_sum(normals * truth_.normals, -1)) * (180.0 / np.pi)
  count = tf.reduce_sum(weights, 1)
  if np.any(count.numpy() <= 0):
    raise ValueError('detail_scoring.score: an image has no vertex in '
                     'the region')

  def mean(x):
    return (tf.reduce_sum(x * weights, 1) / count).numpy().astype(
        np.float64)

  return {
      'disp_mae_mm': mean(err),
      'detail_mae_mm': mean(detail_err),
      'normal_err_deg': mean(angle),
  }
