"""Training batches for the detail stage: images and frozen coarse coefficients.

Images come from coarse/synthetic_data.py (faces rendered from the model, with
ground-truth coefficients). The coarse coefficients the detail stage builds on
come from the frozen coarse network of a coarse checkpoint (--coarse_checkpoint).
Without one -- a fresh install -- they are the synthetic data's ground-truth
coefficients, and the log says so (Chen20's fine-stage script instead fails
without its coarse checkpoint, its issue #19).
"""

import os

from absl import logging
import numpy as np
import tensorflow as tf

from coarse import coefficients as coefficients_lib
from coarse import synthetic_data


class CoarseSource:
  """Batches (images [B,H,W,3] float32 in [0,1], coefficient vectors [B,D]).

  Args:
    model: bfm.MorphableModel.
    image_size: side of the square images in pixels.
    batch_size: B.
    coarse_checkpoint: None (use ground truth) or a coarse checkpoint file or
      folder; a given path that holds no checkpoint raises FileNotFoundError.
    seed: seed of the synthetic stream.
    num_images: None = an endless stream of new images; N = a fixed training
      set of N images (the paper trains on 1,000), cycled through in batches;
      must be a multiple of batch_size.
  """

  def __init__(self,
               model,
               image_size,
               batch_size,
               coarse_checkpoint=None,
               seed=0,
               num_images=None):
    self.model = model
    self.image_size = int(image_size)
    self.batch_size = int(batch_size)
    self._rng = np.random.RandomState(seed)
    if num_images is not None and (num_images <= 0 or
                                   num_images % self.batch_size):
      raise ValueError(
          'CoarseSource: num_images (%r) must be a positive multiple '
          'of batch_size (%d)' % (num_images, self.batch_size))
    self._num_batches = None if num_images is None else num_images // self.batch_size
    self._cache = {}
    self._batch_index = 0
    self._coarse_net = None
    if coarse_checkpoint:
      self._coarse_net = self._load_coarse(coarse_checkpoint)
    else:
      logging.warning(
          'No --coarse_checkpoint given: the detail stage needs a frozen coarse '
          'model (train it with `python coarse/train.py` and pass its checkpoint '
          'with --coarse_checkpoint). Falling back to the synthetic data\'s '
          'GROUND-TRUTH coarse coefficients, which only works with synthetic data.'
      )

  def _load_coarse(self, path):
    from coarse import coarse_model  # the coarse VGG regressor
    looked = path
    if os.path.isdir(path):
      path = tf.train.latest_checkpoint(path)
    if path is None or not (os.path.exists(path) or
                            os.path.exists(path + '.index')):
      raise FileNotFoundError(
          '--coarse_checkpoint: no coarse checkpoint at %r (need the output of '
          '`python coarse/train.py`)' % looked)
    net = coarse_model.load(path, self.model)
    logging.info('Coarse coefficients from frozen coarse checkpoint %s', path)
    return net

  def coefficients(self, vector):
    """[B,D] flat vector -> coarse.coefficients.Coefficients."""
    return coefficients_lib.Coefficients.from_vector(self.model, vector)

  def _synthetic_batch(self):
    """(images, ground-truth coefficient vector) of the next batch."""
    key = None
    if self._num_batches is not None:
      key = self._batch_index % self._num_batches
      self._batch_index += 1
      if key in self._cache:
        return self._cache[key]
    batch = synthetic_data.sample_batch(self.model,
                                        self.batch_size,
                                        self.image_size,
                                        rng=self._rng)
    result = (tf.convert_to_tensor(batch.images, tf.float32),
              tf.convert_to_tensor(batch.coefficients.to_vector(), tf.float32))
    if key is not None:
      self._cache[key] = result
    return result

  def next_batch(self):
    """(images [B,H,W,3] float32 in [0,1], coefficient vectors [B,D])."""
    images, vector = self._synthetic_batch()
    if self._coarse_net is not None:  # else: ground truth (warned at start)
      vector = self._coarse_net(images, training=False)
    return images, tf.convert_to_tensor(vector, tf.float32)
