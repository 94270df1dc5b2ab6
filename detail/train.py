r"""Trains RI2ITN, the detail stage (paper Sec. 3.3-3.4, appendix C).

  python detail/train.py                 # small pose: 20,000 steps
  python detail/train.py --large_pose    # large pose: from the small-pose
                                         # RI2ITN, 5,000 more steps with
                                         # symmetric UV padding on every image
  python detail/train.py --large_pose --nolarge_pose_padding
                                         # the same steps without the padding
                                         # (ablation, eval/detail_benchmark.py)

Images: synthetic faces (preprocess/synthetic_data.py) with known random wrinkles
(detail/synthetic_details.py, --detail_synthetic_wrinkles_mm), or face crops
from preprocess/prepare_data.py (--data).

The coarse stage is frozen. Its coefficients come from a coarse checkpoint
(--coarse_checkpoint = the --log_dir of coarse/train.py); without one (fresh
install, synthetic data only) they are the synthetic data's ground-truth
coefficients, and the log says so. Checkpoints (with detail_config.json for
detail_reconstruction.load), TensorBoard scalars (loss terms, learning rate),
image grids (input | coarse render | detail render; unwrapped image | unwrapped
render; displacement map) and the first image's detailed mesh as OBJ (with UVs
and recomputed normals) go to <--detail_dir>/small_pose or /large_pose;
rerunning the same command resumes from the latest checkpoint there. The loop
itself (the step, the NaN/Inf guard, clipping, the learning-rate decay,
checkpoints and the checks that keep the folder honest) is
coarse/training_loop.py, shared with the coarse stage; so are --strategy
and --num_cpu_devices (several devices, --batch_size the global batch).

The photometric loss counts the skin pixels of each image
(--detail_photo_skin_mask; Chen20 masks its fine photo loss with the face
parser's skin class): the masks of --data, or the rendered skin region of a
synthetic face.

Optimiser (Chen20 controller.py, fine model): Adam, learning rate 1e-5 decayed
by 0.99 every 5000 steps down to 1e-7, gradients clipped to [-1, 1].
"""

import os
import pathlib
import sys

if __package__ in (None, ''):  # run as `python detail/train.py`
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from bfm import mesh_io
from coarse import summaries
from coarse import training_loop
from detail import coarse_source
from detail import detail_reconstruction
from detail import losses
from detail import ri2itn
from detail import synthetic_details
from flags import detail_flags

detail_flags.define_flags()
FLAGS = flags.FLAGS

NAME = 'detail/train.py'

SMALL_POSE_STEPS = 20000  # paper appendix C
LARGE_POSE_STEPS = 5000  # paper appendix C

# The stage's defaults of the shared training-loop flags (Chen20 fine model:
# decay 0.99 every 5000 steps down to 1e-7; summaries every 100/500 steps,
# checkpoints every 1000). --steps: SMALL_POSE_STEPS or LARGE_POSE_STEPS.
DEFAULTS = training_loop.Defaults(steps=None, batch_size=4,
                                  lr_decay_steps=5000, lr_decay_rate=0.99,
                                  min_learning_rate=1e-7, log_every=100,
                                  image_every=500, save_every=1000)


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
                          stem_channels=FLAGS.ri2itn_stem_channels,
                          feedback_chains=FLAGS.ri2itn_feedback_chains)
  return detail_reconstruction.DetailReconstructor(
      model,
      FLAGS.detail_uv_size,
      network=network,
      input_mode=FLAGS.ri2itn_input_mode,
      shading_input=FLAGS.ri2itn_shading_input,
      displacement_scale_mm=FLAGS.detail_displacement_scale_mm,
      yaw_threshold_deg=FLAGS.large_pose_yaw_threshold_deg)


class DetailTraining(training_loop.TrainingLoop):
  """RI2ITN's data and losses (Eq. 12-13, 19-20); the coarse stage frozen."""

  def __init__(self, model):
    self.large = FLAGS.large_pose
    settings = training_loop.settings_from_flags(
        FLAGS, DEFAULTS._replace(
            steps=LARGE_POSE_STEPS if self.large else SMALL_POSE_STEPS))
    self.stage = 'large_pose' if self.large else 'small_pose'
    self.pad = 'always' if self.large and FLAGS.large_pose_padding else 'never'
    self.recon = build_reconstructor(model)
    self.recon.build()  # the variables, before restoring
    self.weights = losses.weights_from_flags(FLAGS)
    self.model = model
    self._source = None
    folder = os.path.join(FLAGS.detail_dir, self.stage)
    # What detail_reconstruction.load reads back, and what a resumed run
    # must share.
    config = dict(self.recon.config(),
                  init_checkpoint=FLAGS.init_checkpoint if self.large else None)
    if self.large and not FLAGS.large_pose_padding:
      config['large_pose_padding'] = False  # older configs: always padded
    super().__init__(NAME, folder, self.recon.network, config,
                     detail_reconstruction.CONFIG_FILE, settings,
                     summary_dir=os.path.join(folder, 'logs'),
                     folder_flag='--detail_dir')

  def initialise(self):
    if not self.large:
      return
    looked = FLAGS.init_checkpoint or os.path.join(FLAGS.detail_dir,
                                                   'small_pose')
    try:
      path = training_loop.restore_network(
          self.recon.network, looked, '--large_pose',
          'the small-pose RI2ITN: give the same --detail_uv_size and '
          '--ri2itn_* flags as the small-pose run')
    except training_loop.CheckpointNotFoundError:
      raise training_loop.CheckpointNotFoundError(
          '%s --large_pose needs the small-pose RI2ITN checkpoint: train it '
          'first with `python detail/train.py` and the same --detail_dir, or '
          'pass --init_checkpoint. Looked in: %s' % (NAME, looked)) from None
    logging.info('Large pose: initialised RI2ITN from small-pose checkpoint '
                 '%s', path)

  def prepare(self):
    net = self.recon.network
    logging.info('RI2ITN: %d passes, channels %s, feedback chains %s, %d '
                 'parameters; UV %d^2; input %s', net.num_passes,
                 list(net.channels), net.feedback_chains, net.count_params(),
                 self.recon.uv_size, self.recon.input_mode)
    if FLAGS.data and not FLAGS.coarse_checkpoint:
      raise training_loop.UsageError(
          '%s: --data=%s: real images have no ground-truth coefficients; the '
          'detail stage needs the frozen coarse network, pass '
          '--coarse_checkpoint=DIR (the --log_dir of `python coarse/train.py`)'
          % (NAME, FLAGS.data))
    details = None
    if FLAGS.detail_synthetic_wrinkles_mm > 0 and not FLAGS.data:
      details = synthetic_details.SyntheticDetails(
          self.recon.applier, FLAGS.detail_synthetic_wrinkles_mm,
          FLAGS.seed + 1)
    records = None
    if FLAGS.data:
      records = iter(self.record_dataset(FLAGS.data, FLAGS.detail_image_size,
                                         FLAGS.seed, FLAGS.skip_bad_records))
    self._source = coarse_source.CoarseSource(self.model,
                                      FLAGS.detail_image_size,
                                      self.settings.batch_size,
                                      coarse_checkpoint=FLAGS.coarse_checkpoint,
                                      seed=FLAGS.seed,
                                      num_images=FLAGS.num_images or None,
                                      details=details,
                                      data=records)

  def next_batch(self):
    return self._source.next_batch()

  def compute(self, batch):
    images, coeff_vector, skin = batch
    coeffs = self._source.coefficients(coeff_vector)
    out = self.recon(images, coeffs, pad=self.pad, training=True)
    total, terms = self.recon.loss(
        images, out, self.weights,
        skin_mask=skin if FLAGS.detail_photo_skin_mask else None)
    terms = {k: v for k, v in terms.items() if k != 'total'}
    visuals = {
        'coarse': out.coarse.image,
        'detail': out.detailed.image,
        'uv_image': out.uv_image,
        'uv_render': out.uv_render,
        'displacement': out.displacement_uv,
        'vertices': out.detailed.vertices[0],
        'normals': out.detailed.normals[0]
    }
    return total, terms, visuals

  def write_images(self, step, batch, outputs):
    images = batch[0]
    summaries.image(
        'render/input_coarse_detail',
        tf.concat([
            _image_grid(images),
            _image_grid(outputs['coarse']),
            _image_grid(outputs['detail'])
        ], axis=1), step)
    summaries.image(
        'uv/image_render',
        tf.concat([_image_grid(outputs['uv_image']),
                   _image_grid(outputs['uv_render'])], axis=1), step)
    disp = outputs['displacement'] * 0.5 + 0.5
    summaries.image('uv/displacement', _image_grid(disp), step)
    # The first image's detailed dense mesh, normals recomputed, with UVs.
    mesh_io.write_obj(
        os.path.join(self.folder, 'detail_step%d.obj' % step),
        outputs['vertices'].numpy(), self.recon.applier.triangles,
        uvs=self.recon.applier.mesh.uv, normals=outputs['normals'].numpy())


train = training_loop.Script(DetailTraining, FLAGS, NAME)
main = train.main


if __name__ == '__main__':
  app.run(main)
