"""Per-image analysis by synthesis of the coarse coefficients (--fit mode).

No trained checkpoint is needed. For a batch of face crops with 68 detected
landmarks:

1. `initial_pose`: a closed-form scaled-orthographic pose from the mean
   face's inner landmarks (17..67) to the detected ones (least-squares affine
   camera, rows made orthonormal by SVD, Euler angles in renderer/camera.py's
   convention).
2. `fit_coarse`: Adam on the coefficient vector against the coarse losses of
   coarse/losses.py (Eq. 14-18: photometric, landmarks, coefficient priors;
   the identity loss needs VGG weights and is off), rendering through the one
   coefficients->render path (coarse/face_reconstruction.py). The first
   `landmark_only_fraction` of the steps use landmarks and priors only; then
   the photometric term comes in and the landmark weight drops to
   `landmark_scale` of Chen20's (detected landmarks are biased by a few
   pixels, e.g. dlib's jaw line; at the ground-truth coefficients of a
   synthetic render their loss is ~100x the photometric one, so at full
   weight they would pull the fit away from the truth).

The small Adam of `run_adam` keeps each image's optimiser state inside one
tf.function; detail/displacement_fitting.py reuses it for the displacement
map.
"""

import collections
import math

import numpy as np
import tensorflow as tf

from coarse import coefficients as coefficients_lib
from coarse import face_reconstruction
from coarse import losses as coarse_losses
from renderer import camera

# Coefficient change per unit of the optimised variable (a per-field
# preconditioner, so one Adam learning rate suits all fields): identity,
# expression, texture in sigmas; angles in radians; tx, ty in pixels of a
# 224-px image; log-scale; SH lighting.
_FIELD_STEP = {
    'identity': 1.0,
    'expression': 1.0,
    'texture': 1.0,
    'lighting': 3.0,
}
_POSE_STEP = (0.15, 0.15, 0.15, 3.0, 3.0, 0.05)
INNER_LANDMARKS = np.arange(17, 68)

CoarseFit = collections.namedtuple('CoarseFit',
                                   ['coefficients', 'history', 'final_terms'])
CoarseFit.__doc__ = """Result of `fit_coarse`.

  coefficients: coarse.coefficients.Coefficients, NumPy [B, ...].
  history: list of total losses (floats), one per step.
  final_terms: dict name -> float, the unweighted loss terms at the end.
"""

def _euler_from_rotation(rotation):
  """(pitch, yaw, roll) of R = Rz(roll) Ry(yaw) Rx(pitch) (renderer.camera)."""
  yaw = math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0)))
  pitch = math.atan2(rotation[2, 1], rotation[2, 2])
  roll = math.atan2(rotation[1, 0], rotation[0, 0])
  return pitch, yaw, roll


def initial_pose(model, landmarks, image_size):
  """Closed-form pose [B,6] from 2D landmarks (scaled orthographic camera).

  Args:
    model: bfm.MorphableModel.
    landmarks: [B,68,2] pixels (x, y) in images of `image_size`.
    image_size: (height, width) python ints.
  Returns:
    [B,6] float32 pose (renderer/camera.py layout) putting the mean face's
    inner landmarks (17..67) on the given ones in the least-squares sense.
  """
  height, width = image_size
  landmarks = np.asarray(landmarks, np.float64)
  if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
    raise ValueError('initial_pose: landmarks must be [B,68,2], got %s' %
                     (landmarks.shape,))
  points3d = model.mean_shape[model.landmarks68[INNER_LANDMARKS]].astype(
      np.float64)
  design = np.concatenate([points3d, np.ones([len(points3d), 1])], 1)
  poses = []
  for lms in landmarks[:, INNER_LANDMARKS]:
    # Screen (x right, y down) -> camera-centred (x right, y up).
    target = np.stack([lms[:, 0] - width / 2.0, height / 2.0 - lms[:, 1]], 1)
    solution, _, _, _ = np.linalg.lstsq(design, target, rcond=None)
    affine, offset = solution[:3].T, solution[3]  # [2,3], [2]
    u, s, vt = np.linalg.svd(affine, full_matrices=False)
    rows = u @ vt  # nearest matrix with orthonormal rows
    rotation = np.stack([rows[0], rows[1], np.cross(rows[0], rows[1])])
    scale_px = float(np.mean(s))
    pitch, yaw, roll = _euler_from_rotation(rotation)
    log_scale = math.log(max(scale_px, 1e-6) * camera.REFERENCE_SIZE / width)
    tx = offset[0] * camera.REFERENCE_SIZE / width
    ty = offset[1] * camera.REFERENCE_SIZE / height
    poses.append([pitch, yaw, roll, tx, ty, log_scale])
  return np.asarray(poses, np.float32)


def _step_sizes(model):
  """[D] float32 coefficient change per unit of the optimised variable."""
  parts = []
  for name, width in coefficients_lib.sizes(model).items():
    if name == 'pose':
      parts.append(np.asarray(_POSE_STEP, np.float32))
    else:
      parts.append(np.full([width], _FIELD_STEP[name], np.float32))
  return np.concatenate(parts)


def check_images(images, name):
  images = tf.convert_to_tensor(images, tf.float32)
  if images.shape.rank != 4 or images.shape[-1] != 3:
    raise ValueError('%s: images must be [B,H,W,3], got %s' %
                     (name, images.shape))
  return images


def _adam(x, m, v, grad, t, learning_rate):
  """One Adam update (Kingma & Ba defaults) of tensors; t counts from 1."""
  beta1, beta2, eps = 0.9, 0.999, 1e-8
  m = beta1 * m + (1.0 - beta1) * grad
  v = beta2 * v + (1.0 - beta2) * tf.square(grad)
  m_hat = m / (1.0 - beta1**t)
  v_hat = v / (1.0 - beta2**t)
  return x - learning_rate * m_hat / (tf.sqrt(v_hat) + eps), m, v


def run_adam(step_fn, x, steps, schedule, name):
  """Runs Adam: step_fn(x, m, v, t, lr, extra) -> (x, m, v, total, terms),
  with (lr, extra) = schedule(step index). Returns (x, history, terms).
  Raises FloatingPointError naming `name` when the loss is not finite."""
  m = tf.zeros_like(x)
  v = tf.zeros_like(x)
  history = []
  terms = {}
  for i in range(int(steps)):
    lr, extra = schedule(i)
    x, m, v, total, terms = step_fn(x, m, v, tf.constant(i + 1.0),
                                    tf.constant(lr, tf.float32),
                                    tf.constant(extra, tf.float32))
    total = float(total)
    if not np.isfinite(total):
      raise FloatingPointError(
          '%s: the loss became %s at step %d (terms %s)' %
          (name, total, i, {k: float(t) for k, t in terms.items()}))
    history.append(total)
  return x, history, terms


def cosine_decay(learning_rate, i, steps):
  """Half-cosine decay from learning_rate to 5% of it."""
  return learning_rate * (0.05 + 0.95 * 0.5 *
                          (1.0 + math.cos(math.pi * i / max(steps, 1))))


# Compiled step functions, one per (model, image size, weights): repeated
# batches reuse the trace (a new batch size retraces once).
_STEPS = {}


def _adam_step(loss_fn):
  """A tf.function Adam step on x of the loss total, terms = loss_fn(x, ...).

  The step is step(x, m, v, t, lr, *loss_args) -> (x, m, v, total, terms).
  """

  @tf.function
  def step(x, m, v, t, lr, *loss_args):
    with tf.GradientTape() as tape:
      tape.watch(x)
      total, terms = loss_fn(x, *loss_args)
    x, m, v = _adam(x, m, v, tape.gradient(total, x), t, lr)
    return x, m, v, total, terms

  return step


def cached_step(key, owner, loss_fn_factory):
  """_STEPS[key]'s step while it belongs to `owner`, else a new one."""
  if key not in _STEPS or _STEPS[key][0] is not owner:
    _STEPS[key] = (owner, _adam_step(loss_fn_factory()))
  return _STEPS[key][1]


def _coarse_step(model, image_size, weights, landmark_scale):
  key = ('coarse', id(model), image_size, tuple(sorted(weights.items())),
         float(landmark_scale))

  def loss_fn_factory():
    step_sizes = tf.constant(_step_sizes(model)[None])

    def loss_fn(x, photo_on, start, images, landmarks):
      coeffs = coefficients_lib.Coefficients.from_vector(
          model, start + x * step_sizes)
      face = face_reconstruction.reconstruct(model, coeffs, image_size)
      w = dict(weights,
               photo=weights['photo'] * photo_on,
               landmark=weights['landmark'] *
               (1.0 - photo_on * (1.0 - landmark_scale)))
      return coarse_losses.coarse_losses(images, landmarks, None, face, coeffs,
                                         w)

    return loss_fn

  return cached_step(key, model, loss_fn_factory)


def fit_coarse(model,
               images,
               landmarks,
               steps=300,
               initial=None,
               learning_rate=0.05,
               weights=None,
               landmark_only_fraction=0.2,
               landmark_scale=0.05):
  """Optimises coarse coefficients per image against the coarse losses.

  Args:
    model: bfm.MorphableModel.
    images: [B,H,W,3] float32 in [0,1] (face crops).
    landmarks: [B,68,2] float32 detected landmarks, pixels of `images`.
    steps: Adam steps (>= 0).
    initial: None (mean face, zero lighting, `initial_pose`) or
      Coefficients / [B,D] vector to start from (e.g. a network prediction).
    learning_rate: Adam step in units of the per-field step sizes; decays
      with a half cosine to 5% at the end.
    weights: dict of coarse loss weights (default coarse_losses.DEFAULT_WEIGHTS; the identity
      term is off without VGG features).
    landmark_only_fraction: leading fraction of the steps without the
      photometric term (pose and shape settle on the landmarks first).
    landmark_scale: factor on the landmark weight once the photometric term
      is on (detected landmarks are biased; the photo term refines).
  Returns:
    CoarseFit.
  """
  images = check_images(images, 'fit_coarse')
  image_size = (int(images.shape[1]), int(images.shape[2]))
  landmarks = tf.convert_to_tensor(landmarks, tf.float32)
  batch = int(images.shape[0])
  if landmarks.shape != (batch, 68, 2):
    raise ValueError('fit_coarse: landmarks must be [%d,68,2], got %s' %
                     (batch, landmarks.shape))
  if int(steps) < 0:
    raise ValueError('fit_coarse: steps must be >= 0, got %r' % (steps,))
  weights = dict(coarse_losses.DEFAULT_WEIGHTS if weights is None else weights)
  if initial is None:
    start = coefficients_lib.Coefficients.zeros(model, batch)
    start = start._replace(
        pose=initial_pose(model, landmarks.numpy(), image_size))
    start = start.to_vector()
  elif isinstance(initial, coefficients_lib.Coefficients):
    start = np.asarray(initial.numpy().to_vector(), np.float32)
  else:
    start = np.asarray(initial, np.float32)
  if start.shape != (batch, coefficients_lib.vector_size(model)):
    raise ValueError('fit_coarse: initial coefficients must be [%d,%d], got %s'
                     % (batch, coefficients_lib.vector_size(model),
                        start.shape))
  step_fn = _coarse_step(model, image_size, weights, landmark_scale)
  start = tf.constant(start)
  steps = int(steps)
  switch = int(round(steps * float(landmark_only_fraction)))

  def schedule(i):
    return cosine_decay(learning_rate, i, steps), 0.0 if i < switch else 1.0

  def bound_step(x, m, v, t, lr, photo_on):
    return step_fn(x, m, v, t, lr, photo_on, start, images, landmarks)

  x, history, terms = run_adam(bound_step, tf.zeros_like(start), steps,
                                schedule, 'fit_coarse')
  coeffs = coefficients_lib.Coefficients.from_vector(
      model, (start + x * _step_sizes(model)[None]).numpy())
  if not terms:
    face = face_reconstruction.reconstruct(model, coeffs, image_size)
    _, terms = coarse_losses.coarse_losses(images, landmarks, None, face,
                                           coeffs, weights)
  return CoarseFit(coefficients=coeffs,
                   history=history,
                   final_terms={k: float(v) for k, v in terms.items()})
