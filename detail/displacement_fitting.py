"""Per-image analysis by synthesis of the UV displacement map (--fit mode).

`fit_displacement`: Adam (coarse/fitting.py's `run_adam`) on a UV
displacement map (tanh-parameterised like RI2ITN's output) against the detail
losses (detail/losses.py, Eq. 12-13, 19-20) through detail/displacement.py,
with the coarse coefficients fixed. Large-pose images (|yaw| above the
threshold) then get the paper's symmetric padding (Sec. 3.4) applied to the
displacement map itself: the self-occluded half, which the photometric loss
cannot see, is replaced by the mirrored frontal half.
"""

import collections

import numpy as np
import tensorflow as tf

from coarse import coefficients as coefficients_lib
from coarse import face_reconstruction
from coarse import fitting
from detail import detail_reconstruction
from detail import losses as detail_losses
from detail import symmetric_padding

DisplacementFit = collections.namedtuple(
    'DisplacementFit', ['displacement_uv', 'padded', 'history', 'final_terms'])
DisplacementFit.__doc__ = """Result of `fit_displacement`.

  displacement_uv: [B,S,S,1] float32 in (-1, 1) (mm = value x the
    reconstructor's displacement_scale_mm), symmetric padding applied.
  padded: [B] bool, whether the large-pose padding was applied.
  history: list of total losses, one per step.
  final_terms: dict name -> float at the end (before padding).
"""


def _displacement_loss(recon, images, coarse_face, pose, lighting,
                       displacement_uv, weights):
  image_size = (int(images.shape[1]), int(images.shape[2]))
  detailed = recon.applier.render(coarse_face.vertices, coarse_face.albedo,
                                  pose, lighting, displacement_uv, image_size,
                                  recon.displacement_scale_mm)
  out = detail_reconstruction.DetailOutput(
      detailed=detailed, coarse=coarse_face, displacement_uv=displacement_uv,
      uv_image=None, uv_render=None, network_input=None, padded=None)
  return recon.loss(images, out, weights)


def _displacement_step(recon, weights):
  key = ('detail', id(recon), tuple(sorted(weights.items())))

  def loss_fn_factory():

    def loss_fn(x, unused, images, coarse_face, pose, lighting):
      del unused
      return _displacement_loss(recon, images, coarse_face, pose, lighting,
                                tf.tanh(x), weights)

    return loss_fn

  return fitting.cached_step(key, recon, loss_fn_factory)


def fit_displacement(reconstructor,
                     images,
                     coeffs,
                     steps=200,
                     learning_rate=0.05,
                     weights=None,
                     large_pose=None,
                     initial=None):
  """Optimises a UV displacement map per image against the detail losses.

  Args:
    reconstructor: detail.detail_reconstruction.DetailReconstructor (its
      model, UV size, displacement scale, padding and yaw threshold are used;
      its network is not).
    images: [B,H,W,3] float32 in [0,1].
    coeffs: coarse.coefficients.Coefficients of the images (kept fixed).
    steps: Adam steps (>= 0).
    learning_rate: Adam learning rate on the pre-tanh map.
    weights: dict of detail loss weights (default detail_losses.DEFAULT_WEIGHTS).
    large_pose: None (|yaw| > the reconstructor's threshold) or [B] bool,
      which images get the symmetric padding.
    initial: None (zero displacement) or [B,S,S,1] map in (-1, 1) to start
      from (e.g. the RI2ITN output).
  Returns:
    DisplacementFit.
  """
  images = fitting.check_images(images, 'fit_displacement')
  image_size = (int(images.shape[1]), int(images.shape[2]))
  if int(steps) < 0:
    raise ValueError('fit_displacement: steps must be >= 0, got %r' % (steps,))
  weights = dict(detail_losses.DEFAULT_WEIGHTS if weights is None else weights)
  recon = reconstructor
  coeffs = coefficients_lib.Coefficients(
      *[tf.convert_to_tensor(p, tf.float32) for p in coeffs])
  coarse_face = face_reconstruction.reconstruct(recon.model, coeffs, image_size)
  batch = int(images.shape[0])
  size = recon.uv_size
  if initial is None:
    start = np.zeros([batch, size, size, 1], np.float32)
  else:
    start = np.arctanh(np.clip(np.asarray(initial, np.float32), -0.999, 0.999))
    if start.shape != (batch, size, size, 1):
      raise ValueError('fit_displacement: initial must be [%d,%d,%d,1], got %s'
                       % (batch, size, size, start.shape))
  step_fn = _displacement_step(recon, weights)

  def schedule(i):
    return fitting.cosine_decay(learning_rate, i, steps), 0.0

  def bound_step(x, m, v, t, lr, unused):
    return step_fn(x, m, v, t, lr, unused, images, coarse_face, coeffs.pose,
                   coeffs.lighting)

  x, history, terms = fitting.run_adam(bound_step, tf.constant(start), steps,
                                schedule, 'fit_displacement')
  displacement = tf.tanh(x)
  _, terms = _displacement_loss(recon, images, coarse_face, coeffs.pose,
                                coeffs.lighting, displacement, weights)
  yaw = coeffs.pose[:, 1]
  if large_pose is None:
    large_pose = tf.abs(yaw) > recon.yaw_threshold
  large_pose = tf.convert_to_tensor(np.asarray(large_pose, bool))
  occluded = symmetric_padding.occluded_side(yaw) * tf.cast(
      large_pose, tf.float32)
  padded = symmetric_padding.pad_occluded_half(displacement,
                                               recon.padding.sides,
                                               recon.padding.mirror_coords,
                                               occluded)
  return DisplacementFit(displacement_uv=padded.numpy(),
                         padded=np.asarray(large_pose.numpy(), bool),
                         history=history,
                         final_terms={k: float(v) for k, v in terms.items()})
