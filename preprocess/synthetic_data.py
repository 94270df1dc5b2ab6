"""Synthetic training / benchmark faces rendered from the morphable model.

Random identity, expression, albedo, SH lighting and pose (mostly near-
frontal, like CelebA, unless another yaw distribution is asked for) rendered
through coarse/face_reconstruction.py over a random smooth background, with
exact 68 landmarks (jaw on the silhouette, as dlib marks it: the sliding
contour of coarse/face_reconstruction.py, LANDMARK_SOURCE = 'dlib'), a skin
mask (the model's face region without eyes) and the ground-truth meshes.
Training on these landmarks therefore uses the 'dlib' jaw convention
(coarse/train.py `data_landmark_source`; eval/synthetic_sets.py records say
so).

API
  sample_coefficients(model, batch_size, rng, yaw_distribution) -> Coefficients
  sample_batch(model, batch_size, image_size, rng=None, yaw_distribution=...)
      -> SyntheticBatch
  generate(model, seed, count, image_size, yaw_distribution=..., batch_size=16)
      -> iterator of SyntheticBatch (count images in all; same seed, same data)

Yaw distributions: 'celeba' (default: normal, sd 15 deg, clipped to +-75 deg),
'frontal' (0), 'uniform' (-90..90 deg), a (low_deg, high_deg) tuple (uniform),
or a callable (rng, n) -> [n] degrees.
"""

import collections

import numpy as np

from coarse import coefficients as coefficients_lib
from coarse import face_reconstruction

# The jaw convention of `landmarks` (coarse/face_reconstruction.py
# JAW_CONVENTIONS): the sliding silhouette contour, as dlib marks photos.
LANDMARK_SOURCE = 'dlib'

SyntheticBatch = collections.namedtuple('SyntheticBatch', [
    'images', 'landmarks', 'skin_masks', 'coefficients', 'vertices',
    'screen_vertices', 'yaw_deg'
])
SyntheticBatch.__doc__ = """A batch of B synthetic faces (NumPy, float32).

  images: [B,H,W,3] in [0,1]; landmarks: [B,68,2] pixels (x, y);
  skin_masks: [B,H,W,1] {0,1} (rendered face region minus eyes);
  coefficients: coarse.coefficients.Coefficients (NumPy) used to render;
  vertices: [B,N,3] mm ground-truth meshes in model space (no pose);
  screen_vertices: [B,N,3] pixels (renderer.camera.orthographic_project);
  yaw_deg: [B] the sampled yaw in degrees, renderer/camera.py's sign
    (positive = face turned towards image right).
"""

# Log-scale that makes the synthetic face's landmarks span ~55% of the image
# side, like the crops of preprocess/prepare_data.py.
DEFAULT_LOG_SCALE = float(np.log(0.85))


def _yaw_degrees(rng, n, yaw_distribution):
  if callable(yaw_distribution):
    return np.asarray(yaw_distribution(rng, n), np.float64).reshape(n)
  if isinstance(yaw_distribution, (tuple, list)):
    if len(yaw_distribution) != 2:
      raise ValueError('yaw_distribution: a (low_deg, high_deg) pair, got %r' %
                       (yaw_distribution,))
    return rng.uniform(yaw_distribution[0], yaw_distribution[1], n)
  if yaw_distribution == 'celeba':
    return np.clip(rng.normal(0.0, 15.0, n), -75.0, 75.0)
  if yaw_distribution == 'frontal':
    return np.zeros(n)
  if yaw_distribution == 'uniform':
    return rng.uniform(-90.0, 90.0, n)
  raise ValueError('yaw_distribution: expected celeba, frontal, uniform, a '
                   '(low, high) pair or a callable, got %r' %
                   (yaw_distribution,))


def sample_coefficients(model, batch_size, rng, yaw_distribution='celeba'):
  """Random coefficients (NumPy float32), see the module docstring."""
  b = int(batch_size)
  identity = rng.normal(0.0, 1.0, [b, model.num_id])
  expression = np.clip(rng.normal(0.0, 0.5, [b, model.num_exp]), -1.5, 1.5)
  texture = rng.normal(0.0, 1.0, [b, model.num_tex])
  yaw = np.deg2rad(_yaw_degrees(rng, b, yaw_distribution))
  pose = np.stack([
      np.deg2rad(np.clip(rng.normal(0.0, 6.0, b), -20, 20)),  # pitch
      yaw,
      np.deg2rad(np.clip(rng.normal(0.0, 5.0, b), -15, 15)),  # roll
      rng.normal(0.0, 4.0, b),  # tx, pixels of a 224-px image
      rng.normal(0.0, 4.0, b),  # ty
      DEFAULT_LOG_SCALE + rng.normal(0.0, 0.05, b),
  ], 1)
  # SH lighting (renderer/shading.py adds 0.3 to l0 and l1z): a bright
  # ambient term, light mostly from the front, small directional and second
  # order parts, slightly coloured.
  light = np.zeros([b, 3, 9])
  light[:, :, 0] = (1.7 + rng.normal(0, 0.15, [b, 1]) +
                    rng.normal(0, 0.05, [b, 3]))
  light[:, :, 1] = 0.6 + rng.normal(0, 0.1, [b, 1])
  light[:, :, 2:4] = rng.normal(0, 0.3, [b, 1, 2])
  light[:, :, 4:] = rng.normal(0, 0.1, [b, 1, 5])
  return coefficients_lib.Coefficients(
      identity.astype(np.float32), expression.astype(np.float32),
      texture.astype(np.float32), pose.astype(np.float32),
      light.reshape(b, 27).astype(np.float32))


def _backgrounds(rng, b, size):
  """[b,S,S,3] smooth random backgrounds with a little noise."""
  yy, xx = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size),
                       indexing='ij')
  base = rng.uniform(0.1, 0.9, [b, 1, 1, 3])
  grad = rng.normal(0, 0.15, [b, 1, 1, 3, 2])
  bg = (base + grad[..., 0] * xx[None, :, :, None] +
        grad[..., 1] * yy[None, :, :, None])
  bg += rng.normal(0, 0.02, bg.shape)
  return np.clip(bg, 0.0, 1.0).astype(np.float32)


def sample_batch(model, batch_size, image_size, rng=None,
                 yaw_distribution='celeba'):
  """One SyntheticBatch of square `image_size` images.

  Args:
    model: bfm.MorphableModel.
    batch_size: B.
    image_size: python int, side in pixels.
    rng: np.random.RandomState (default: a fresh unseeded one).
    yaw_distribution: see the module docstring.
  """
  if rng is None:
    rng = np.random.RandomState()
  size = int(image_size)
  coeffs = sample_coefficients(model, batch_size, rng, yaw_distribution)
  face = face_reconstruction.reconstruct(model, coeffs, (size, size),
                                        landmark_source=LANDMARK_SOURCE)
  mask = face.mask.numpy()
  images = face.image.numpy() * mask + _backgrounds(rng, batch_size, size) * (
      1.0 - mask)
  return SyntheticBatch(images=images.astype(np.float32),
                        landmarks=face.landmarks2d.numpy(),
                        skin_masks=face.photo_mask.numpy(),
                        coefficients=coeffs,
                        vertices=face.vertices.numpy(),
                        screen_vertices=face.screen_vertices.numpy(),
                        yaw_deg=np.rad2deg(coeffs.pose[:, 1]))


def generate(model, seed, count, image_size, yaw_distribution='celeba',
             batch_size=16):
  """Yields SyntheticBatch objects holding `count` images in all.

  Deterministic for a given (seed, count, image_size, yaw_distribution,
  batch_size). The last batch may be smaller.
  """
  if int(count) < 0 or int(batch_size) <= 0:
    raise ValueError('synthetic_data.generate: need count >= 0 and '
                     'batch_size > 0, got %r, %r' % (count, batch_size))
  rng = np.random.RandomState(seed)
  left = int(count)
  while left > 0:
    n = min(left, int(batch_size))
    yield sample_batch(model, n, image_size, rng, yaw_distribution)
    left -= n
