r"""Trains RI2ITN, the detail stage (paper Sec. 3.3-3.4, appendix C).

  python detail/train.py                 # small pose: 20,000 steps
  python detail/train.py --large_pose    # large pose: from the small-pose
                                         # RI2ITN, 5,000 more steps with
                                         # symmetric UV padding on every image

Images: synthetic faces (preprocess/synthetic_data.py) with known random wrinkles
(detail/synthetic_details.py, --detail_synthetic_wrinkles_mm), or face crops
from preprocess/prepare_data.py (--detail_data).

The coarse stage is frozen. Its coefficients come from a coarse checkpoint
(--coarse_checkpoint = the --log_dir of coarse/train.py); without one (fresh
install, synthetic data only) they are the synthetic data's ground-truth
coefficients, and the log says so. Checkpoints (with detail_config.json for
detail_reconstruction.load), TensorBoard scalars (loss terms, learning rate),
image grids (input | coarse render | detail render; unwrapped image | unwrapped
render; displacement map) and the first image's detailed mesh as OBJ (with UVs
and recomputed normals) go to <--detail_dir>/small_pose or /large_pose;
rerunning the same command resumes from the latest checkpoint there. A NaN or
Inf loss or gradient stops the run before the update, naming the step and the
intact last checkpoint.

Optimiser (Chen20 controller.py, fine model): Adam, learning rate 1e-5 decayed
by 0.99 every 5000 steps down to 1e-7, gradients clipped to [-1, 1].
"""

import os
import sys
import time

if __package__ in (None, ''):  # run as `python detail/train.py`
  sys.path.insert(0,
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

import bfm
from bfm import mesh_io
from detail import coarse_source
from detail import detail_reconstruction
from detail import losses
from detail import ri2itn
from detail import synthetic_details
from coarse import summaries
from flags import detail_flags

detail_flags.define_flags()
FLAGS = flags.FLAGS

SMALL_POSE_STEPS = 20000  # paper appendix C
LARGE_POSE_STEPS = 5000  # paper appendix C


class NonFiniteLossError(FloatingPointError):
  """A loss term or a gradient became NaN or Inf (raised before the update)."""


def _learning_rate(step):
  """Chen20: max(exponential_decay(lr, step, decay_steps, rate), min_lr)."""
  lr = FLAGS.detail_learning_rate * FLAGS.detail_lr_decay_rate**(
      tf.cast(step, tf.float32) / FLAGS.detail_lr_decay_steps)
  return tf.maximum(lr, FLAGS.detail_min_learning_rate)


def _image_grid(images, max_images=4):
  """[B,H,W,C] -> [1, H, W*min(B,4), C] side-by-side strip."""
  images = images[:max_images]
  return tf.concat(tf.unstack(images), axis=1)[None]


def build_reconstructor(model):
  network = ri2itn.RI2ITN(uv_size=FLAGS.detail_uv_size,
                          num_passes=FLAGS.ri2itn_passes,
                          share_weights=FLAGS.ri2itn_share_weights,
                          channels=([int(c) for c in FLAGS.ri2itn_channels]
                                    if FLAGS.ri2itn_channels else None),
                          stem_channels=FLAGS.ri2itn_stem_channels)
  return detail_reconstruction.DetailReconstructor(
      model,
      FLAGS.detail_uv_size,
      network=network,
      input_mode=FLAGS.uv_input_mode,
      displacement_scale_mm=FLAGS.displacement_scale_mm,
      yaw_threshold_deg=FLAGS.large_pose_yaw_threshold_deg)


def _init_from_small_pose(network, stage_root):
  """--large_pose: loads the small-pose RI2ITN weights or says where it
  looked."""
  path = FLAGS.small_pose_checkpoint
  looked = path
  if path is None:
    looked = os.path.join(stage_root, 'small_pose')
    path = tf.train.latest_checkpoint(looked)
  elif os.path.isdir(path):
    path = tf.train.latest_checkpoint(path)
  if path is None or not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(
        '--large_pose needs the small-pose RI2ITN checkpoint (train it first '
        'with `python detail/train.py` and the same --detail_dir, or pass '
        '--small_pose_checkpoint). Looked in: %s' % looked)
  status = tf.train.Checkpoint(network=network).restore(path)
  try:
    status.assert_existing_objects_matched().expect_partial()
  except AssertionError as e:
    raise ValueError(
        '--large_pose: the small-pose checkpoint %s holds another RI2ITN '
        '(give the same --detail_uv_size/--ri2itn_* flags as the small-pose '
        'run): %s' % (path, str(e)[:300])) from e
  logging.info('Large pose: initialised RI2ITN from small-pose checkpoint %s',
               path)
  return path


def train(argv=()):
  del argv
  large = FLAGS.large_pose
  stage = 'large_pose' if large else 'small_pose'
  out_dir = os.path.join(FLAGS.detail_dir, stage)
  os.makedirs(out_dir, exist_ok=True)
  steps = FLAGS.detail_steps or (LARGE_POSE_STEPS
                                 if large else SMALL_POSE_STEPS)
  model = bfm.load(FLAGS.detail_model)
  recon = build_reconstructor(model)
  details = None
  if FLAGS.detail_synthetic_wrinkles_mm > 0 and not FLAGS.detail_data:
    details = synthetic_details.SyntheticDetails(
        recon.applier, FLAGS.detail_synthetic_wrinkles_mm,
        FLAGS.detail_seed + 1)
  source = coarse_source.CoarseSource(model,
                                      FLAGS.detail_image_size,
                                      FLAGS.detail_batch_size,
                                      coarse_checkpoint=FLAGS.coarse_checkpoint,
                                      seed=FLAGS.detail_seed,
                                      num_images=FLAGS.detail_num_images or
                                      None,
                                      details=details,
                                      data=FLAGS.detail_data)
  weights = losses.weights_from_flags(FLAGS)
  pad = 'always' if large else 'never'

  step = tf.Variable(0, dtype=tf.int64, name='step', trainable=False)
  # Chen20: tf.train.AdamOptimizer defaults (epsilon 1e-8).
  optimizer = tf.keras.optimizers.Adam(
      learning_rate=lambda: _learning_rate(step), epsilon=1e-8)
  # Build the network variables before restoring.
  recon.network(
      tf.zeros([
          1, recon.uv_size, recon.uv_size,
          detail_reconstruction.INPUT_CHANNELS[recon.input_mode]
      ]))
  variables = recon.network.trainable_variables
  optimizer.build(variables)  # before restoring, so its slots restore too
  ckpt = tf.train.Checkpoint(network=recon.network,
                             optimizer=optimizer,
                             step=step)
  manager = tf.train.CheckpointManager(ckpt, out_dir, max_to_keep=3)
  if manager.latest_checkpoint:
    status = ckpt.restore(manager.latest_checkpoint)
    try:
      status.assert_existing_objects_matched()
    except AssertionError as e:
      raise ValueError(
          'detail/train.py: cannot resume from %s, it holds another RI2ITN '
          '(see %s there; use the same flags or another --detail_dir): %s' %
          (manager.latest_checkpoint, detail_reconstruction.CONFIG_FILE,
           str(e)[:300])) from e
    logging.info('Resumed from %s at step %d', manager.latest_checkpoint,
                 int(step))
  elif large:
    _init_from_small_pose(recon.network, FLAGS.detail_dir)
  detail_reconstruction.save_config(recon, out_dir)  # for load() at inference
  logging.info('RI2ITN: %d passes, channels %s, %d parameters; UV %d^2; '
               'input %s', recon.network.num_passes,
               list(recon.network.channels), recon.network.count_params(),
               recon.uv_size, recon.input_mode)

  clip = FLAGS.detail_grad_clip

  @tf.function(reduce_retracing=True)
  def compute_gradients(images, coeff_vector):
    coeffs = source.coefficients(coeff_vector)
    with tf.GradientTape() as tape:
      out = recon(images, coeffs, pad=pad, training=True)
      total, terms = recon.loss(images, out, weights)
    grads = tape.gradient(total, variables)
    finite = tf.math.is_finite(total)
    for g in grads:
      finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
    visuals = {
        'coarse': out.coarse.image,
        'detail': out.detailed.image,
        'uv_image': out.uv_image,
        'uv_render': out.uv_render,
        'displacement': out.displacement_uv,
        'vertices': out.detailed.vertices[0],
        'normals': out.detailed.normals[0]
    }
    return terms, grads, finite, visuals

  @tf.function(reduce_retracing=True)
  def apply_gradients(grads):
    grads = [tf.clip_by_value(g, -clip, clip) for g in grads]  # Chen20 clipping
    optimizer.apply_gradients(zip(grads, variables))
    step.assign_add(1)

  def train_step(images, coeff_vector):
    terms, grads, finite, out = compute_gradients(images, coeff_vector)
    if bool(finite):  # NaN guard: never apply a non-finite update.
      apply_gradients(grads)
    return terms, finite, out

  writer = tf.summary.create_file_writer(os.path.join(out_dir, 'logs'))
  start_step = int(step)
  if start_step >= steps:
    logging.info('[%s] already at step %d >= %d steps; nothing to do.', stage,
                 start_step, steps)
  history = []
  times = []  # seconds per step (data + update); the first includes tracing
  while int(step) < steps:
    t0 = time.time()
    images, coeff_vector = source.next_batch()
    terms, finite, out = train_step(images, coeff_vector)
    times.append(time.time() - t0)
    if not bool(finite):
      raise NonFiniteLossError(
          'detail/train.py: non-finite loss or gradient at step %d (terms %s); '
          'stopped before the update. The last good checkpoint in %s is '
          'intact (%s).' % (int(step) + 1, {
              k: float(v) for k, v in terms.items()
          }, out_dir, manager.latest_checkpoint))
    s = int(step)
    history.append(float(terms['total']))
    if s % FLAGS.detail_log_every == 0 or s == steps or s == start_step + 1:
      # ETA from the median of the last steps (the first one traces).
      per_step = float(np.median(times[1:][-20:] or times))
      recent = history[-FLAGS.detail_log_every:]
      logging.info(
          '[%s] step %d/%d  loss %.5f (photo %.5f smooth %.5f disp %.5f; '
          'mean of last %d steps %.5f)  %.2f s/step  ETA %.0f s', stage, s,
          steps, float(terms['total']), float(terms['photo']),
          float(terms['smooth']), float(terms['disp_reg']), len(recent),
          float(np.mean(recent)), per_step, per_step * (steps - s))
      with writer.as_default():
        for k, v in terms.items():
          summaries.scalar('loss/' + k, v, s)
        summaries.scalar('learning_rate', _learning_rate(step), s)
    first = s == start_step + 1
    if s % FLAGS.detail_image_every == 0 or s == steps or first:
      with writer.as_default():
        summaries.image(
            'render/input_coarse_detail',
            tf.concat([
                _image_grid(images),
                _image_grid(out['coarse']),
                _image_grid(out['detail'])
            ],
                      axis=1), s)
        summaries.image(
            'uv/image_render',
            tf.concat(
                [_image_grid(out['uv_image']),
                 _image_grid(out['uv_render'])],
                axis=1), s)
        disp = out['displacement'] * 0.5 + 0.5
        summaries.image('uv/displacement', _image_grid(disp), s)
      # The first image's detailed dense mesh, normals recomputed, with UVs.
      mesh_io.write_obj(
          os.path.join(out_dir, 'detail_step%d.obj' % s),
          out['vertices'].numpy(), recon.applier.triangles,
          uvs=recon.applier.mesh.uv, normals=out['normals'].numpy())
    if s % FLAGS.detail_save_every == 0 or s == steps:
      manager.save(checkpoint_number=s)
  writer.flush()
  logging.info('[%s] finished at step %d; checkpoint %s', stage, int(step),
               manager.latest_checkpoint)
  return history


def main(argv):
  train(argv)


if __name__ == '__main__':
  app.run(main)
