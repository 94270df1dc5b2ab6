"""Chen20's training-data augmentation for the coarse stage.

As cyj907/unsupervised-detail-layer tools/data_utils.py `DataSet.augment`
(controller.py turns on colour, flip and scale), applied per image in this
order:
  colour: every channel multiplied by a factor U(0.8, 1.2), each factor
    capped so that the channel's brightest pixel stays within range
    (Chen20: clip(factor, 0, 255 / channel max));
  flip: with probability 0.5 the image, its skin mask and its landmarks
    are mirrored left-right; x -> W - x (pixel-corner coordinates) and the
    68 points renumbered by the iBUG mirror map (Chen20 flip_vtx_map68);
  scale: the image is resized by s ~ U(0.9, 1.1) about its centre and
    centre-cropped or zero-padded back to its size; landmarks x s plus the
    offset (Chen20 random_resize_and_crop; its comment says 0.8-1.2, its
    code draws 0.9-1.1).
Examples that carry a ground-truth mesh (synthetic data for the supervised
vertex loss) have it mirrored with the image: x -> -x in model space and
every vertex renumbered by the model's symmetry map (`mirror_shape`);
colour and scale leave it as it is.
Used by coarse/train.py (--coarse_augment).
"""

import numpy as np
import tensorflow as tf

from preprocess import facemesh_to_ibug68

COLOR_RANGE = (0.8, 1.2)
SCALE_RANGE = (0.9, 1.1)
FLIP_PROBABILITY = 0.5
# iBUG point i of a face is point IBUG68_MIRROR[i] of its mirror image.
IBUG68_MIRROR = np.asarray(facemesh_to_ibug68.IBUG68_MIRROR, np.int32)


def color_shift(image, factors):
  """image [H,W,3] in [0,1] x per-channel factors [3], capped at 1 / max."""
  cap = 1.0 / tf.maximum(tf.reduce_max(image, axis=[0, 1]), 1e-6)
  return image * tf.minimum(factors, cap)


def flip(image, landmarks, mask):
  """Left-right mirror of image [H,W,3], landmarks [68,2] px, mask [H,W,1]."""
  width = tf.cast(tf.shape(image)[1], tf.float32)
  landmarks = tf.gather(landmarks, IBUG68_MIRROR)
  landmarks = tf.stack([width - landmarks[:, 0], landmarks[:, 1]], -1)
  return image[:, ::-1], landmarks, mask[:, ::-1]


def mirror_shape(shape, symmetry):
  """The mesh of the mirrored face: [V,3] mm model space (mirror plane
  x = 0, bfm.symmetry), vertex i taken from symmetry[i] with x negated."""
  shape = tf.gather(shape, tf.constant(np.asarray(symmetry), tf.int32))
  return shape * tf.constant([-1.0, 1.0, 1.0], shape.dtype)


def rescale(image, landmarks, mask, scale):
  """Resize by `scale` about the centre, crop or zero-pad back (Chen20).

  Args:
    image: [S,S,3]; landmarks: [68,2] px; mask: [S,S,1]; scale: scalar.
  Returns: (image, landmarks, mask) of the same shapes.
  """
  size = tf.shape(image)[0]
  sf = tf.cast(size, tf.float32)
  new = tf.cast(sf * scale, tf.int32)  # Chen20: int(H * scale)
  image_r = tf.image.resize(image, [new, new])
  mask_r = tf.image.resize(mask, [new, new], method='nearest')
  ratio = tf.cast(new, tf.float32) / sf  # the scale actually applied
  # Chen20 pads int((H - H*s) / 2) before, crops from int((H*s - H) / 2).
  before = (size - new) // 2
  start = (new - size) // 2

  def pad():
    after = size - new - before
    p = [[before, after], [before, after], [0, 0]]
    return (tf.pad(image_r, p), tf.pad(mask_r, p),
            landmarks * ratio + tf.cast(before, tf.float32))

  def crop():
    return (image_r[start:start + size, start:start + size],
            mask_r[start:start + size, start:start + size],
            landmarks * ratio - tf.cast(start, tf.float32))

  image, mask, landmarks = tf.cond(new < size, pad, crop)
  image.set_shape([None, None, 3])
  mask.set_shape([None, None, 1])
  return image, landmarks, mask


def augment(image, landmarks, mask, seed, shape=None, symmetry=None):
  """Chen20's colour, flip and scale augmentation of one training example.

  Args:
    image: [S,S,3] float32 in [0,1]; landmarks: [68,2] float32 px;
    mask: [S,S,1] float32 skin mask; seed: [2] int32 stateless seed.
    shape: None, or the example's ground-truth mesh [V,3] mm (mirrored
      with the image, `mirror_shape`).
    symmetry: [V] int, the model's symmetry map; needed with `shape`.
  Returns: (image, landmarks, mask), same shapes and dtypes; with `shape`,
    (image, landmarks, mask, shape).
  """
  seeds = tf.random.experimental.stateless_split(seed, 3)
  factors = tf.random.stateless_uniform([3], seeds[0], *COLOR_RANGE)
  image = color_shift(image, factors)
  do_flip = tf.random.stateless_uniform([], seeds[1]) < FLIP_PROBABILITY
  image, landmarks, mask = tf.cond(
      do_flip, lambda: flip(image, landmarks, mask),
      lambda: (image, landmarks, mask))
  if shape is not None:
    if symmetry is None:
      raise ValueError('augment: a shape needs the model\'s symmetry map')
    shape = tf.cond(do_flip, lambda: mirror_shape(shape, symmetry),
                    lambda: tf.identity(shape))
  scale = tf.random.stateless_uniform([], seeds[2], *SCALE_RANGE)
  size = image.shape
  image, landmarks, mask = rescale(image, landmarks, mask, scale)
  image = tf.ensure_shape(image, size)
  mask = tf.ensure_shape(mask, size[:2] + [1])
  if shape is not None:
    return image, landmarks, mask, shape
  return image, landmarks, mask


def augment_dataset(dataset, batch_size, seed, first_example=0,
                    symmetry=None):
  """Batches (images, landmarks, masks) -> the same batches, augmented.

  Batches with a fourth element, ground-truth meshes [B,V,3], need the
  model's symmetry map `symmetry` [V] to mirror them (`augment`).

  Example k of the stream is augmented with the stateless seed
  (seed, first_example + k): a run resumed after n steps passes
  first_example = n * batch_size and continues the uninterrupted run's
  sequence instead of repeating its first augmentations.
  """
  counter = tf.data.Dataset.counter(start=int(first_example))
  examples = tf.data.Dataset.zip((dataset.unbatch(), counter))

  def one(example, index):
    stateless = tf.stack([tf.cast(seed, tf.int64), index])
    if len(example) == 4:
      image, landmarks, mask, shape = example
      return augment(image, landmarks, mask, stateless, shape, symmetry)
    image, landmarks, mask = example
    return augment(image, landmarks, mask, stateless)

  return examples.map(one, num_parallel_calls=tf.data.AUTOTUNE).batch(
      batch_size, drop_remainder=True).prefetch(2)
