"""The coarse regressor: VGG-16 + bias-free heads -> coefficient vector [B, D].

Heads as Chen20 (cyj907/unsupervised-detail-layer face_model.py,
CoarseModel.encoder3DMM): dense layers on fc7 without bias; identity and
texture heads initialised from a truncated normal with stddev 0.002,
expression, pose and lighting heads initialised to zero (so the first
prediction is the mean face, frontal, under Chen20's ambient lighting offset,
which renderer/shading.py adds). Images are resized to `input_size` first
(Chen20 resizes to 224). The backbone's preprocessing and fc7 read-out
('imagenet' or Chen20's 'vgg_face', coarse/vgg16.py) are part of the
network's config: a checkpoint is always read back with the ones it was
trained with.
"""

import json
import os

import tensorflow as tf
import keras

from coarse import coefficients as coefficients_lib
from coarse import vgg16

CONFIG_FILE = 'coarse_config.json'


class CoarseModel(keras.Model):
  """images [B,H,W,3] float32 RGB in [0,1] -> coefficients [B, D] float32."""

  def __init__(self, face_model, input_size=224, width=1.0,
               backbone='imagenet', mean_rgb=None, **kwargs):
    """Args: face_model (bfm.MorphableModel); input_size, width (VGG-16);
    backbone: 'imagenet' or 'vgg_face' (coarse/vgg16.py; the weights file's
    kind, vgg16.weights_backbone); mean_rgb: 'vgg_face' only, 3 RGB means in
    [0,255] (default vgg16.VGG_FACE_MEAN_RGB)."""
    super().__init__(**kwargs)
    if backbone not in vgg16.BACKBONES:
      raise ValueError('CoarseModel: backbone must be one of %s, got %r' %
                       (vgg16.BACKBONES, backbone))
    self.input_size = int(input_size)
    self.width = float(width)
    self.backbone_kind = backbone
    self.mean_rgb = None
    if backbone == 'vgg_face':
      self.mean_rgb = tuple(float(v) for v in (
          vgg16.VGG_FACE_MEAN_RGB if mean_rgb is None else mean_rgb))
    self.sizes = coefficients_lib.sizes(face_model)
    self.face_model = getattr(face_model, 'name', None)
    self.backbone = vgg16.build(self.input_size, self.width, name='vgg16',
                                fc7_relu=backbone == 'imagenet')
    small = keras.initializers.TruncatedNormal(stddev=0.002)
    zeros = keras.initializers.Zeros()
    init = {'identity': small, 'texture': small, 'expression': zeros,
            'pose': zeros, 'lighting': zeros}
    self.heads = [
        keras.layers.Dense(max(k, 1) if k else 1, use_bias=False,
                           kernel_initializer=init[name], name='head_' + name)
        for name, k in self.sizes.items()
    ]
    # tf.train.Checkpoint does not see the items of a Keras 3 layer's Python
    # list, only its attribute sub-layers: without these the heads were
    # missing from every checkpoint (resume and coarse_model.load).
    for name, head in zip(self.sizes, self.heads):
      setattr(self, 'head_' + name, head)

  def config(self):
    """What a checkpoint of this network depends on (coarse_config.json)."""
    return {'input_size': self.input_size, 'width': self.width,
            'face_model': self.face_model, 'coefficients': dict(self.sizes),
            'backbone': self.backbone_kind,
            'backbone_mean_rgb': (list(self.mean_rgb) if self.mean_rgb
                                  else None)}

  def features(self, images):
    """fc7 features [B, F] of images [B,H,W,3] in [0,1]."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
      raise ValueError('CoarseModel: images must be [B,H,W,3], got %s' %
                       images.shape)
    if images.shape[1] != self.input_size or images.shape[2] != self.input_size:
      images = tf.image.resize(images, [self.input_size, self.input_size])
    return self.backbone(
        vgg16.preprocess(images, self.backbone_kind, self.mean_rgb))

  def call(self, images, training=False):
    z = self.features(images)
    outs = []
    for (name, k), head in zip(self.sizes.items(), self.heads):
      out = head(z)
      outs.append(out[:, :k])  # models without texture: width-0 slice
    return tf.concat(outs, axis=1)

  def coefficients(self, images, training=False):
    """coarse.coefficients.Coefficients for images [B,H,W,3]."""
    return coefficients_lib.Coefficients(*tf.split(
        self(images, training=training), list(self.sizes.values()), axis=1))


def read_config(path):
  """The coarse_config.json beside a checkpoint (file or folder), or {}."""
  folder = path if tf.io.gfile.isdir(path) else os.path.dirname(path)
  cfg_path = os.path.join(folder, CONFIG_FILE)
  if not tf.io.gfile.exists(cfg_path):
    return {}
  with tf.io.gfile.GFile(cfg_path) as f:
    return json.load(f)


def save_config(net, folder):
  tf.io.gfile.makedirs(folder)
  with tf.io.gfile.GFile(os.path.join(folder, CONFIG_FILE), 'w') as f:
    json.dump(net.config(), f)


def load(path, face_model, input_size=None, width=None):
  """A CoarseModel restored from a coarse/train.py checkpoint (file or folder).

  The network's input size and width come from coarse_config.json next to
  the checkpoint (written by coarse/train.py) unless given.

  Raises:
    FileNotFoundError: no checkpoint at `path`.
    ValueError: the checkpoint or its coarse_config.json does not fit
      `face_model` or the network (one line naming the file and the cause).
  """
  looked = path
  if tf.io.gfile.isdir(path):
    path = tf.train.latest_checkpoint(path)
  if path is None or not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError('coarse checkpoint: nothing at %r (need the output '
                            'of `python coarse/train.py`)' % (looked,))
  # Configs written before the backbone option: ImageNet preprocessing.
  cfg = {'input_size': 224, 'width': 1.0, 'backbone': 'imagenet',
         'backbone_mean_rgb': None}
  cfg_path = os.path.join(os.path.dirname(path), CONFIG_FILE)
  if tf.io.gfile.exists(cfg_path):
    with tf.io.gfile.GFile(cfg_path) as f:
      cfg.update(json.load(f))
  if input_size is not None:
    cfg['input_size'] = input_size
  if width is not None:
    cfg['width'] = width
  name = getattr(face_model, 'name', None)
  if cfg.get('face_model') and name and cfg['face_model'] != name:
    raise ValueError('%s: the coarse checkpoint was trained with face model '
                     '%r, not %r (pass --bfm=%s)' %
                     (cfg_path, cfg['face_model'], name, cfg['face_model']))
  net = CoarseModel(face_model, cfg['input_size'], cfg['width'],
                    backbone=cfg['backbone'],
                    mean_rgb=cfg['backbone_mean_rgb'])
  if cfg.get('coefficients') and cfg['coefficients'] != dict(net.sizes):
    raise ValueError('%s: the coarse checkpoint predicts coefficients %s, the '
                     'face model %r has %s (pass the --bfm it was trained '
                     'with)' % (cfg_path, cfg['coefficients'], name,
                                dict(net.sizes)))
  net(tf.zeros([1, cfg['input_size'], cfg['input_size'], 3]))
  try:
    tf.train.Checkpoint(network=net).restore(path).expect_partial()
  except (ValueError, tf.errors.OpError) as e:
    raise ValueError('%s: does not hold the network %s describes (%s)' % (
        path, cfg_path if tf.io.gfile.exists(cfg_path) else 'the defaults',
        str(e).strip().splitlines()[0][:200])) from e
  return net
