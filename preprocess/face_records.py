"""TFRecord format of prepared face crops and the tf.data pipeline reading it.

One tf.train.Example per face (written by preprocess/prepare_data.py):
  'image'     bytes  PNG, square RGB crop (uint8)
  'mask'      bytes  PNG, single-channel skin mask (0 / 255), same size
  'landmarks' float  136 values, 68 x (x, y) pixels in crop coordinates
                     (origin top-left corner, pixel centres at +0.5)
  'name'      bytes  source file name
  'landmark_source'
              bytes  which detector marked the landmarks ('facemesh' or
                     'dlib', preprocess/face_landmarks.py): it sets the jaw
                     convention of the training landmark loss. Records
                     written before this feature existed lack it and read
                     as 'dlib', the only source prepare_data had then
                     (LEGACY_SOURCE).
  'shape'     float  optional, 3V values: the face's ground-truth mesh, V x
                     (x, y, z) millimetres in the model space of the morphable
                     model that generated it (synthetic data only; eval/
                     synthetic_sets.py). Read with decode(with_shape=True)
                     for the supervised vertex loss (coarse/losses.py
                     vertex_loss); photos have none.

A dataset has one landmark source: `landmark_source(data)` reads it from the
first record of every shard and refuses shards that disagree.
"""

import os

import numpy as np
import tensorflow as tf

from coarse import landmark_fit

SOURCES = landmark_fit.LANDMARK_SOURCES
# What records without a 'landmark_source' feature were marked with.
LEGACY_SOURCE = 'dlib'


def _bytes(v):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def serialize(image, landmarks, mask, name, landmark_source=LEGACY_SOURCE,
              shape=None):
  """tf.train.Example bytes for one crop.

  Args:
    image: [S,S,3] uint8 RGB. landmarks: [68,2] float pixels.
    mask: [S,S] uint8 (0 or 255). name: str.
    landmark_source: one of SOURCES, the detector that marked `landmarks`
      (the default, 'dlib', is also the convention of model renders whose
      jaw slides to the silhouette: preprocess/synthetic_data.py).
    shape: None, or the face's ground-truth mesh [V,3] float millimetres in
      model space (the 'shape' feature).
  """
  if landmark_source not in SOURCES:
    raise ValueError('face_records.serialize: landmark_source must be one of '
                     '%s, got %r' % (', '.join(SOURCES), landmark_source))
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise ValueError('face_records.serialize: image must be [S,S,3] uint8, got '
                     '%s %s' % (image.dtype, image.shape))
  landmarks = np.asarray(landmarks, np.float32)
  if landmarks.shape != (68, 2):
    raise ValueError('face_records.serialize: landmarks must be [68,2], got %s'
                     % (landmarks.shape,))
  feats = {
      'image': _bytes(tf.io.encode_png(image).numpy()),
      'mask': _bytes(tf.io.encode_png(np.asarray(mask, np.uint8)[..., None])
                     .numpy()),
      'landmarks': tf.train.Feature(float_list=tf.train.FloatList(
          value=landmarks.reshape(-1).tolist())),
      'name': _bytes(name.encode('utf-8')),
      'landmark_source': _bytes(landmark_source.encode('utf-8')),
  }
  if shape is not None:
    shape = np.asarray(shape, np.float32)
    if shape.ndim != 2 or shape.shape[1] != 3 or not shape.shape[0]:
      raise ValueError('face_records.serialize: shape must be [V,3] mm, got '
                       '%s' % (shape.shape,))
    feats['shape'] = tf.train.Feature(float_list=tf.train.FloatList(
        value=shape.reshape(-1).tolist()))
  return tf.train.Example(features=tf.train.Features(feature=feats)
                         ).SerializeToString()


_SPEC = {
    'image': tf.io.FixedLenFeature([], tf.string),
    'mask': tf.io.FixedLenFeature([], tf.string),
    'landmarks': tf.io.FixedLenFeature([136], tf.float32),
    'name': tf.io.FixedLenFeature([], tf.string, default_value=''),
}


_SHAPE_SPEC = {'shape': tf.io.VarLenFeature(tf.float32)}


def record_shape_size(record):
  """Number of 'shape' values (3V) of one serialized record; 0 without."""
  ex = tf.io.parse_single_example(record, _SHAPE_SPEC)
  return int(tf.size(ex['shape'].values))


_SOURCE_SPEC = {
    'landmark_source': tf.io.FixedLenFeature(
        [], tf.string, default_value=LEGACY_SOURCE),
}


def record_source(record):
  """The landmark source (str) of one serialized record; LEGACY_SOURCE
  when it has none."""
  ex = tf.io.parse_single_example(record, _SOURCE_SPEC)
  return ex['landmark_source'].numpy().decode('utf-8')


def landmark_source(data):
  """The landmark source of the dataset `data` (folder, file or glob).

  Reads the first record of every shard (shards that cannot be read are
  left to the training loop's bad-record handling); a dataset whose records
  carry no source (written before the feature existed) is LEGACY_SOURCE.

  Raises:
    FileNotFoundError: no TFRecord files (list_files).
    ValueError: shards of different sources, or an unknown source.
  """
  found = {}
  for path, first in first_records(data):
    try:
      source = record_source(first)
    except tf.errors.OpError:  # not an Example: left to the loop too
      continue
    found.setdefault(source, path)
  if not found:
    return LEGACY_SOURCE
  unknown = [s for s in found if s not in SOURCES]
  if unknown:
    raise ValueError('--data: %s has landmark source %r, expected one of %s' %
                     (found[unknown[0]], unknown[0], ', '.join(SOURCES)))
  if len(found) > 1:
    raise ValueError(
        '--data: shards of different landmark sources (%s); the landmark '
        'loss needs one jaw convention: prepare them with one --landmarks' %
        ', '.join('%s in %s' % (s, p) for s, p in sorted(found.items())))
  return next(iter(found))


def first_records(data):
  """(shard path, its first serialized record) of every shard of `data`
  (folder, file or glob) that has a readable one; empty and unreadable
  shards are left to the training loop's bad-record handling."""
  for path in list_files(data):
    try:
      first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError:
      continue
    if first is not None:
      yield path, first


def list_files(data):
  """TFRecord files from a folder, a file or a glob; raises if none."""
  if tf.io.gfile.isdir(data):
    files = tf.io.gfile.glob(os.path.join(data, '*.tfrecord*'))
  else:
    files = tf.io.gfile.glob(data)
  if not files:
    raise FileNotFoundError('--data: no TFRecord files at %r (write them with '
                            '`python preprocess/prepare_data.py`)' % (data,))
  return sorted(files)


def decode(record, image_size, with_shape=False):
  """One serialized Example -> (image [S,S,3] float32 in [0,1], landmarks
  [68,2] pixels, skin mask [S,S,1] float32), resized to image_size; with
  with_shape, a fourth element: the 'shape' feature as [V,3] float32 mm
  (a record without one fails the map with InvalidArgumentError: check the
  data first with record_shape_size)."""
  spec = dict(_SPEC, **_SHAPE_SPEC) if with_shape else _SPEC
  ex = tf.io.parse_single_example(record, spec)
  image = tf.io.decode_png(ex['image'], channels=3)
  mask = tf.io.decode_png(ex['mask'], channels=1)
  size = tf.cast(tf.shape(image)[1], tf.float32)
  image = tf.image.resize(tf.cast(image, tf.float32) / 255.0,
                          [image_size, image_size], antialias=True)
  mask = tf.cast(
      tf.image.resize(tf.cast(mask, tf.float32) / 255.0,
                      [image_size, image_size]) > 0.5, tf.float32)
  landmarks = tf.reshape(ex['landmarks'], [68, 2]) * (image_size / size)
  image.set_shape([image_size, image_size, 3])
  mask.set_shape([image_size, image_size, 1])
  image = tf.clip_by_value(image, 0.0, 1.0)
  if not with_shape:
    return image, landmarks, mask
  values = ex['shape'].values
  tf.debugging.assert_positive(tf.size(values), message=(
      'face_records.decode: a record has no \'shape\' feature'))
  return image, landmarks, mask, tf.reshape(values, [-1, 3])


def dataset(data, image_size, batch_size, seed=0, shuffle=True, repeat=True):
  """Batches (images, landmarks, skin masks) with parallel decode/prefetch."""
  files = list_files(data)
  ds = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
  if shuffle:
    ds = ds.shuffle(2048, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  ds = ds.map(lambda r: decode(r, image_size),
              num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
