"""Keras VGG-16 backbone (13 convolutions + fc6/fc7) and its .h5 weight loader.

Layer names follow keras.applications.VGG16 (block1_conv1 ... block5_conv3,
fc1 = fc6, fc2 = fc7), so ImageNet weights saved by Keras load by name. The
1000-way classifier is not built. Input: float32 RGB images in [0, 1]; they
are converted to Keras' "caffe" VGG input (x 255, RGB -> BGR, ImageNet mean
subtracted), as keras.applications.vgg16.preprocess_input does.

`width` scales every channel count (64..512) and the fc size (4096); 1.0 is
the standard network. Smaller widths exist only for fast tests and CPU demos.
"""

import h5py
import numpy as np
import tensorflow as tf
import keras

# (number of 3x3 convolutions, channels) per block.
BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
FC_SIZE = 4096
# ImageNet BGR mean of keras.applications' caffe preprocessing.
BGR_MEAN = (103.939, 116.779, 123.68)
WEIGHT_LAYERS = tuple('block%d_conv%d' % (b + 1, c + 1)
                      for b, (n, _) in enumerate(BLOCKS)
                      for c in range(n)) + ('fc1', 'fc2')


def preprocess(images):
  """[B,H,W,3] RGB in [0,1] -> Keras caffe-style VGG input (BGR, mean 0)."""
  images = tf.convert_to_tensor(images, tf.float32) * 255.0
  return images[..., ::-1] - tf.constant(BGR_MEAN, tf.float32)


def build(input_size=224, width=1.0, name='vgg16'):
  """VGG-16 feature extractor returning fc7 ([B, 4096 * width], after ReLU).

  Args:
    input_size: python int, side of the square input; >= 32 (five 2x2 pools).
    width: python float > 0, channel multiplier (1.0 = standard).
    name: Keras model name.

  Returns:
    keras.Model mapping preprocessed images [B, S, S, 3] (see `preprocess`)
    to fc7 features [B, F] float32.
  """
  if int(input_size) < 32:
    raise ValueError('vgg16.build: input_size must be >= 32, got %r' %
                     (input_size,))
  if not width > 0:
    raise ValueError('vgg16.build: width must be > 0, got %r' % (width,))
  inputs = keras.Input([input_size, input_size, 3], name=name + '_input')
  x = inputs
  for b, (n, channels) in enumerate(BLOCKS):
    ch = max(1, int(round(channels * width)))
    for c in range(n):
      x = keras.layers.Conv2D(ch, 3, padding='same', activation='relu',
                              name='block%d_conv%d' % (b + 1, c + 1))(x)
    x = keras.layers.MaxPooling2D(2, 2, name='block%d_pool' % (b + 1))(x)
  x = keras.layers.Flatten(name='flatten')(x)
  fc = max(1, int(round(FC_SIZE * width)))
  x = keras.layers.Dense(fc, activation='relu', name='fc1')(x)
  x = keras.layers.Dense(fc, activation='relu', name='fc2')(x)
  return keras.Model(inputs, x, name=name)


def _collect_h5_weights(path):
  """{layer name: [arrays in file order]} for every WEIGHT_LAYERS name."""
  found = {}
  wanted = set(WEIGHT_LAYERS)

  def layer_of(f, item_name):
    """The VGG layer a dataset belongs to, by path or by a group's name.

    Keras 2 files name the groups after the layers (fc1/fc1/kernel:0);
    Keras 3 .weights.h5 files use class-based paths (layers/dense/vars/0)
    and keep the layer name in the 'name' attribute of the vars group.
    """
    parts = item_name.split('/')
    for part in parts:
      if part in wanted:
        return part
    for i in range(len(parts) - 1, 0, -1):
      name = f['/'.join(parts[:i])].attrs.get('name')
      if isinstance(name, bytes):
        name = name.decode('utf-8', 'replace')
      if name in wanted:
        return name
    return None

  with h5py.File(path, 'r') as f:
    items = []
    f.visititems(lambda n, o: items.append(n) if isinstance(o, h5py.Dataset)
                 else None)
    for item_name in items:
      layer = layer_of(f, item_name)
      if layer is not None:
        found.setdefault(layer, []).append((item_name,
                                            np.asarray(f[item_name])))
  out = {}
  for layer, items in found.items():
    kernels = [a for _, a in items if a.ndim >= 2]
    biases = [a for _, a in items if a.ndim == 1]
    out[layer] = (kernels, biases)
  return out


def load_weights(vgg, path):
  """Loads Keras .h5 VGG-16 weights into a `build()` model by layer name.

  Accepts Keras 2 full-model/weights .h5 files (layer/layer/kernel:0) and
  Keras 3 .weights.h5 files (layers/<name>/vars/0); extra layers (e.g. the
  1000-way "predictions") are ignored.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: not a readable HDF5 file, a layer missing, or a shape that
      does not match (e.g. --vgg_width != 1 or an input size other than 224
      for the fc6 layer). The message names the file and the layer.
  """
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError('--vgg_weights: no file at %r' % (path,))
  try:
    weights = _collect_h5_weights(path)
  except (OSError, IOError) as e:
    raise ValueError('--vgg_weights: %r is not a readable HDF5 (.h5) file: %s'
                     % (path, e)) from e
  for layer_name in WEIGHT_LAYERS:
    layer = vgg.get_layer(layer_name)
    if layer_name not in weights:
      raise ValueError('--vgg_weights: %r has no weights for layer %r (need a '
                       'Keras VGG-16 .h5 with layers %s)' %
                       (path, layer_name, ', '.join(WEIGHT_LAYERS)))
    kernels, biases = weights[layer_name]
    want_k, want_b = [tuple(v.shape) for v in layer.weights]
    if len(kernels) != 1 or len(biases) != 1:
      raise ValueError('--vgg_weights: %r layer %r holds %d kernels and %d '
                       'biases, expected one of each' %
                       (path, layer_name, len(kernels), len(biases)))
    if tuple(kernels[0].shape) != want_k or tuple(biases[0].shape) != want_b:
      raise ValueError(
          '--vgg_weights: %r layer %r has shapes %s/%s but the network needs '
          '%s/%s (standard VGG-16 needs --vgg_width=1 and a 224-px VGG input)'
          % (path, layer_name, kernels[0].shape, biases[0].shape, want_k,
             want_b))
    layer.set_weights([kernels[0], biases[0]])
