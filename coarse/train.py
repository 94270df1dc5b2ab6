r"""Trains the coarse stage: VGG-16 coefficient regression with SAM.

  python coarse/train.py --sam_config=our_star   # paper "Our*" (26 poses)
  python coarse/train.py --sam_config=our        # paper "Our" (9 poses)
  python coarse/train.py --sam_config=none       # Chen20 baseline, no SAM

Paper Sec. 3.2 / appendix C: SAM training runs 250 steps at batch 6, starting
from a network trained the Chen20 way (--init_checkpoint of a
--sam_config=none run). Losses: Eq. 14-18 (coarse/losses.py). Optimiser as
Chen20 (cyj907/unsupervised-detail-layer controller.py, run_train.sh): Adam,
learning rate 1e-5 decayed by 0.98 every 2000 steps down to 1e-6, every
gradient element clipped to [-1, 1].

Data: --data = TFRecords from preprocess/prepare_data.py; without it, a fixed
synthetic set of --num_images faces rendered from the model.

The defaults are the paper's (224 px, standard VGG-16, batch 6, 162 VGG
images per our_star step): a GPU job. A short CPU run of the whole pipeline
(64 px, VGG at 1/8 width, our_star, 150 steps; ~8 min wall on 2 shared
cores):

  python coarse/train.py --sam_config=our_star --image_size=64 \
      --vgg_width=0.125 --num_images=120 --steps=150 --log_dir=results/coarse_quick

Checkpoints and TensorBoard logs go to --log_dir (default results/coarse);
rerunning the same command resumes from the latest checkpoint there. A NaN or
Inf loss (or gradient) stops the run with an error naming the step and the
term, before the update, so the last saved checkpoint stays good.
"""

import os
import sys
import time

if __package__ in (None, ''):  # run as `python coarse/train.py`
  sys.path.insert(0,
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf
import keras

import bfm
from coarse import coarse_model
from preprocess import face_records
from coarse import losses
from coarse import sam as sam_lib
from preprocess import synthetic_data
from coarse import vgg16
from coarse import summaries  # core-op TensorBoard writers (no tensorboard pkg)
from flags import coarse_flags

coarse_flags.define_flags()
FLAGS = flags.FLAGS


class NonFiniteLossError(FloatingPointError):
  """A loss term or the gradient became NaN or Inf."""


class ChenDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Chen20: max(lr * rate ** (step / decay_steps), min_lr) (not staircase)."""

  def __init__(self, lr, decay_steps, rate, min_lr):
    self.lr, self.decay_steps, self.rate, self.min_lr = (float(lr),
                                                         int(decay_steps),
                                                         float(rate),
                                                         float(min_lr))

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    return tf.maximum(self.lr * self.rate**(step / self.decay_steps),
                      self.min_lr)

  def get_config(self):
    return dict(lr=self.lr, decay_steps=self.decay_steps, rate=self.rate,
                min_lr=self.min_lr)


def build_dataset(model, image_size, batch_size):
  """Endless shuffled batches (images, landmarks [B,68,2], skin masks)."""
  if FLAGS.data:
    logging.info('Training data: TFRecords %s', FLAGS.data)
    return face_records.dataset(FLAGS.data, image_size, batch_size,
                                seed=FLAGS.seed)
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
  ds = tf.data.Dataset.from_tensor_slices((images, landmarks, masks))
  ds = ds.shuffle(n, seed=FLAGS.seed, reshuffle_each_iteration=True).repeat()
  return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def build_identity_network(input_size):
  """Frozen VGG-16 for the identity loss, or None without --vgg_weights."""
  if not FLAGS.vgg_weights or FLAGS.id_weight <= 0:
    if FLAGS.id_weight > 0:
      logging.warning('No --vgg_weights: the perceptual identity loss (Eq. 17) '
                      'is OFF and the VGG-16 backbone starts from random '
                      'weights. Pass Keras VGG-16 .h5 weights to enable it.')
    return None
  vgg = vgg16.build(224, 1.0, name='identity_vgg16')
  vgg16.load_weights(vgg, FLAGS.vgg_weights)
  vgg.trainable = False
  logging.info('Identity loss: frozen VGG-16 fc7 from %s', FLAGS.vgg_weights)

  def features(images):
    if images.shape[1] != 224:
      images = tf.image.resize(images, [224, 224])
    return vgg(vgg16.preprocess(images), training=False)

  del input_size
  return features


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


class Trainer:
  """Network, optimiser, SAM and checkpoints for one run (reads FLAGS)."""

  def __init__(self, model):
    self.model = model
    self.image_size = FLAGS.image_size
    input_size = FLAGS.vgg_input_size or self.image_size
    if FLAGS.vgg_weights and (input_size != 224 or FLAGS.vgg_width != 1.0):
      raise ValueError('--vgg_weights needs a standard VGG-16 input: '
                       '--vgg_input_size=224 (got %d) and --vgg_width=1 (got '
                       '%g)' % (input_size, FLAGS.vgg_width))
    self.net = coarse_model.CoarseModel(model, input_size, FLAGS.vgg_width)
    self.net(tf.zeros([1, self.image_size, self.image_size, 3]))
    self.identity = build_identity_network(input_size)
    self.weights = losses.weights_from_flags(FLAGS)
    self.sam = sam_lib.SelfAugment(model, self.net, FLAGS.sam_config,
                                   self.image_size, FLAGS.sam_reduce,
                                   FLAGS.sam_render_gradients,
                                   FLAGS.sam_translation)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.optimizer = keras.optimizers.Adam(
        ChenDecay(FLAGS.learning_rate, FLAGS.lr_decay_steps,
                  FLAGS.lr_decay_rate, FLAGS.min_learning_rate),
        epsilon=1e-8)  # tf.train.AdamOptimizer defaults, as Chen20
    self.variables = self.net.trainable_variables
    self.optimizer.build(self.variables)
    self.ckpt = tf.train.Checkpoint(network=self.net, optimizer=self.optimizer,
                                    step=self.step)
    self.manager = tf.train.CheckpointManager(
        self.ckpt, FLAGS.log_dir, max_to_keep=FLAGS.keep_checkpoints)
    self._compute = tf.function(self.compute)
    self._apply = tf.function(self.apply)

  def restore(self):
    if self.manager.latest_checkpoint:
      self.ckpt.restore(
          self.manager.latest_checkpoint).assert_existing_objects_matched()
      logging.info('Resumed from %s at step %d', self.manager.latest_checkpoint,
                   int(self.step))
    elif FLAGS.init_checkpoint:
      path = FLAGS.init_checkpoint
      if tf.io.gfile.isdir(path):
        path = tf.train.latest_checkpoint(path)
      if path is None or not tf.io.gfile.exists(path + '.index'):
        raise FileNotFoundError('--init_checkpoint: no checkpoint at %r' %
                                (FLAGS.init_checkpoint,))
      try:
        tf.train.Checkpoint(network=self.net).restore(
            path).expect_partial().assert_existing_objects_matched()
      except (AssertionError, ValueError) as e:
        raise ValueError(
            '--init_checkpoint: %r does not hold this network (a coarse/'
            'train.py checkpoint with the same --vgg_width, --vgg_input_size '
            'and --bfm is needed): %s' % (path, e)) from e
      logging.info('Network initialised from %s', path)
    elif FLAGS.vgg_weights:
      vgg16.load_weights(self.net.backbone, FLAGS.vgg_weights)
      logging.info('Backbone initialised from %s', FLAGS.vgg_weights)

  def compute(self, images, landmarks, masks):
    """Loss terms, total and clipped gradients of one SAM step."""
    with tf.GradientTape() as tape:
      out = self.sam.forward(images, training=True)
      total, terms = losses.coarse_losses(images, landmarks, masks, out.face,
                                          out.coefficients, self.weights,
                                          self.identity)
    grads = tape.gradient(total, self.variables)
    grads = [tf.zeros_like(v) if g is None else g
             for g, v in zip(grads, self.variables)]
    grad_norm = tf.linalg.global_norm(grads)
    if FLAGS.grad_clip > 0:
      grads = [tf.clip_by_value(g, -FLAGS.grad_clip, FLAGS.grad_clip)
               for g in grads]
    terms = dict(terms, total=total, grad_norm=grad_norm)
    return terms, grads, out

  def apply(self, grads):
    self.optimizer.apply_gradients(zip(grads, self.variables))
    self.step.assign_add(1)

  def summaries(self, step, terms, images, landmarks, out):
    for k, v in terms.items():
      summaries.scalar('loss/' + k, v, step)
    summaries.scalar('learning_rate',
                     self.optimizer.learning_rate, step)
    if step % FLAGS.image_every and step != 1:
      return
    render = out.face.image.numpy()
    mask = out.face.mask.numpy()
    over = render * mask + images.numpy() * (1 - mask)
    lm = _overlay_landmarks(images.numpy(), landmarks.numpy(), (0, 1, 0))
    lm = _overlay_landmarks(lm, out.face.landmarks2d.numpy(), (1, 0, 0))
    grid = np.concatenate([_strip(images), _strip(over), _strip(lm)], axis=1)
    summaries.image('train/input_render_landmarks', grid, step, max_outputs=1)
    if self.sam.num_poses:
      k = self.sam.num_poses
      pick = out.renders.numpy()[:k][::max(1, k // 6)][:6]
      summaries.image('train/sam_renders', _strip(pick, 6), step, max_outputs=1)


def _check_finite(step, terms):
  for name, value in terms.items():
    if not np.isfinite(float(value)):
      what = 'gradient' if name == 'grad_norm' else 'loss term %r' % name
      raise NonFiniteLossError(
          'coarse/train.py: %s is %s at step %d; stopped before the update. '
          'The last good checkpoint in %s is intact (%s).' %
          (what, float(value), step, FLAGS.log_dir,
           tf.train.latest_checkpoint(FLAGS.log_dir)))


def train(argv=()):
  """Runs training to --steps; returns the list of total losses per step."""
  del argv
  tf.io.gfile.makedirs(FLAGS.log_dir)
  model = bfm.load(FLAGS.bfm)
  keras.utils.set_random_seed(FLAGS.seed)  # network initialisation too
  trainer = Trainer(model)
  coarse_model.save_config(trainer.net, FLAGS.log_dir)
  trainer.restore()
  start = int(trainer.step)
  if start >= FLAGS.steps:
    logging.info('Already at step %d >= --steps=%d; nothing to do.', start,
                 FLAGS.steps)
    return []
  logging.info('SAM config %r: %d poses, %d network images per step.',
               FLAGS.sam_config, trainer.sam.num_poses,
               FLAGS.batch_size * (1 + trainer.sam.num_poses))
  data = iter(build_dataset(model, FLAGS.image_size, FLAGS.batch_size))
  writer = tf.summary.create_file_writer(FLAGS.log_dir)
  history = []
  times = []
  with writer.as_default():
    for step in range(start + 1, FLAGS.steps + 1):
      images, landmarks, masks = next(data)
      t0 = time.time()
      terms, grads, out = trainer._compute(images, landmarks, masks)
      _check_finite(step, terms)
      trainer._apply(grads)
      times.append(time.time() - t0)
      total = float(terms['total'])
      history.append(total)
      if (step % FLAGS.log_every == 0 or step == start + 1 or
          step == FLAGS.steps):
        if len(times) > 1:  # the first step also traces the graph
          eta = '%.0f s' % (np.median(times[1:][-10:]) * (FLAGS.steps - step))
        else:
          eta = 'n/a (first step includes tracing)'
        logging.info(
            'step %d/%d  loss %.4g (%s)  %.2f s/step  ETA %s', step,
            FLAGS.steps, total, ', '.join(
                '%s %.4g' % (k, float(v)) for k, v in sorted(terms.items())
                if k not in ('total',)), times[-1], eta)
        trainer.summaries(step, terms, images, landmarks, out)
      if step % FLAGS.save_every == 0 or step == FLAGS.steps:
        trainer.manager.save(checkpoint_number=step)
  writer.flush()
  logging.info('Finished at step %d; checkpoint %s', int(trainer.step),
               trainer.manager.latest_checkpoint)
  return history


def main(argv):
  train(argv)


if __name__ == '__main__':
  app.run(main)
