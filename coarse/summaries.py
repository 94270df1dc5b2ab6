"""TensorBoard summaries that do not need the `tensorboard` package.

tf.summary.scalar / tf.summary.image live in the tensorboard pip package, which
this project does not depend on. These write the same records (same plugin
metadata) with the core op tf.summary.write, so TensorBoard shows them as
scalars and images when it is installed to view the logs.
"""

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

_DATA_CLASS_SCALAR = 1
_DATA_CLASS_BLOB_SEQUENCE = 3


def _metadata(plugin, data_class):
  meta = summary_pb2.SummaryMetadata()
  meta.plugin_data.plugin_name = plugin
  meta.data_class = data_class
  return meta.SerializeToString()


def scalar(name, value, step):
  """Writes a float32 scalar to the default summary writer."""
  return tf.summary.write(name,
                          tf.cast(tf.reshape(value, []), tf.float32),
                          step=step,
                          metadata=_metadata('scalars', _DATA_CLASS_SCALAR))


def image(name, images, step, max_outputs=3):
  """Writes [B,H,W,C] float images in [0,1] (C = 1 or 3) as PNGs."""
  images = tf.convert_to_tensor(images)[:max_outputs]
  if images.shape[-1] == 1:
    images = tf.tile(images, [1, 1, 1, 3])
  encoded = tf.map_fn(lambda im: tf.io.encode_png(
      tf.image.convert_image_dtype(
          tf.clip_by_value(im, 0.0, 1.0), tf.uint8, saturate=True)),
                      images,
                      fn_output_signature=tf.string)
  shape = tf.shape(images)
  dims = tf.stack([tf.as_string(shape[2]), tf.as_string(shape[1])])
  return tf.summary.write(name,
                          tf.concat([dims, encoded], 0),
                          step=step,
                          metadata=_metadata('images',
                                             _DATA_CLASS_BLOB_SEQUENCE))
