"""The coarse coefficient set: identity, expression, texture, pose, lighting.

A flat vector [B, D] (the network output) splits into named parts sized from
the loaded face model, in the order
  identity [B, K_id] | expression [B, K_exp] | texture [B, K_tex] |
  pose [B, 6] | lighting [B, 27]
with pose = (pitch, yaw, roll [radians], tx, ty [pixels of a 224-px image],
log_scale) (renderer/camera.py) and lighting = 9 SH coefficients per colour
channel (renderer/shading.py, Chen20 layout). Identity, expression and texture
coefficients are ~ N(0, 1) (the model's bases are pre-multiplied by sigma).
"""

import collections

import numpy as np
import tensorflow as tf

POSE_SIZE = 6
LIGHTING_SIZE = 27
FIELDS = ('identity', 'expression', 'texture', 'pose', 'lighting')


def sizes(model):
  """OrderedDict field -> width for a bfm.MorphableModel."""
  return collections.OrderedDict([('identity', int(model.num_id)),
                                  ('expression', int(model.num_exp)),
                                  ('texture', int(model.num_tex)),
                                  ('pose', POSE_SIZE),
                                  ('lighting', LIGHTING_SIZE)])


def vector_size(model):
  """D, the width of the flat coefficient vector for `model`."""
  return sum(sizes(model).values())


class Coefficients(
    collections.namedtuple('Coefficients', FIELDS)):
  """Named coefficient tensors (TF or NumPy, all with the same batch size B).

  identity [B,K_id], expression [B,K_exp], texture [B,K_tex], pose [B,6],
  lighting [B,27]; float32.
  """
  __slots__ = ()

  @classmethod
  def from_vector(cls, model, vector):
    """Splits a flat [B, D] float32 vector (D = vector_size(model))."""
    widths = list(sizes(model).values())
    total = sum(widths)
    if isinstance(vector, np.ndarray):
      if vector.ndim != 2 or vector.shape[1] != total:
        raise ValueError(
            'Coefficients.from_vector: vector must be [B, %d] for model %r, '
            'got shape %s' % (total, model.name, vector.shape))
      parts = np.split(vector.astype(np.float32), np.cumsum(widths)[:-1], 1)
      return cls(*parts)
    vector = tf.convert_to_tensor(vector, tf.float32)
    if vector.shape.rank != 2 or (vector.shape[1] is not None and
                                  vector.shape[1] != total):
      raise ValueError(
          'Coefficients.from_vector: vector must be [B, %d] for model %r, got '
          'shape %s' % (total, model.name, vector.shape))
    return cls(*tf.split(vector, widths, axis=1))

  @classmethod
  def zeros(cls, model, batch_size):
    """All-zero coefficients (mean face, frontal, Chen20 ambient light)."""
    return cls.from_vector(
        model, np.zeros([batch_size, vector_size(model)], np.float32))

  def to_vector(self):
    """[B, D] flat vector (NumPy if every part is NumPy, else a tf.Tensor)."""
    if all(isinstance(p, np.ndarray) for p in self):
      return np.concatenate([np.asarray(p, np.float32) for p in self], 1)
    return tf.concat([tf.convert_to_tensor(p, tf.float32) for p in self], 1)

  def numpy(self):
    """A copy with every part as a NumPy array."""
    return Coefficients(*[np.asarray(p) for p in self])
