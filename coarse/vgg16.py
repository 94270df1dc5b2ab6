"""Keras VGG-16 backbone (13 convolutions + fc6/fc7) and its weight loaders.

Layer names follow keras.applications.VGG16 (block1_conv1 ... block5_conv3,
fc1 = fc6, fc2 = fc7), so ImageNet weights saved by Keras load by name. The
1000-way classifier is not built. Input: float32 RGB images in [0, 1].

Two backbones, chosen by the weights file (`weights_backbone`):
  'imagenet' (a Keras .h5, e.g. keras.applications' ImageNet VGG-16, and the
    default without weights): Keras' "caffe" input (x 255, RGB -> BGR,
    ImageNet BGR mean subtracted, as keras.applications.vgg16.
    preprocess_input) and fc7 after its ReLU (the Keras model's output).
  'vgg_face' (a MatConvNet .mat, Chen20's resources/vgg-face.mat from
    ZZUTK/Tensorflow-VGG-face): Chen20's vggface.py input (x 255, RGB, the
    file's meta.normalization.averageImage subtracted) and fc7 BEFORE its
    ReLU (Chen20 reads layers['fc7'], the fc7 layer's output; relu7 is a
    layer of its own), for the coefficient heads and the identity loss.

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
# VGG-Face's average image (RGB), used when a .mat file gives none.
VGG_FACE_MEAN_RGB = (129.1863, 104.7624, 93.5940)
BACKBONES = ('imagenet', 'vgg_face')
WEIGHT_LAYERS = tuple('block%d_conv%d' % (b + 1, c + 1)
                      for b, (n, _) in enumerate(BLOCKS)
                      for c in range(n)) + ('fc1', 'fc2')
# MatConvNet (VGG-Face .mat) names of WEIGHT_LAYERS, in the same order.
MAT_LAYERS = tuple('conv%d_%d' % (b + 1, c + 1)
                   for b, (n, _) in enumerate(BLOCKS)
                   for c in range(n)) + ('fc6', 'fc7')


def _check_backbone(backbone):
  if backbone not in BACKBONES:
    raise ValueError('vgg16: backbone must be one of %s, got %r' %
                     (BACKBONES, backbone))


def preprocess(images, backbone='imagenet', mean_rgb=None):
  """[B,H,W,3] RGB in [0,1] -> the backbone's VGG input ([0,255] units).

  Args:
    images: [B,H,W,3] float32 RGB in [0,1].
    backbone: 'imagenet' = Keras caffe style (BGR, ImageNet BGR mean
      subtracted); 'vgg_face' = RGB minus the VGG-Face average image.
    mean_rgb: 'vgg_face' only: 3 RGB means in [0,255] (default
      VGG_FACE_MEAN_RGB).
  Returns: [B,H,W,3] float32.
  """
  _check_backbone(backbone)
  images = tf.convert_to_tensor(images, tf.float32) * 255.0
  if backbone == 'vgg_face':
    mean = VGG_FACE_MEAN_RGB if mean_rgb is None else tuple(mean_rgb)
    return images - tf.constant(mean, tf.float32)
  return images[..., ::-1] - tf.constant(BGR_MEAN, tf.float32)


def build(input_size=224, width=1.0, name='vgg16', fc7_relu=True):
  """VGG-16 feature extractor returning fc7 ([B, 4096 * width]).

  Args:
    input_size: python int, side of the square input; >= 32 (five 2x2 pools).
    width: python float > 0, channel multiplier (1.0 = standard).
    name: Keras model name.
    fc7_relu: True = fc7 after its ReLU ('imagenet'); False = before it
      (Chen20's VGG-Face features, 'vgg_face').

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
  x = keras.layers.Dense(fc, activation='relu' if fc7_relu else None,
                         name='fc2')(x)
  return keras.Model(inputs, x, name=name)


def weights_backbone(path):
  """(backbone, mean_rgb) a weights file implies (module docstring).

  A MatConvNet .mat (VGG-Face, as Chen20's resources/vgg-face.mat) ->
  ('vgg_face', its meta.normalization.averageImage averaged to 3 RGB values
  in [0,255], or VGG_FACE_MEAN_RGB when it has none). Anything else (a
  Keras .h5) or None (no weights) -> ('imagenet', None).
  """
  if not path or not str(path).lower().endswith('.mat'):
    return 'imagenet', None
  data = _load_mat(path)
  try:
    mean = np.asarray(data['meta'].normalization.averageImage,
                      np.float64).reshape(-1, 3).mean(0)
  except (KeyError, AttributeError, ValueError):
    return 'vgg_face', tuple(VGG_FACE_MEAN_RGB)
  return 'vgg_face', tuple(float(v) for v in mean)


def _load_mat(path):
  """scipy.io.loadmat of a MatConvNet file (structs as attributes)."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError('--vgg_weights: no file at %r' % (path,))
  import scipy.io  # pylint: disable=g-import-not-at-top
  try:
    return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
  except (ValueError, TypeError, OSError, NotImplementedError) as e:
    raise ValueError('--vgg_weights: %r is not a readable MatConvNet .mat '
                     'file: %s' % (path, e)) from e


def _collect_mat_weights(path):
  """{Keras layer name: ([kernel], [bias])} of a MatConvNet VGG-Face .mat
  (simplenn layout: layers{i}.name, .type, .weights = {kernel, bias})."""
  data = _load_mat(path)
  if 'layers' not in data:
    raise ValueError('--vgg_weights: %r has no "layers" (need MatConvNet '
                     "VGG-Face, e.g. Chen20's resources/vgg-face.mat)" %
                     (path,))
  by_name = {}
  for layer in np.atleast_1d(data['layers']):
    name = str(getattr(layer, 'name', ''))
    weights = getattr(layer, 'weights', None)
    if name in MAT_LAYERS and weights is not None and len(weights) == 2:
      by_name[name] = (np.asarray(weights[0], np.float32),
                       np.asarray(weights[1], np.float32).reshape(-1))
  return {keras_name: ([by_name[mat][0]], [by_name[mat][1]])
          for mat, keras_name in zip(MAT_LAYERS, WEIGHT_LAYERS)
          if mat in by_name}


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
  """Loads VGG-16 weights into a `build()` model by layer name.

  Accepts Keras 2 full-model/weights .h5 files (layer/layer/kernel:0),
  Keras 3 .weights.h5 files (layers/<name>/vars/0) and MatConvNet VGG-Face
  .mat files (conv1_1 ... conv5_3, fc6, fc7; fc6's 7x7 kernel is flattened
  in (row, column, channel) order, as Chen20's vggface.py does); extra
  layers (e.g. the 1000-way "predictions", fc8) are ignored. The
  preprocessing the weights need: `weights_backbone`.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: not a readable HDF5 file, a layer missing, or a shape that
      does not match (e.g. --vgg_width != 1 or an input size other than 224
      for the fc6 layer). The message names the file and the layer.
  """
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError('--vgg_weights: no file at %r' % (path,))
  if str(path).lower().endswith('.mat'):
    weights = _collect_mat_weights(path)
  else:
    try:
      weights = _collect_h5_weights(path)
    except (OSError, IOError) as e:
      raise ValueError('--vgg_weights: %r is not a readable HDF5 (.h5) file: '
                       '%s' % (path, e)) from e
  for layer_name in WEIGHT_LAYERS:
    layer = vgg.get_layer(layer_name)
    if layer_name not in weights:
      raise ValueError('--vgg_weights: %r has no weights for layer %r (need a '
                       'Keras VGG-16 .h5 with layers %s)' %
                       (path, layer_name, ', '.join(WEIGHT_LAYERS)))
    kernels, biases = weights[layer_name]
    want_k, want_b = [tuple(v.shape) for v in layer.weights]
    if (len(kernels) == 1 and tuple(kernels[0].shape) != want_k and
        kernels[0].size == int(np.prod(want_k)) and
        str(path).lower().endswith('.mat')):
      # MatConvNet fc layers are [kh, kw, in, out] convolutions (and loadmat
      # squeezes singleton dimensions): same element order as Keras'.
      kernels = [np.reshape(kernels[0], want_k)]
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
