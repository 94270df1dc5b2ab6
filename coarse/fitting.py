"""Per-image analysis by synthesis of the coarse coefficients (--fit mode).

No trained checkpoint is needed. For a batch of face crops with 68 detected
landmarks, `fit_coarse`:

1. starts from coarse/landmark_fit.py's closed-form MAP fit (pose, identity
   and expression from the landmarks, milliseconds per image), or from given
   coefficients (a network prediction);
2. then, for `steps` > 0, runs Adam on the whole coefficient vector against
   `map_losses`: the same landmark likelihood and coefficient priors plus
   `photo_weight` x Chen20's photometric loss (coarse/losses.py), rendered
   through the one coefficients->render path (coarse/face_reconstruction.py).

Defaults (DEFAULT_STEPS = 0: the closed form alone) come from the
cross-model full-pose benchmark (eval/fit_benchmark.py, README): on faces of
another model with real skin, neither Adam steps nor the photometric term
lowered the NME consistently, while the closed form takes ~0.3 s per photo.

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
from coarse import landmark_fit
from coarse import losses as coarse_losses
from coarse import silhouette_yaw
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
DEFAULT_STEPS = 0
DEFAULT_PHOTO_WEIGHT = 0.0
OBJECTIVES = ('map', 'chen20')
# The 'chen20' objective's schedule (the previous --fit): leading fraction of
# the steps on landmarks and priors only, then the landmark weight's factor.
CHEN20_LANDMARK_ONLY = 0.2
CHEN20_LANDMARK_SCALE = 0.05

CoarseFit = collections.namedtuple('CoarseFit',
                                   ['coefficients', 'history', 'final_terms'])
CoarseFit.__doc__ = """Result of `fit_coarse`.

  coefficients: coarse.coefficients.Coefficients, NumPy [B, ...].
  history: list of total losses (floats), one per step.
  final_terms: dict name -> float, the unweighted loss terms at the end.
"""

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


def _landmark_pixels(model, face, source):
  """[B,68,2] model landmark pixels under the source's jaw convention."""
  if source == 'dlib':
    return face.landmarks2d
  idx = landmark_fit.landmark_vertices(model, source)
  return tf.gather(face.screen_vertices[..., :2], idx, axis=1)


def map_losses(model, coeffs, face, images, landmarks, source, photo_weight):
  """The fit's objective per batch: (total, dict of terms).

  total = sum over images of
    1/2 sum_i |p_i - p^_i|^2 / (sigma_i s)^2      (landmarks, sigma in mm,
                                                    s px/mm: landmark_fit)
    + 1/2 (|identity|^2 + |expression / sigma_e|^2 + |texture|^2) (priors,
      sigma_e from landmark_fit.prior_sigma)
    + photo_weight * Chen20's photometric loss (coarse/losses.py, colours
      x 255, on the rendered face region without the eyes).
  Self-occluded landmarks (camera-frame vertex normal turned away) get
  landmark_fit.OCCLUDED_SIGMA_FACTOR x sigma, as in the closed-form start.
  """
  width = float(images.shape[2])
  predicted = _landmark_pixels(model, face, source)
  if source == 'dlib':
    idx = face_reconstruction.landmark_indices(model, face.screen_vertices)
    facing = tf.gather(face.normals[..., 2], idx, axis=1, batch_dims=1)
  else:
    facing = tf.gather(face.normals[..., 2],
                       landmark_fit.landmark_vertices(model, source), axis=1)
  sigma = tf.constant(landmark_fit.landmark_sigma_mm(), tf.float32)[None]
  sigma *= tf.where(tf.stop_gradient(facing) < 0.0,
                    landmark_fit.OCCLUDED_SIGMA_FACTOR, 1.0)
  scale = tf.exp(coeffs.pose[:, 5:6]) * (width / camera.REFERENCE_SIZE)
  residual = (landmarks - predicted) / (sigma * scale)[..., None]
  terms = {
      'landmark': 0.5 * tf.reduce_sum(tf.square(residual)),
      'prior': 0.5 * (tf.reduce_sum(tf.square(coeffs.identity)) +
                      tf.reduce_sum(tf.square(
                          coeffs.expression / landmark_fit.prior_sigma(model)[
                              model.num_id:].astype(np.float32))) +
                      tf.reduce_sum(tf.square(coeffs.texture))),
  }
  total = terms['landmark'] + terms['prior']
  if photo_weight > 0:
    terms['photo'] = coarse_losses.photo_loss(images, face.image,
                                              face.photo_mask)
    total += photo_weight * float(images.shape[0]) * terms['photo']
  return total, terms


def chen20_losses(model, coeffs, face, images, landmarks, source, photo_on):
  """Chen20's coarse training losses as a fitting objective: (total, terms).

  coarse/losses.py coarse_losses with its DEFAULT_WEIGHTS (no identity
  term without VGG features) and the source's landmark correspondence;
  `photo_on` (0 or 1) switches the photometric term on and the landmark
  weight down to CHEN20_LANDMARK_SCALE of Chen20's (detected landmarks are
  biased by a few pixels; at full weight they would dominate the photo
  term by ~100x at the true coefficients of a synthetic render).
  """
  face = face._replace(landmarks2d=_landmark_pixels(model, face, source))
  weights = dict(coarse_losses.DEFAULT_WEIGHTS)
  weights['photo'] = weights['photo'] * photo_on
  weights['landmark'] = weights['landmark'] * (
      1.0 - photo_on * (1.0 - CHEN20_LANDMARK_SCALE))
  return coarse_losses.coarse_losses(images, landmarks, None, face, coeffs,
                                     weights)


def _coarse_step(model, image_size, source, objective, photo_weight):
  key = ('coarse', id(model), image_size, source, objective,
         float(photo_weight))

  def loss_fn_factory():
    step_sizes = tf.constant(_step_sizes(model)[None])

    def loss_fn(x, photo_on, start, images, landmarks):
      coeffs = coefficients_lib.Coefficients.from_vector(
          model, start + x * step_sizes)
      face = face_reconstruction.reconstruct(model, coeffs, image_size)
      if objective == 'chen20':
        return chen20_losses(model, coeffs, face, images, landmarks, source,
                             photo_on)
      return map_losses(model, coeffs, face, images, landmarks, source,
                        photo_weight)

    return loss_fn

  return cached_step(key, model, loss_fn_factory)


def fit_coarse(model,
               images,
               landmarks,
               source='facemesh',
               steps=DEFAULT_STEPS,
               initial=None,
               learning_rate=0.05,
               photo_weight=DEFAULT_PHOTO_WEIGHT,
               objective='map',
               dense_landmarks=None,
               correspondence=None,
               silhouette_yaw_deg=silhouette_yaw.MIN_YAW_DEG,
               dense_presence=None):
  """Fits coarse coefficients per image: closed-form start, then Adam.

  Args:
    model: bfm.MorphableModel.
    images: [B,H,W,3] float32 in [0,1] (face crops).
    landmarks: [B,68,2] float32 detected landmarks, pixels of `images`.
    source: the landmarks' source (coarse/landmark_fit.py LANDMARK_SOURCES).
    steps: Adam steps on `map_losses` after the start (>= 0; 0 returns the
      closed-form fit).
    initial: None (coarse/landmark_fit.py's closed-form MAP fit) or
      Coefficients / [B,D] vector to start from (e.g. a network prediction).
    learning_rate: Adam step in units of the per-field step sizes; decays
      with a half cosine to 5% at the end.
    photo_weight: weight of the photometric term of the 'map' objective
      (0: landmarks and priors only).
    objective: 'map' (`map_losses`, starting from the closed-form MAP fit)
      or 'chen20' (`chen20_losses`, the previous --fit: starting from the
      closed-form POSE on the mean face, the first CHEN20_LANDMARK_ONLY of
      the steps without the photometric term).
    dense_landmarks: None or [B,474,2] float32 FaceMesh's 468 points and
      BlazeFace's 6 keypoints in pixels of `images`; with `correspondence`
      (coarse/facemesh_correspondence.py, measured on `model`) the 'map'
      start is landmark_fit.fit_dense on them instead of fit_landmarks on
      the 68 points. The Adam steps use the 68 points either way.
    correspondence: facemesh_correspondence.Correspondence of `model`.
    silhouette_yaw_deg: python float or None. With the dense start, the yaw
      of faces fitted at least this far turned is searched again against
      the photo's outline (coarse/silhouette_yaw.py); None (or > 90) keeps
      the closed-form yaw.
    dense_presence: None or [B] float FaceMesh's presence on each crop
      (mediapipe_landmarks.MeshFace.presence); a face below
      silhouette_yaw.LOW_PRESENCE is searched too, whatever its fitted yaw
      (silhouette_yaw.refine_yaw).
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
  landmark_fit.check_source(source)
  if objective not in OBJECTIVES:
    raise ValueError('fit_coarse: objective must be one of %s, got %r' %
                     (OBJECTIVES, objective))
  use_dense = (initial is None and objective == 'map' and
               dense_landmarks is not None and correspondence is not None)
  if use_dense:
    start = landmark_fit.fit_dense(model, correspondence,
                                   np.asarray(dense_landmarks), image_size)
    if silhouette_yaw_deg is not None and silhouette_yaw_deg <= 90.0:
      start = silhouette_yaw.refine_yaw(model, correspondence, start,
                                        dense_landmarks, images.numpy(),
                                        image_size, silhouette_yaw_deg,
                                        presence=dense_presence)
    start = start.to_vector()
  elif initial is None:
    start = landmark_fit.fit_landmarks(
        model, landmarks.numpy(), image_size, source,
        fit_shape=objective == 'map').to_vector()
  elif isinstance(initial, coefficients_lib.Coefficients):
    start = np.asarray(initial.numpy().to_vector(), np.float32)
  else:
    start = np.asarray(initial, np.float32)
  if start.shape != (batch, coefficients_lib.vector_size(model)):
    raise ValueError('fit_coarse: initial coefficients must be [%d,%d], got %s'
                     % (batch, coefficients_lib.vector_size(model),
                        start.shape))
  step_fn = _coarse_step(model, image_size, source, objective, photo_weight)
  start = tf.constant(start)
  steps = int(steps)
  switch = int(round(steps * CHEN20_LANDMARK_ONLY))

  def schedule(i):
    return cosine_decay(learning_rate, i, steps), float(i >= switch)

  def bound_step(x, m, v, t, lr, photo_on):
    return step_fn(x, m, v, t, lr, photo_on, start, images, landmarks)

  x, history, terms = run_adam(bound_step, tf.zeros_like(start), steps,
                               schedule, 'fit_coarse')
  coeffs = coefficients_lib.Coefficients.from_vector(
      model, (start + x * _step_sizes(model)[None]).numpy())
  if not terms:
    face = face_reconstruction.reconstruct(model, coeffs, image_size)
    if objective == 'chen20':
      _, terms = chen20_losses(model, coeffs, face, images, landmarks, source,
                               1.0)
    else:
      _, terms = map_losses(model, coeffs, face, images, landmarks, source,
                            photo_weight)
  return CoarseFit(coefficients=coeffs,
                   history=history,
                   final_terms={k: float(v) for k, v in terms.items()})
