"""Fine geometric detail for the synthetic detail-training images.

preprocess/synthetic_data.py renders faces from the morphable model, which has no
wrinkles: with the ground-truth coarse coefficients the coarse render already
equals the face pixels and the detail stage would have nothing to learn. This
module adds known detail: a random UV displacement map of wrinkle-like
patches (oriented sinusoids under Gaussian envelopes) is applied to the
ground-truth face with detail/displacement.py (masked away from eyes, nose and
eyebrows as at training time), rendered with the ground-truth pose and
lighting and composited over the synthetic image. The displacement is thus
exactly representable by the detail stage, and known (for checks).
"""

import numpy as np
import tensorflow as tf

from coarse import face_reconstruction


def wrinkle_maps(rng, batch_size, uv_size, num_patches=6):
  """Random wrinkle-like UV maps.

  Each map is a sum of `num_patches` patches a cos(2 pi <p - c, d> / lambda)
  exp(-|p - c|^2 / (2 sigma^2)) with amplitude a ~ U(0.3, 1), centre c
  uniform in the middle 60% of the map, direction d at a random angle,
  wavelength lambda ~ U(4, 10) texels and envelope sigma ~ U(3, 8) texels
  (scaled with uv_size / 64), clipped to [-1, 1].

  Args:
    rng: np.random.RandomState.
    batch_size: B.
    uv_size: S.
    num_patches: patches per map.
  Returns: [B,S,S,1] float32 in [-1, 1].
  """
  s = int(uv_size)
  scale = s / 64.0
  rows, cols = np.meshgrid(np.arange(s) + 0.5, np.arange(s) + 0.5,
                           indexing='ij')
  out = np.zeros([batch_size, s, s], np.float64)
  for b in range(batch_size):
    for _ in range(num_patches):
      amp = rng.uniform(0.3, 1.0) * rng.choice([-1.0, 1.0])
      cr, cc = rng.uniform(0.2 * s, 0.8 * s, 2)
      angle = rng.uniform(0.0, np.pi)
      wavelength = rng.uniform(4.0, 10.0) * scale
      sigma = rng.uniform(3.0, 8.0) * scale
      dr, dc = rows - cr, cols - cc
      phase = 2 * np.pi * (dr * np.sin(angle) + dc * np.cos(angle)) / wavelength
      out[b] += amp * np.cos(phase) * np.exp(-(dr**2 + dc**2) /
                                             (2 * sigma**2))
  return np.clip(out, -1.0, 1.0)[..., None].astype(np.float32)


class SyntheticDetails:
  """Adds known fine detail to synthetic face images.

  Args:
    applier: detail.displacement.DisplacementApplier (face model, UV size).
    amplitude_mm: millimetres of model-space depth per unit of the map.
    seed: seed of the maps.
  """

  def __init__(self, applier, amplitude_mm, seed=0):
    if not amplitude_mm > 0:
      raise ValueError('SyntheticDetails: amplitude_mm must be > 0, got %r' %
                       (amplitude_mm,))
    self.applier = applier
    self.amplitude_mm = float(amplitude_mm)
    self._rng = np.random.RandomState(seed)

  def apply(self, images, coeffs):
    """Renders the faces of `coeffs` with random detail over `images`.

    Args:
      images: [B,H,W,3] float32 in [0,1], the synthetic images of `coeffs`.
      coeffs: coarse.coefficients.Coefficients they were rendered from.
    Returns: (images [B,H,W,3] float32 with detail, displacement maps
      [B,S,S,1] float32 in [-1,1]; mm = map x amplitude_mm x detail mask).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    size = (int(images.shape[1]), int(images.shape[2]))
    maps = wrinkle_maps(self._rng, int(images.shape[0]),
                        self.applier.uv_size)
    face = face_reconstruction.reconstruct(self.applier.model, coeffs, size)
    detailed = self.applier.render(face.vertices, face.albedo, coeffs.pose,
                                   coeffs.lighting, tf.constant(maps), size,
                                   self.amplitude_mm)
    mask = detailed.mask
    return detailed.image * mask + images * (1.0 - mask), maps
