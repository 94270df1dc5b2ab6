"""VGG-16 backbone, its .h5 loader and the coarse regressor (small widths)."""

import os
import tempfile

import h5py
import numpy as np
import scipy.io
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


def _save_matconvnet_vgg_face(path, input_size, width, mean_rgb, seed=0):
  """Writes a tiny VGG-Face in MatConvNet's simplenn .mat layout (as Chen20's
  resources/vgg-face.mat): layers{i}.name/.type/.weights = {kernel
  [kh,kw,in,out], bias [out,1]}, fc6-fc8 as convolutions, relu and pool
  layers between, meta.normalization.averageImage [1,1,3]. Returns the
  {name: (kernel, bias)} written."""
  rng = np.random.RandomState(seed)
  layers, written = [], {}
  channels_in = 3
  for b, (n, channels) in enumerate(vgg16.BLOCKS):
    ch = max(1, int(round(channels * width)))
    for c in range(n):
      name = 'conv%d_%d' % (b + 1, c + 1)
      kernel = rng.normal(0, 0.2, [3, 3, channels_in, ch]).astype(np.float32)
      bias = rng.normal(0, 0.1, [ch, 1]).astype(np.float32)
      layers.append({'name': name, 'type': 'conv', 'weights': [kernel, bias]})
      layers.append({'name': 'relu%d_%d' % (b + 1, c + 1), 'type': 'relu'})
      written[name] = (kernel, bias)
      channels_in = ch
    layers.append({'name': 'pool%d' % (b + 1), 'type': 'pool'})
  side = input_size // 32
  fc = max(1, int(round(vgg16.FC_SIZE * width)))
  for name, shape in (('fc6', [side, side, channels_in, fc]),
                      ('fc7', [1, 1, fc, fc]), ('fc8', [1, 1, fc, 5])):
    kernel = rng.normal(0, 0.05, shape).astype(np.float32)
    bias = rng.normal(0, 0.5, [shape[-1], 1]).astype(np.float32)
    layers.append({'name': name, 'type': 'conv', 'weights': [kernel, bias]})
    layers.append({'name': 'relu' + name[2:], 'type': 'relu'})
    written[name] = (kernel, bias)
  cells = np.empty([1, len(layers)], object)
  for i, layer in enumerate(layers):
    if 'weights' in layer:
      w = np.empty([1, 2], object)
      w[0, 0], w[0, 1] = layer['weights']
      layer = dict(layer, weights=w)
    cells[0, i] = layer
  scipy.io.savemat(path, {
      'layers': cells,
      'meta': {'normalization': {
          'averageImage': np.asarray(mean_rgb, np.float32).reshape(1, 1, 3),
          'imageSize': np.array([input_size, input_size, 3], np.float64)}}})
  return written


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


  def test_vgg_face_mat_is_read_as_chen20_reads_it(self):
    """A MatConvNet VGG-Face file: weights by layer, the file's average
    image subtracted from RGB, fc7 before its ReLU; fc6 applied to the
    2x2 pool5 map as the convolution MatConvNet defines."""
    folder = _fresh_dir(self)
    path = os.path.join(folder, 'vgg-face.mat')
    size = 64  # pool5 is 2x2: the fc6 kernel's layout matters
    written = _save_matconvnet_vgg_face(path, size, WIDTH, (130., 100., 90.))
    self.assertEqual(vgg16.weights_backbone(path),
                     ('vgg_face', (130.0, 100.0, 90.0)))
    self.assertEqual(vgg16.weights_backbone(os.path.join(folder, 'x.h5')),
                     ('imagenet', None))
    self.assertEqual(vgg16.weights_backbone(None), ('imagenet', None))
    red = np.zeros([1, 1, 1, 3], np.float32)
    red[..., 0] = 1.0
    self.assertAllClose(
        vgg16.preprocess(red, 'vgg_face', (130., 100., 90.))[0, 0, 0],
        [125.0, -100.0, -90.0])
    vgg = vgg16.build(size, WIDTH, fc7_relu=False)
    vgg16.load_weights(vgg, path)
    for keras_name, mat_name in zip(vgg16.WEIGHT_LAYERS[:13],
                                    vgg16.MAT_LAYERS[:13]):
      kernel, bias = vgg.get_layer(keras_name).get_weights()
      self.assertAllEqual(kernel, written[mat_name][0])
      self.assertAllEqual(bias, written[mat_name][1][:, 0])
    x = tf.random.uniform([2, size, size, 3], seed=3)
    inputs = vgg16.preprocess(x, 'vgg_face', (130., 100., 90.))
    pool5 = tf.keras.Model(vgg.input, vgg.get_layer('block5_pool').output)(
        inputs)
    k6, b6 = written['fc6']
    fc6 = tf.nn.relu(tf.nn.conv2d(pool5, k6, 1, 'VALID')[:, 0, 0] + b6[:, 0])
    k7, b7 = written['fc7']
    fc7 = tf.matmul(fc6, k7[0, 0]) + b7[:, 0]  # Chen20: layers['fc7'], no ReLU
    features = vgg(inputs)
    self.assertAllClose(features, fc7, rtol=1e-4, atol=1e-3)
    self.assertLess(float(tf.reduce_min(features)), 0.0)
    # The ImageNet read-out of the same weights is fc7 after its ReLU.
    relu = vgg16.build(size, WIDTH, fc7_relu=True)
    vgg16.load_weights(relu, path)
    self.assertAllClose(relu(inputs), tf.nn.relu(fc7), rtol=1e-4, atol=1e-3)

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


  def test_backbone_is_part_of_the_checkpoint_config(self):
    model = bfm.load('synthetic')
    folder = _fresh_dir(self)
    net = coarse_model.CoarseModel(model, SIZE, WIDTH, backbone='vgg_face',
                                   mean_rgb=(130., 100., 90.))
    images = tf.random.uniform([1, SIZE, SIZE, 3], seed=2)
    want = net(images)
    coarse_model.save_config(net, folder)
    tf.train.Checkpoint(network=net).save(os.path.join(folder, 'ckpt'))
    loaded = coarse_model.load(folder, model)
    self.assertEqual(loaded.backbone_kind, 'vgg_face')
    self.assertEqual(loaded.mean_rgb, (130.0, 100.0, 90.0))
    self.assertAllClose(loaded(images), want, atol=1e-5)
    # The same weights read with ImageNet preprocessing predict otherwise.
    other = coarse_model.CoarseModel(model, SIZE, WIDTH)
    other(images)
    tf.train.Checkpoint(network=other).restore(
        tf.train.latest_checkpoint(folder)).expect_partial()
    self.assertNotAllClose(other(images), want)
    with self.assertRaisesRegex(ValueError, 'backbone'):
      coarse_model.CoarseModel(model, SIZE, WIDTH, backbone='resnet')

  def test_training_script_picks_the_backbone_from_the_files(self):
    from coarse import train as coarse_train  # pylint: disable=g-import-not-at-top
    folder = _fresh_dir(self)
    mat = os.path.join(folder, 'vgg-face.mat')
    _save_matconvnet_vgg_face(mat, SIZE, WIDTH, (120., 110., 100.))
    self.assertEqual(coarse_train.backbone_settings(mat, None),
                     ('vgg_face', (120.0, 110.0, 100.0)))
    self.assertEqual(coarse_train.backbone_settings('vgg16.h5', None),
                     ('imagenet', None))
    self.assertEqual(coarse_train.backbone_settings(None, None),
                     ('imagenet', None))
    # An --init_checkpoint keeps the preprocessing it was trained with.
    model = bfm.load('synthetic')
    net = coarse_model.CoarseModel(model, SIZE, WIDTH, backbone='vgg_face')
    run = os.path.join(folder, 'run')
    coarse_model.save_config(net, run)
    backbone, mean = coarse_train.backbone_settings(None, run)
    self.assertEqual(backbone, 'vgg_face')
    self.assertAllClose(mean, vgg16.VGG_FACE_MEAN_RGB)
    old = os.path.join(folder, 'old')  # a config from before the option
    os.makedirs(old)
    with open(os.path.join(old, coarse_model.CONFIG_FILE), 'w') as f:
      f.write('{"input_size": 32, "width": 0.0625}')
    self.assertEqual(coarse_train.backbone_settings(mat, old),
                     ('imagenet', None))

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
