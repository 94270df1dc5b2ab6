"""Second-order spherical-harmonics (SH) Lambertian shading, as Chen20.

Follows cyj907/unsupervised-detail-layer, tools/render_utils.py,
`Shader._harmonics` (basis constants and order) and `Shader.sh_shader`
(lighting layout [B, 27] = 3 colour channels x 9 coefficients, channel-major,
and the ambient offset 0.3 added to the first two coefficients of every
channel before shading).
"""

import numpy as np
import tensorflow as tf

# Chen20's offset added to the lighting coefficients (per channel: l0 and l1z
# get +0.3, the rest 0), so that zero-initialised lighting gives a lit face.
AMBIENT_OFFSET = (0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def sh_basis(normals):
  """Second-order SH basis evaluated at unit normals.

  Order and constants (Chen20):
    l0 = sqrt(1/(4 pi)); l1z = sqrt(3/(4 pi)) z; l1x = sqrt(3/(4 pi)) x;
    l1y = sqrt(3/(4 pi)) y; l2z2 = sqrt(5/(16 pi)) (3 z^2 - 1);
    l2xz = sqrt(15/(4 pi)) x z; l2yz = sqrt(15/(4 pi)) y z;
    l2x2_y2 = sqrt(15/(16 pi)) (x^2 - y^2); l2xy = sqrt(15/(4 pi)) x y.

  Args:
    normals: [..., 3] float32 unit normals (x, y, z in the frame the lighting
      is defined in; Chen20 uses camera space, z towards the viewer).

  Returns:
    [..., 9] float32 basis values in the order above.
  """
  normals = tf.convert_to_tensor(normals, tf.float32)
  if normals.shape.rank is not None and normals.shape[-1] != 3:
    raise ValueError('sh_basis: normals must have last dimension 3, got '
                     'shape %s' % normals.shape)
  x, y, z = tf.unstack(normals, axis=-1)
  pi = np.pi
  c0 = np.sqrt(1.0 / (4 * pi))
  c1 = np.sqrt(3.0 / (4 * pi))
  c2 = np.sqrt(15.0 / (4 * pi))
  c2z = np.sqrt(5.0 / (16 * pi))
  c2xy = np.sqrt(15.0 / (16 * pi))
  return tf.stack([
      c0 * tf.ones_like(x), c1 * z, c1 * x, c1 * y,
      c2z * (3.0 * z * z - 1.0), c2 * x * z, c2 * y * z,
      c2xy * (x * x - y * y), c2 * x * y
  ], axis=-1)


def sh_shade(albedo, normals, lighting):
  """Per-vertex SH shading: colour_c = albedo_c * sum_k L[c, k] H_k(normal).

  Args:
    albedo: [B, N, 3] float32 reflectance in [0, 1].
    normals: [B, N, 3] float32 unit vertex normals (camera frame).
    lighting: [B, 27] float32, Chen20 layout: lighting[:, 9c + k] is SH
      coefficient k (order of `sh_basis`) of colour channel c (R, G, B).
      AMBIENT_OFFSET is added to each channel's 9 coefficients first.

  Returns:
    [B, N, 3] float32 shaded colours (not clipped).
  """
  albedo = tf.convert_to_tensor(albedo, tf.float32)
  lighting = tf.convert_to_tensor(lighting, tf.float32)
  if albedo.shape.rank is not None and (albedo.shape.rank != 3 or
                                        albedo.shape[-1] != 3):
    raise ValueError('sh_shade: albedo must be [B, N, 3], got %s' %
                     albedo.shape)
  if lighting.shape.rank is not None and (lighting.shape.rank != 2 or
                                          lighting.shape[-1] != 27):
    raise ValueError('sh_shade: lighting must be [B, 27], got %s' %
                     lighting.shape)
  coeffs = tf.reshape(lighting, [-1, 3, 9]) + tf.constant(AMBIENT_OFFSET,
                                                           tf.float32)
  basis = sh_basis(normals)  # [B, N, 9]
  shading = tf.einsum('bnk,bck->bnc', basis, coeffs)
  return albedo * shading


def sh_shade_derivative(albedo, normals, lighting, directions):
  """d/de sh_shade(albedo, normals + e * directions, lighting) at e = 0.

  The directional derivative (a forward-mode Jacobian-vector product of
  `sh_shade`); the normal is not re-normalised, so pass directions tangent
  to the unit sphere for the change of a unit normal.

  Args:
    albedo: [B, N, 3]; normals: [B, N, 3] unit (camera frame);
    lighting: [B, 27] (layout of `sh_shade`, AMBIENT_OFFSET added);
    directions: [B, N, 3] (broadcastable against normals).

  Returns:
    [B, N, 3] float32 change of the shaded colour per unit of e.
  """
  normals = tf.convert_to_tensor(normals, tf.float32)
  directions = tf.broadcast_to(tf.convert_to_tensor(directions, tf.float32),
                               tf.shape(normals))
  with tf.autodiff.ForwardAccumulator(normals, directions) as accumulator:
    shaded = sh_shade(albedo, normals, lighting)
  return accumulator.jvp(shaded)
