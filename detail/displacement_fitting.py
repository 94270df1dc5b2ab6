"""Per-image analysis by synthesis of the UV displacement map (--fit mode).

`fit_displacement`: Adam (coarse/fitting.py's compiled step) on a UV
displacement map (tanh-parameterised like RI2ITN's output) against the detail
losses (detail/losses.py, Eq. 12-13, 19-20) through detail/displacement.py,
with the coarse coefficients fixed. Large-pose images (|yaw| above the
threshold) then get the paper's symmetric padding (Sec. 3.4) applied to the
displacement map itself: the self-occluded half, which the photometric loss
cannot see, is replaced by the mirrored frontal half.

Speed: the parts of the detailed render that do not depend on the map (the
coarse face rasterised into UV: dense vertices, albedo, normals) are computed
once per fit, not per step; and with `tolerance` > 0 the fit stops when the
loss has converged (`converged`) instead of always running `steps` steps.
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

# Steps over which `converged` measures the recent loss decrease.
CONVERGENCE_WINDOW = 10
# The default fit (reconstruct --fit): at most DEFAULT_STEPS Adam steps at
# DEFAULT_LEARNING_RATE, stopped by `converged` at DEFAULT_TOLERANCE. On the
# shared sample photos (two batches of 16 and 10) it stopped after 58 steps
# with 97.7% of the loss decrease of the previous setting, all 200 steps at
# SLOW_LEARNING_RATE (tolerance 0), kept for comparison (README, "Fit
# speed").
DEFAULT_STEPS = 200
DEFAULT_LEARNING_RATE = 0.1
DEFAULT_TOLERANCE = 0.01
SLOW_LEARNING_RATE = 0.05

DisplacementFit = collections.namedtuple(
    'DisplacementFit', ['displacement_uv', 'padded', 'history', 'final_terms'])
DisplacementFit.__doc__ = """Result of `fit_displacement`.

  displacement_uv: [B,S,S,1] float32 in (-1, 1) (mm = value x the
    reconstructor's displacement_scale_mm), symmetric padding applied.
  padded: [B] bool, whether the large-pose padding was applied.
  history: list of total losses, one per step taken (fewer than the
    steps asked for when the fit converged first).
  final_terms: dict name -> float at the end (before padding).
"""


def _displacement_loss(recon, images, dense_face, pose, lighting,
                       displacement_uv, weights):
  """The detail losses of one displacement map: (total, dict of terms).

  dense_face: detail.displacement.DenseFace of the coarse face (fixed
  during the fit, so computed once, outside the steps).
  """
  image_size = (int(images.shape[1]), int(images.shape[2]))
  detailed = recon.applier.render_dense(dense_face, pose, lighting,
                                        displacement_uv, image_size,
                                        recon.displacement_scale_mm)
  out = detail_reconstruction.DetailOutput(
      detailed=detailed, coarse=None, displacement_uv=displacement_uv,
      uv_image=None, uv_render=None, network_input=None, padded=None)
  return recon.loss(images, out, weights)


def _displacement_step(recon, weights):
  key = ('detail', id(recon), tuple(sorted(weights.items())))

  def loss_fn_factory():

    def loss_fn(x, unused, images, dense_face, pose, lighting):
      del unused
      return _displacement_loss(recon, images, dense_face, pose, lighting,
                                tf.tanh(x), weights)

    return loss_fn

  return fitting.cached_step(key, recon, loss_fn_factory)


def converged(history, tolerance, window=CONVERGENCE_WINDOW):
  """Whether a loss history has stopped decreasing.

  True when the loss fell by less than `tolerance` times its whole decrease
  so far over the last `window` steps: (L[-1-w] - L[-1]) < tolerance x
  (L[0] - L[-1]). Measured against the decrease made, not the loss itself,
  because the detail loss is mostly a photometric residual the displacement
  cannot remove (the fit lowers it by well under 1%). A history that has not
  decreased at all (L[-1] >= L[0]) after `window` steps has converged too.

  Args:
    history: sequence of total losses, one per step.
    tolerance: float >= 0; 0 never converges (fixed step count).
    window: steps (>= 1) over which the recent decrease is measured.
  Returns:
    bool; False while the history has `window` steps or fewer.
  """
  if tolerance <= 0 or len(history) <= window:
    return False
  recent = history[-1 - window] - history[-1]
  overall = history[0] - history[-1]
  return overall <= 0 or recent < tolerance * overall


def fit_displacement(reconstructor,
                     images,
                     coeffs,
                     steps=DEFAULT_STEPS,
                     learning_rate=DEFAULT_LEARNING_RATE,
                     weights=None,
                     large_pose=None,
                     initial=None,
                     tolerance=DEFAULT_TOLERANCE,
                     window=CONVERGENCE_WINDOW):
  """Optimises a UV displacement map per image against the detail losses.

  Args:
    reconstructor: detail.detail_reconstruction.DetailReconstructor (its
      model, UV size, displacement scale, padding and yaw threshold are used;
      its network is not).
    images: [B,H,W,3] float32 in [0,1].
    coeffs: coarse.coefficients.Coefficients of the images (kept fixed).
    steps: Adam steps (>= 0); the most taken when `tolerance` > 0.
    learning_rate: Adam learning rate on the pre-tanh map (half-cosine decay
      to 5% of it over `steps`).
    weights: dict of detail loss weights (default detail_losses.DEFAULT_WEIGHTS).
    large_pose: None (|yaw| > the reconstructor's threshold) or [B] bool,
      which images get the symmetric padding.
    initial: None (zero displacement) or [B,S,S,1] map in (-1, 1) to start
      from (e.g. the RI2ITN output).
    tolerance: float >= 0; stop before `steps` once `converged(history,
      tolerance, window)` (the batch's total loss: all images stop together).
      0 runs exactly `steps` steps.
    window: steps over which convergence is measured (>= 1).
  Returns:
    DisplacementFit.
  """
  images = fitting.check_images(images, 'fit_displacement')
  image_size = (int(images.shape[1]), int(images.shape[2]))
  if int(steps) < 0:
    raise ValueError('fit_displacement: steps must be >= 0, got %r' % (steps,))
  if not float(tolerance) >= 0:
    raise ValueError('fit_displacement: tolerance must be >= 0, got %r' %
                     (tolerance,))
  if int(window) < 1:
    raise ValueError('fit_displacement: window must be >= 1, got %r' %
                     (window,))
  weights = dict(detail_losses.DEFAULT_WEIGHTS if weights is None else weights)
  recon = reconstructor
  coeffs = coefficients_lib.Coefficients(
      *[tf.convert_to_tensor(p, tf.float32) for p in coeffs])
  coarse_face = face_reconstruction.reconstruct(recon.model, coeffs, image_size)
  dense_face = recon.applier.dense_face(coarse_face.vertices,
                                        coarse_face.albedo)
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

  x = tf.constant(start)
  m = tf.zeros_like(x)
  v = tf.zeros_like(x)
  unused = tf.constant(0.0)
  history = []
  for i in range(int(steps)):
    lr = tf.constant(fitting.cosine_decay(learning_rate, i, steps), tf.float32)
    x, m, v, total, terms = step_fn(x, m, v, tf.constant(i + 1.0), lr, unused,
                                    images, dense_face, coeffs.pose,
                                    coeffs.lighting)
    total = float(total)
    if not np.isfinite(total):
      raise FloatingPointError(
          'fit_displacement: the loss became %s at step %d (terms %s)' %
          (total, i, {k: float(t) for k, t in terms.items()}))
    history.append(total)
    if converged(history, tolerance, window):
      break
  displacement = tf.tanh(x)
  _, terms = _displacement_loss(recon, images, dense_face, coeffs.pose,
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
