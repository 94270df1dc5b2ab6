"""Training batches for the detail stage: images and frozen coarse coefficients.

Images come from preprocess/synthetic_data.py (faces rendered from the model, with
ground-truth coefficients), optionally with known fine detail added
(detail/synthetic_details.py). The coarse coefficients the detail stage builds
on come from the frozen coarse network of a coarse checkpoint
(--coarse_checkpoint).
Without one -- a fresh install -- they are the synthetic data's ground-truth
coefficients, and the log says so (Chen20's fine-stage script instead fails
without its coarse checkpoint, its issue #19).
"""

from absl import logging
import numpy as np
import tensorflow as tf

from coarse import coarse_model
from coarse import coefficients as coefficients_lib
from preprocess import face_records
from preprocess import synthetic_data


class CoarseSource:
  """Batches (images [B,H,W,3] float32 in [0,1], coefficient vectors [B,D],
  skin masks [B,H,W,1] float32 in [0,1]).

  The skin masks restrict the detail photometric loss to skin (Chen20's fine
  photo-loss mask): for TFRecords the masks prepare_data.py stored
  (preprocess/skin_mask.py), for synthetic faces the rendered face region
  without eyes (preprocess/synthetic_data.py skin_masks).

  Args:
    model: bfm.MorphableModel.
    image_size: side of the square images in pixels.
    batch_size: B.
    coarse_checkpoint: None (use ground truth) or a coarse/train.py
      checkpoint folder or ckpt-N prefix (coarse_config.json beside it gives
      the network's input size and width); a path that holds no checkpoint
      raises FileNotFoundError naming it.
    seed: seed of the synthetic stream.
    num_images: synthetic data: None = an endless stream of new images; N =
      a fixed training set of N images (the paper trains on 1,000), cycled
      through in batches; must be a multiple of batch_size.
    details: None or a detail.synthetic_details.SyntheticDetails that adds
      known fine detail to every synthetic image (the morphable model alone
      has none, so the detail stage would have nothing to learn).
    data: None (synthetic faces) or TFRecords of face crops written by
      preprocess/prepare_data.py (folder, file or glob; the paper trains on
      1,000 CelebA images), or an iterator of their batches (images,
      landmarks, masks), e.g. of coarse.training_loop.record_dataset. Real
      images need coarse_checkpoint.
  """

  def __init__(self,
               model,
               image_size,
               batch_size,
               coarse_checkpoint=None,
               seed=0,
               num_images=None,
               details=None,
               data=None):
    self.model = model
    self.image_size = int(image_size)
    self.batch_size = int(batch_size)
    self._rng = np.random.RandomState(seed)
    self.details = details
    if num_images is not None and (num_images <= 0 or
                                   num_images % self.batch_size):
      raise ValueError(
          'CoarseSource: num_images (%r) must be a positive multiple '
          'of batch_size (%d)' % (num_images, self.batch_size))
    self._num_batches = (None if num_images is None else num_images //
                         self.batch_size)
    self._cache = {}
    self._batch_index = 0
    self._coarse_net = None
    self.coarse_checkpoint = None  # the checkpoint path used, if any
    self._data = None
    if data is not None:
      if not coarse_checkpoint:
        raise ValueError(
            '--data=%s: real images have no ground-truth coefficients; '
            'the detail stage needs the frozen coarse network, pass '
            '--coarse_checkpoint=DIR (the --log_dir of `python '
            'coarse/train.py`)' % (data if isinstance(data, str) else
                                   'TFRecords',))
      if isinstance(data, str):
        logging.info('Detail training images: TFRecords %s', data)
        data = iter(face_records.dataset(data, self.image_size,
                                         self.batch_size, seed=seed))
      self._data = data
    if coarse_checkpoint:
      self._coarse_net = self._load_coarse(coarse_checkpoint)
    else:
      logging.warning(
          'No --coarse_checkpoint given: the detail stage needs a frozen '
          'coarse model (train it with `python coarse/train.py --log_dir=DIR` '
          'and pass --coarse_checkpoint=DIR). Falling back to the synthetic '
          'data\'s GROUND-TRUTH coarse coefficients, which only works with '
          'synthetic data.')

  def _load_coarse(self, path):
    try:
      net = coarse_model.load(path, self.model)
    except FileNotFoundError as e:
      raise FileNotFoundError(
          '--coarse_checkpoint: no coarse checkpoint at %r; the detail stage '
          'needs the folder (or ckpt-N prefix) written by `python '
          'coarse/train.py --log_dir=...` (%s)' % (path, e)) from e
    if tf.io.gfile.isdir(path):
      path = tf.train.latest_checkpoint(path)
    self.coarse_checkpoint = path
    logging.info('Coarse coefficients from the frozen coarse network %s '
                 '(input %d px, width %g)', path, net.input_size, net.width)
    return net

  def coefficients(self, vector):
    """[B,D] flat vector -> coarse.coefficients.Coefficients."""
    return coefficients_lib.Coefficients.from_vector(self.model, vector)

  def _new_batch(self):
    """(images, coarse coefficient vector, skin masks) of a new batch."""
    if self._data is not None:
      images, _, masks = next(self._data)[:3]
      return (images, self._coarse_net(images, training=False),
              tf.convert_to_tensor(masks, tf.float32))
    batch = synthetic_data.sample_batch(self.model,
                                        self.batch_size,
                                        self.image_size,
                                        rng=self._rng)
    images = tf.convert_to_tensor(batch.images, tf.float32)
    if self.details is not None:
      images, _ = self.details.apply(images, batch.coefficients)
    if self._coarse_net is not None:  # frozen: inference mode, no gradient
      vector = self._coarse_net(images, training=False)
    else:  # ground truth (warned at start)
      vector = batch.coefficients.to_vector()
    return (images, tf.convert_to_tensor(vector, tf.float32),
            tf.convert_to_tensor(batch.skin_masks, tf.float32))

  def next_batch(self):
    """(images [B,H,W,3] float32 in [0,1], coefficient vectors [B,D],
    skin masks [B,H,W,1] float32 in [0,1])."""
    if self._num_batches is None or self._data is not None:
      return self._new_batch()
    key = self._batch_index % self._num_batches
    self._batch_index += 1
    if key not in self._cache:  # the coarse network is frozen: cache it too
      self._cache[key] = self._new_batch()
    return self._cache[key]
