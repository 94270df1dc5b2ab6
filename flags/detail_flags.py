"""absl flags for the detail stage (detail/train.py and detail inference).

Defaults follow the paper (Sec. 3.3-3.4, appendix C) and, where the paper says
"consistent with the open source version of Chen et al. (2020)", Chen20's fine-
model settings in cyj907/unsupervised-detail-layer run_train.sh / controller.py.
Call `define_flags()` once before `app.run`; it is idempotent.
"""

from absl import flags

from detail import losses as detail_losses
from flags import common_flags

FLAGS = flags.FLAGS


_define = common_flags.define_once
_W = detail_losses.DEFAULT_WEIGHTS


def define_flags():
  """Defines all detail-stage flags (safe to call more than once)."""
  # --- Data and model -------------------------------------------------------
  _define(
      'string', 'detail_model', 'synthetic',
      'Face model for bfm.load(): "synthetic", "sfm", "ict" or a .npz path.')
  _define('integer', 'detail_image_size', 64,
          'Side of the square input image in pixels (Chen20 fine stage: 300).')
  _define(
      'integer', 'detail_uv_size', 64,
      'UV map side in texels, a power of two (Chen20 and the paper: 512; '
      'the default is small so that `python detail/train.py` runs on a CPU).')
  _define(
      'string', 'coarse_checkpoint', None,
      'Coarse-stage checkpoint (frozen). Without it, the coarse coefficients '
      'are taken from the synthetic data ground truth and the log says so.')
  _define(
      'string', 'detail_data', None,
      'TFRecords of face crops from preprocess/prepare_data.py (folder, file or '
      'glob); needs --coarse_checkpoint. Default: synthetic faces.')
  _define('integer', 'detail_seed', 0, 'Seed of the synthetic data stream.')
  _define(
      'integer', 'detail_num_images', 1000,
      'Size of the fixed synthetic training set, cycled through (paper Sec. '
      '5.2: 1,000 CelebA images); 0 = a new random batch every step.')

  _define(
      'float', 'detail_synthetic_wrinkles_mm', 2.0,
      'Synthetic data only: peak depth (mm) of the random wrinkle '
      'displacement added to every image (detail/synthetic_details.py), so '
      'there is fine detail to learn; 0 = the plain model renders.')

  # --- RI2ITN (Sec. 3.3, Eq. 6-10) -------------------------------------------
  _define('integer', 'ri2itn_passes', 2,
          'Number of unrolled passes t of RI2ITN (paper appendix C: 2).')
  _define(
      'bool', 'ri2itn_share_weights', True,
      'Share encoder/decoder/feedback weights across passes (recursive '
      'network). False gives every pass its own weights.')
  _define(
      'list', 'ri2itn_channels', None,
      'Widths of the stride-2 convolutions (comma list); default Chen20\'s '
      '32,64,128,256,512,512,512,512,512 cut to log2(uv_size) levels. '
      'Small values are for tests only.')
  _define('integer', 'ri2itn_stem_channels', 16,
          'Width of the first stride-1 convolution (Chen20: 16).')
  _define(
      'enum', 'uv_input_mode', 'difference', ['difference', 'concat'],
      'Network input: "difference" = Chen20 (face_model.py): normalised '
      'unwrapped input minus unwrapped coarse render, 3 channels; "concat" = '
      'both normalised unwrapped images, 6 channels (paper Fig. 3-4).')
  _define(
      'float', 'displacement_scale_mm', 1.0,
      'Millimetres of model-space depth per unit of the tanh output '
      '(Chen20 adds the tanh output directly in its model units).')

  # --- Large pose (Sec. 3.4) --------------------------------------------------
  _define(
      'bool', 'large_pose', False,
      'Large-pose training: symmetric UV padding of the self-occluded half '
      'on every image, initialised from the small-pose RI2ITN checkpoint.')
  _define(
      'float', 'large_pose_yaw_threshold_deg', 30.0,
      'At inference, symmetric padding is applied when |yaw| exceeds this.')

  # --- Loss weights (Eq. 12-13, 19-20; Chen20 run_train.sh fine model) -------
  _define('float', 'detail_photo_weight', _W['photo'],
          'a1: photometric loss weight (Chen20 1.0).')
  _define('float', 'detail_smooth_weight', _W['smooth'],
          'a2: smoothness loss weight (Eq. 12); Chen20 --smooth_weight 1.0.')
  _define('float', 'detail_disp_reg_weight', _W['disp_reg'],
          'a3: weight of R_disp (Eq. 12); its terms carry w_dn, w_dz.')
  _define(
      'float', 'detail_smooth_normal_weight', _W['smooth_normal'],
      'b1: smoothness of displacement normals (Chen20 '
      '--smooth_normal_weight 1.0).'
  )
  _define(
      'float', 'detail_smooth_depth_weight', _W['smooth_depth'],
      'b2: smoothness of the UV displacement depth (Chen20 '
      '--smooth_uv_weight 0.01).'
  )
  _define(
      'float', 'detail_disp_normal_weight', _W['disp_normal'],
      'w_dn: regulariser on normal change (Chen20 --disp_normal_weight 0.001).')
  _define(
      'float', 'detail_disp_depth_weight', _W['disp_depth'],
      'w_dz: regulariser on displacement depth (Chen20 --disp_weight 0.001).')

  # --- Optimiser and schedule (Chen20 fine model; paper appendix C) ----------
  _define('integer', 'detail_steps', None,
          'Training steps; default 20000 (small pose) or 5000 (--large_pose).')
  _define('integer', 'detail_batch_size', 4,
          'Batch size (Chen20 fine model: 48; small default for CPU runs).')
  _define('float', 'detail_learning_rate', 1e-5,
          'Adam learning rate (Chen20 1e-5).')
  _define('integer', 'detail_lr_decay_steps', 5000,
          'Exponential decay period (Chen20 5000).')
  _define('float', 'detail_lr_decay_rate', 0.99,
          'Exponential decay rate (Chen20 0.99).')
  _define('float', 'detail_min_learning_rate', 1e-7,
          'Learning-rate floor (Chen20 1e-7).')
  _define(
      'float', 'detail_grad_clip', 1.0,
      'Element-wise gradient clipping to [-c, c] (Chen20 clips to [-1, 1]).')

  # --- Checkpoints and logging ----------------------------------------------
  _define(
      'string', 'detail_dir', 'results/detail',
      'Output folder: <dir>/small_pose and <dir>/large_pose hold checkpoints '
      'and TensorBoard logs.')
  _define(
      'string', 'small_pose_checkpoint', None,
      'RI2ITN checkpoint to start --large_pose from; default: the latest in '
      '<detail_dir>/small_pose.')
  _define('integer', 'detail_save_every', 1000,
          'Checkpoint period in steps (Chen20 1000).')
  _define('integer', 'detail_log_every', 100,
          'Scalar summary and progress period (Chen20 100).')
  _define('integer', 'detail_image_every', 500,
          'Image summary period (Chen20 500).')
