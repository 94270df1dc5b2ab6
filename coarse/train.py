r"""Trains the coarse stage: VGG-16 coefficient regression with SAM.

  python coarse/train.py --sam_config=our_star   # paper "Our*" (26 poses)
  python coarse/train.py --sam_config=our        # paper "Our" (9 poses)
  python coarse/train.py --sam_config=none       # Chen20 baseline, no SAM

Paper Sec. 3.2 / appendix C: SAM training runs 250 steps at batch 6, starting
from a network trained the Chen20 way (--init_checkpoint of a
--sam_config=none run, whose --steps default is PRETRAIN_STEPS = 200,000).
Training images get Chen20's colour, flip and scale augmentation
(coarse/augmentation.py, --coarse_augment). Losses: Eq. 14-18 (coarse/losses.py). Optimiser as
Chen20 (cyj907/unsupervised-detail-layer controller.py, run_train.sh): Adam,
learning rate 1e-5 decayed by 0.98 every 2000 steps down to 1e-6, every
gradient element clipped to [-1, 1].

Data: --data = TFRecords from preprocess/prepare_data.py; without it, a fixed
synthetic set of --num_images faces rendered from the model. The landmark
loss uses the jaw convention of the data's landmark source
(`data_landmark_source`): records of prepare_data --landmarks=facemesh match
the model's fixed landmarks68 jaw vertices; records of --landmarks=dlib,
older records (which carry no source) and the synthetic set match the
sliding silhouette contour. Chen20's second landmark term (the contour with
a sliding correspondence, --coarse_contour_landmark_weight, default 0.5) is
added for those outline-following sources and left out for FaceMesh
records, whose jaw points are fixed surface points that the first term
already matches at the fixed vertices. Synthetic records that carry their
ground-truth meshes (eval/synthetic_sets.py) can add a supervised vertex
loss, --coarse_vertex_weight (not the paper; off by default).

The defaults are the paper's (224 px, standard VGG-16, batch 6, 162 VGG
images per our_star step): a GPU job. A short CPU run of the whole pipeline
(64 px, VGG at 1/8 width, our_star, 150 steps; ~8 min wall on 2 shared
cores):

  python coarse/train.py --sam_config=our_star --image_size=64 \
      --vgg_width=0.125 --num_images=120 --steps=150 --log_dir=results/coarse_quick

Checkpoints, coarse_config.json and TensorBoard logs go to --log_dir
(default results/coarse); rerunning the same command resumes from the latest
checkpoint there. The loop itself (the step, the NaN/Inf guard, clipping,
the learning-rate decay, checkpoints and the checks that keep the folder
honest) is coarse/training_loop.py, shared with the detail stage.

Several devices: --strategy=mirrored (every local GPU; without GPUs, the
logical CPUs of --num_cpu_devices=N) or --strategy=multi_worker (TF_CONFIG);
--batch_size stays the global batch and a step takes the same update as on
one device.
"""

import os
import sys

if __package__ in (None, ''):  # run as `python coarse/train.py`
  sys.path.insert(0,
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from coarse import augmentation
from coarse import coarse_model
from coarse import face_reconstruction
from coarse import losses
from coarse import sam as sam_lib
from coarse import summaries  # core-op TensorBoard writers (no tensorboard pkg)
from coarse import training_loop
from coarse import vgg16
from flags import coarse_flags
from preprocess import face_records
from preprocess import synthetic_data

coarse_flags.define_flags()
FLAGS = flags.FLAGS

NAME = 'coarse/train.py'

# The stage's defaults of the shared training-loop flags: paper appendix C
# (250 SAM steps, batch 6) and Chen20 run_train.sh (decay 0.98 every 2000
# steps down to 1e-6).
DEFAULTS = training_loop.Defaults(steps=250, batch_size=6, lr_decay_steps=2000,
                                  lr_decay_rate=0.98, min_learning_rate=1e-6,
                                  log_every=10, image_every=50, save_every=50)
# --steps default of the no-SAM pre-training (--sam_config=none), the Chen20
# network SAM starts from. The paper (appendix C): "We first train the Chen
# et al. (2020) method for 20,0000 steps", read as 200,000 (Chen20's own
# run_train.sh trains its coarse model for 100,000).
PRETRAIN_STEPS = 200000


def synthetic_dataset(model, image_size, batch_size, first_example=0,
                      with_shapes=False):
  """Endless shuffled batches (images, landmarks [B,68,2], skin masks) of a
  fixed synthetic set of --num_images faces, from global example
  `first_example` of the seeded stream (training_loop.example_stream);
  with_shapes adds their ground-truth meshes [B,V,3] mm."""
  n = FLAGS.num_images
  if n < batch_size:
    raise ValueError('--num_images (%d) must be >= --batch_size (%d)' %
                     (n, batch_size))
  logging.info('No --data: rendering a synthetic set of %d faces (%d px) from '
               'the %r model', n, image_size, model.name)
  parts = list(synthetic_data.generate(model, FLAGS.seed, n, image_size,
                                       batch_size=32))
  images = np.concatenate([p.images for p in parts])
  landmarks = np.concatenate([p.landmarks for p in parts])
  masks = np.concatenate([p.skin_masks for p in parts])
  arrays = (images, landmarks, masks)
  if with_shapes:
    arrays += (np.concatenate([p.vertices for p in parts]).astype(np.float32),)
  ds = training_loop.example_stream(
      tf.data.Dataset.from_tensor_slices(arrays), n, FLAGS.seed,
      first_example, shuffle_buffer=n)
  return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def data_landmark_source(data):
  """Landmark source of the training landmarks: that of the --data
  records (preprocess/face_records.py `landmark_source`: 'dlib' for records
  without one), or the synthetic set's without --data.

  Raises:
    training_loop.UsageError: shards of different sources.
  """
  if not data:
    return synthetic_data.LANDMARK_SOURCE
  try:
    return face_records.landmark_source(data)
  except ValueError as e:  # shards of two sources: one line, no traceback
    raise training_loop.UsageError('%s: %s' % (NAME, e)) from None


def check_record_shapes(data, model):
  """Checks that the first record of every --data shard carries a
  ground-truth mesh of `model`'s vertex count (the vertex loss's target).

  Raises:
    training_loop.UsageError: naming the shard and what is wrong.
  """
  want = 3 * model.num_vertices
  for path, first in face_records.first_records(data):
    got = face_records.record_shape_size(first)
    if got != want:
      raise training_loop.UsageError(
          '%s: --coarse_vertex_weight=%g needs records with the ground-truth '
          'mesh of the %r model (%d vertices; eval/synthetic_sets.py writes '
          'them), but %s has %s' % (
              NAME, FLAGS.coarse_vertex_weight, model.name, want // 3, path,
              'none' if not got else '%d values' % got))


def build_identity_network():
  """Frozen VGG-16 for the identity loss, or None without --vgg_weights."""
  if not FLAGS.vgg_weights or FLAGS.coarse_id_weight <= 0:
    if FLAGS.coarse_id_weight > 0:
      logging.warning('No --vgg_weights: the perceptual identity loss (Eq. 17) '
                      'is OFF and the VGG-16 backbone starts from random '
                      'weights. Pass Keras VGG-16 .h5 weights to enable it.')
    return None
  kind, mean_rgb = vgg16.weights_backbone(FLAGS.vgg_weights)
  vgg = vgg16.build(224, 1.0, name='identity_vgg16',
                    fc7_relu=kind == 'imagenet')
  vgg16.load_weights(vgg, FLAGS.vgg_weights)
  vgg.trainable = False
  logging.info('Identity loss: frozen VGG-16 fc7 (%s) from %s', kind,
               FLAGS.vgg_weights)

  def features(images):
    if images.shape[1] != 224:
      images = tf.image.resize(images, [224, 224])
    return vgg(vgg16.preprocess(images, kind, mean_rgb), training=False)

  return features


def backbone_settings(vgg_weights, init_checkpoint):
  """(backbone, mean_rgb) of the coarse network (coarse/vgg16.py).

  From --init_checkpoint's coarse_config.json when one is given (the network
  keeps the preprocessing it was trained with; 'imagenet' for configs that
  predate the option), else from the --vgg_weights file: a MatConvNet .mat
  is VGG-Face (Chen20), a Keras .h5 or no file is ImageNet.
  """
  if init_checkpoint:
    cfg = coarse_model.read_config(init_checkpoint)
    return cfg.get('backbone', 'imagenet'), cfg.get('backbone_mean_rgb')
  return vgg16.weights_backbone(vgg_weights)


def _overlay_landmarks(images, landmarks, color):
  """Draws landmark dots (3x3 px) into [B,H,W,3] NumPy images (a copy)."""
  out = np.array(images)
  h, w = out.shape[1:3]
  for b in range(out.shape[0]):
    for x, y in landmarks[b]:
      c, r = int(np.floor(x)), int(np.floor(y))
      out[b, max(r - 1, 0):min(r + 2, h), max(c - 1, 0):min(c + 2, w)] = color
  return out


def _strip(images, n=4):
  images = np.asarray(images)[:n]
  return np.concatenate(list(images), axis=1)[None]


class CoarseTraining(training_loop.TrainingLoop):
  """The coarse stage's network, data and losses (Eq. 14-18) with SAM."""

  def __init__(self, model):
    settings = training_loop.settings_from_flags(
        FLAGS, DEFAULTS._replace(steps=PRETRAIN_STEPS)
        if FLAGS.sam_config == 'none' else DEFAULTS)
    self.model = model
    self.image_size = FLAGS.image_size
    input_size = FLAGS.vgg_input_size or self.image_size
    if FLAGS.vgg_weights and (input_size != 224 or FLAGS.vgg_width != 1.0):
      raise ValueError('--vgg_weights needs a standard VGG-16 input: '
                       '--vgg_input_size=224 (got %d) and --vgg_width=1 (got '
                       '%g)' % (input_size, FLAGS.vgg_width))
    backbone, mean_rgb = backbone_settings(FLAGS.vgg_weights,
                                           FLAGS.init_checkpoint)
    logging.info('VGG-16 backbone: %s preprocessing%s', backbone,
                 ' (mean RGB %s)' % (mean_rgb,) if mean_rgb else '')
    self.net = coarse_model.CoarseModel(model, input_size, FLAGS.vgg_width,
                                        backbone=backbone, mean_rgb=mean_rgb)
    self.net(tf.zeros([1, self.image_size, self.image_size, 3]))
    self.identity = build_identity_network()
    self.weights = losses.weights_from_flags(FLAGS)
    # The supervised vertex loss reads the data's ground-truth meshes.
    self.with_shapes = self.weights['vertex'] > 0
    self.landmark_source = data_landmark_source(FLAGS.data)
    jaw = face_reconstruction.JAW_CONVENTIONS[self.landmark_source]
    # Chen20's contour term needs landmarks that follow the outline.
    self.contour_model = model if jaw == 'sliding' else None
    logging.info('Training landmarks: %s (landmark loss jaw: %s; Chen20 '
                 'contour term %s)', self.landmark_source, jaw,
                 'weight %g' % self.weights['contour_landmark']
                 if self.contour_model is not None else
                 'off: fixed jaw points')
    self.sam = sam_lib.SelfAugment(model, self.net, FLAGS.sam_config,
                                   self.image_size, FLAGS.sam_reduce,
                                   FLAGS.sam_render_gradients,
                                   FLAGS.sam_translation,
                                   landmark_source=self.landmark_source)
    # What coarse_model.load reads back, and what a resumed run must share
    # (landmark_source: older configs lack it, which check_config accepts).
    config = dict(self.net.config(), sam_config=FLAGS.sam_config,
                  init_checkpoint=FLAGS.init_checkpoint,
                  landmark_source=self.landmark_source)
    super().__init__(NAME, FLAGS.log_dir, self.net, config,
                     coarse_model.CONFIG_FILE, settings)

  def initialise(self):
    if FLAGS.init_checkpoint:
      path = training_loop.restore_network(
          self.net, FLAGS.init_checkpoint, '--init_checkpoint',
          'a coarse/train.py checkpoint with the same --vgg_width, '
          '--vgg_input_size and --bfm')
      logging.info('Network initialised from %s', path)
    elif FLAGS.vgg_weights:
      vgg16.load_weights(self.net.backbone, FLAGS.vgg_weights)
      logging.info('Backbone initialised from %s', FLAGS.vgg_weights)

  def prepare(self):
    logging.info('SAM config %r: %d poses, %d network images per step.',
                 FLAGS.sam_config, self.sam.num_poses,
                 self.settings.batch_size * (1 + self.sam.num_poses))
    # A resumed run reads on where the uninterrupted run would be: the data
    # stream and the augmentation's per-example seeds both start at global
    # example `first` (training_loop.example_stream).
    first = self.steps_done() * self.settings.batch_size
    if FLAGS.data:
      if self.with_shapes:
        check_record_shapes(FLAGS.data, self.model)
      dataset = self.record_dataset(FLAGS.data, self.image_size, FLAGS.seed,
                                    FLAGS.skip_bad_records, first,
                                    self.with_shapes)
    else:
      dataset = synthetic_dataset(self.model, self.image_size,
                                  self.settings.batch_size, first,
                                  self.with_shapes)
    if self.with_shapes:
      logging.info('Supervised vertex loss, weight %g (not the paper: '
                   'ground-truth meshes of synthetic data)',
                   self.weights['vertex'])
    if FLAGS.coarse_augment:
      logging.info('Chen20 augmentation: colour x U(%g, %g) per channel, '
                   'flip p=%g, scale U(%g, %g) (--coarse_augment)',
                   *(augmentation.COLOR_RANGE +
                     (augmentation.FLIP_PROBABILITY,) +
                     augmentation.SCALE_RANGE))
      dataset = augmentation.augment_dataset(
          dataset, self.settings.batch_size, FLAGS.seed, first_example=first,
          symmetry=self.model.symmetry)
    self.use_dataset(dataset)

  def compute(self, batch):
    images, landmarks, masks = batch[:3]
    shapes = batch[3] if self.with_shapes else None
    out = self.sam.forward(images, training=True)
    total, terms = losses.coarse_losses(images, landmarks, masks, out.face,
                                        out.coefficients, self.weights,
                                        self.identity, self.contour_model,
                                        shapes)
    return total, terms, out

  def write_images(self, step, batch, outputs):
    images, landmarks = batch[:2]
    face = outputs.face
    render = face.image.numpy()
    mask = face.mask.numpy()
    over = render * mask + images.numpy() * (1 - mask)
    lm = _overlay_landmarks(images.numpy(), landmarks.numpy(), (0, 1, 0))
    lm = _overlay_landmarks(lm, face.landmarks2d.numpy(), (1, 0, 0))
    grid = np.concatenate([_strip(images), _strip(over), _strip(lm)], axis=1)
    summaries.image('train/input_render_landmarks', grid, step, max_outputs=1)
    if self.sam.num_poses:
      k = self.sam.num_poses
      pick = outputs.renders.numpy()[:k][::max(1, k // 6)][:6]
      summaries.image('train/sam_renders', _strip(pick, 6), step, max_outputs=1)


train = training_loop.Script(CoarseTraining, FLAGS, NAME)
main = train.main


if __name__ == '__main__':
  app.run(main)
