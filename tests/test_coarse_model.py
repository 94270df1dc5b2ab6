"""VGG-16 backbone, its .h5 loader and the coarse regressor (small widths)."""

import os
import tempfile

import h5py
import numpy as np
import tensorflow as tf

import bfm
from coarse import coarse_model
from coarse import coefficients
from coarse import vgg16

SIZE = 32
WIDTH = 1.0 / 16


def _fresh_dir(test):
  folder = tempfile.TemporaryDirectory()
  test.addCleanup(folder.cleanup)
  return folder.name


def _save_keras2_layout(vgg, path, skip=()):
  """Writes `vgg` the way Keras 2 save_weights did: <layer>/<layer>/kernel:0."""
  with h5py.File(path, 'w') as f:
    for name in vgg16.WEIGHT_LAYERS:
      if name in skip:
        continue
      kernel, bias = vgg.get_layer(name).get_weights()
      g = f.create_group(name).create_group(name)
      g['kernel:0'] = kernel
      g['bias:0'] = bias
    # A classifier layer that the loader must ignore.
    f.create_group('predictions').create_group('predictions')['kernel:0'] = (
        np.zeros([3, 2], np.float32))


class Vgg16Test(tf.test.TestCase):

  def test_standard_layout(self):
    vgg = vgg16.build(SIZE, WIDTH)
    convs = [l for l in vgg.layers if isinstance(l, tf.keras.layers.Conv2D)]
    self.assertLen(convs, 13)
    self.assertEqual([l.filters for l in convs],
                     [4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32])
    self.assertEqual(vgg.output.shape[-1], 256)  # fc7 = 4096 / 16
    for name in vgg16.WEIGHT_LAYERS:
      vgg.get_layer(name)
    with self.assertRaisesRegex(ValueError, 'input_size must be >= 32'):
      vgg16.build(16, WIDTH)

  def test_preprocess_is_keras_caffe_style(self):
    x = np.zeros([1, 1, 1, 3], np.float32)
    x[..., 0] = 1.0  # pure red
    out = vgg16.preprocess(x).numpy()[0, 0, 0]
    self.assertAllClose(out, [-103.939, -116.779, 255.0 - 123.68], atol=1e-4)

  def test_loads_keras3_and_keras2_files(self):
    folder = _fresh_dir(self)
    tf.keras.utils.set_random_seed(0)
    source = vgg16.build(SIZE, WIDTH, name='source')
    keras3 = os.path.join(folder, 'vgg.weights.h5')
    source.save_weights(keras3)
    keras2 = os.path.join(folder, 'vgg_keras2.h5')
    _save_keras2_layout(source, keras2)
    for path in (keras3, keras2):
      tf.keras.utils.set_random_seed(1)
      target = vgg16.build(SIZE, WIDTH)
      vgg16.load_weights(target, path)
      for name in vgg16.WEIGHT_LAYERS:
        for a, b in zip(source.get_layer(name).get_weights(),
                        target.get_layer(name).get_weights()):
          self.assertAllEqual(a, b, msg='%s %s' % (path, name))

  def test_errors_name_file_and_layer(self):
    folder = _fresh_dir(self)
    vgg = vgg16.build(SIZE, WIDTH)
    missing = os.path.join(folder, 'missing_fc2.h5')
    _save_keras2_layout(vgg, missing, skip=('fc2',))
    with self.assertRaisesRegex(ValueError, "missing_fc2.h5' has no weights "
                                "for layer 'fc2'"):
      vgg16.load_weights(vgg, missing)
    wide = os.path.join(folder, 'wide.h5')
    _save_keras2_layout(vgg16.build(SIZE, 2 * WIDTH), wide)
    with self.assertRaisesRegex(ValueError,
                                "wide.h5' layer 'block1_conv1' has shapes"):
      vgg16.load_weights(vgg, wide)
    text = os.path.join(folder, 'notes.h5')
    with open(text, 'w') as f:
      f.write('not hdf5')
    with self.assertRaisesRegex(ValueError, 'notes.h5.* not a readable HDF5'):
      vgg16.load_weights(vgg, text)
    with self.assertRaisesRegex(FileNotFoundError, 'no file at'):
      vgg16.load_weights(vgg, os.path.join(folder, 'nothing.h5'))


class CoarseModelTest(tf.test.TestCase):

  def test_output_size_and_chen20_initialisation(self):
    model = bfm.load('synthetic')
    net = coarse_model.CoarseModel(model, SIZE, WIDTH)
    images = tf.random.uniform([2, 48, 48, 3], seed=0)  # resized to 32
    vec = net(images)
    self.assertEqual(vec.shape, (2, coefficients.vector_size(model)))
    c = net.coefficients(images)
    # Zero-initialised heads: mean expression, frontal pose at scale 1,
    # no light beyond renderer/shading.py's ambient offset.
    self.assertAllEqual(c.expression, np.zeros_like(c.expression))
    self.assertAllEqual(c.pose, np.zeros_like(c.pose))
    self.assertAllEqual(c.lighting, np.zeros_like(c.lighting))
    self.assertGreater(float(tf.reduce_max(tf.abs(c.identity))), 0.0)
    for head in net.heads:
      self.assertEmpty(head.bias if head.use_bias else [])
    with self.assertRaisesRegex(ValueError, r'\[B,H,W,3\]'):
      net(tf.zeros([2, 32, 32]))

  def test_load_needs_a_checkpoint(self):
    model = bfm.load('synthetic')
    folder = _fresh_dir(self)
    with self.assertRaisesRegex(FileNotFoundError, 'coarse checkpoint: '
                                'nothing at'):
      coarse_model.load(folder, model)
    net = coarse_model.CoarseModel(model, SIZE, WIDTH)
    images = tf.random.uniform([1, SIZE, SIZE, 3], seed=1)
    want = net(images)
    coarse_model.save_config(net, folder)
    tf.train.Checkpoint(network=net).save(os.path.join(folder, 'ckpt'))
    loaded = coarse_model.load(folder, model)
    self.assertEqual(loaded.input_size, SIZE)
    self.assertAllClose(loaded(images), want, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
