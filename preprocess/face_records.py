"""TFRecord format of prepared face crops and the tf.data pipeline reading it.

One tf.train.Example per face (written by preprocess/prepare_data.py):
  'image'     bytes  PNG, square RGB crop (uint8)
  'mask'      bytes  PNG, single-channel skin mask (0 / 255), same size
  'landmarks' float  136 values, 68 x (x, y) pixels in crop coordinates
                     (origin top-left corner, pixel centres at +0.5)
  'name'      bytes  source file name
"""

import os

import numpy as np
import tensorflow as tf


def _bytes(v):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def serialize(image, landmarks, mask, name):
  """tf.train.Example bytes for one crop.

  Args:
    image: [S,S,3] uint8 RGB. landmarks: [68,2] float pixels.
    mask: [S,S] uint8 (0 or 255). name: str.
  """
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
  }
  return tf.train.Example(features=tf.train.Features(feature=feats)
                         ).SerializeToString()


_SPEC = {
    'image': tf.io.FixedLenFeature([], tf.string),
    'mask': tf.io.FixedLenFeature([], tf.string),
    'landmarks': tf.io.FixedLenFeature([136], tf.float32),
    'name': tf.io.FixedLenFeature([], tf.string, default_value=''),
}


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


def decode(record, image_size):
  """One serialized Example -> (image [S,S,3] float32 in [0,1], landmarks
  [68,2] pixels, skin mask [S,S,1] float32), resized to image_size."""
  ex = tf.io.parse_single_example(record, _SPEC)
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
  return tf.clip_by_value(image, 0.0, 1.0), landmarks, mask


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
