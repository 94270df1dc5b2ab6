"""absl flags of the detail stage (detail/train.py).

Defaults follow the paper (Sec. 3.3-3.4, appendix C) and, where the paper says
"consistent with the open source version of Chen et al. (2020)", Chen20's fine-
model settings in cyj907/unsupervised-detail-layer run_train.sh / controller.py.
The training loop's flags (--steps, --batch_size, --data, --init_checkpoint,
...) are flags/training_flags.py's, shared with the coarse stage; their
detail defaults are detail/train.py's DEFAULTS. Naming rule: flags/__init__.py.
Call `define_flags()` once before `app.run`; it is idempotent.
"""

from absl import flags

from detail import losses as detail_losses
from flags import common_flags
from flags import training_flags

FLAGS = flags.FLAGS


_define = common_flags.define_once

# Eq. 12-13 / 19-20 loss weights; their defaults are detail/losses.py
# DEFAULT_WEIGHTS.
_WEIGHT_HELP = {
    'photo': 'a1: photometric loss weight (Chen20 1.0); the loss measures '
             'colour distances in [0, 255] units, as Chen20.',
    'smooth': 'a2: smoothness loss weight (Eq. 12); Chen20 --smooth_weight '
              '1.0.',
    'disp_reg': 'a3: weight of R_disp (Eq. 12); its terms carry w_dn, w_dz.',
    'smooth_normal': 'b1: smoothness of displacement normals (Chen20 '
                     '--smooth_normal_weight 1.0).',
    'smooth_depth': 'b2: smoothness of the UV displacement depth (Chen20 '
                    '--smooth_uv_weight 0.01).',
    'disp_normal': 'w_dn: regulariser on normal change (Chen20 '
                   '--disp_normal_weight 0.001).',
    'disp_depth': 'w_dz: regulariser on displacement depth (Chen20 '
                  '--disp_weight 0.001).',
}


def define_flags():
  """Defines all detail-stage flags plus the shared ones (idempotent)."""
  training_flags.define_flags()

  # --- Images and the frozen coarse stage -------------------------------------
  _define('integer', 'detail_image_size', 64,
          'Side of the square training images in pixels (Chen20 fine stage: '
          '300; small so that `python detail/train.py` runs on a CPU).')
  _define(
      'string', 'coarse_checkpoint', None,
      'Coarse-stage checkpoint (frozen), the --log_dir of coarse/train.py. '
      'Without it, the coarse coefficients are taken from the synthetic data '
      'ground truth and the log says so; --data needs it.')
  _define(
      'float', 'detail_synthetic_wrinkles_mm', 2.0,
      'Synthetic data only: peak depth (mm) of the random wrinkle '
      'displacement added to every image (detail/synthetic_details.py), so '
      'there is fine detail to learn; 0 = the plain model renders.')

  # --- RI2ITN (Sec. 3.3, Eq. 6-10) -------------------------------------------
  _define(
      'integer', 'detail_uv_size', 64,
      'UV map side in texels, a power of two (Chen20 and the paper: 512; '
      'the default is small so that `python detail/train.py` runs on a CPU).')
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
      'enum', 'ri2itn_feedback_chains', 'per_pair', ['per_pair', 'per_source'],
      'How the Dense Feedback Connections (Eq. 6) bring a decoder feature '
      'f_j down to a deeper encoder scale i: "per_pair" = its own chain of '
      '(i - j) stride-2 convolutions for every (i, j) pair (125.5 M of the '
      '147.5 M parameters at 512^2); "per_source" = one chain per source '
      'scale j, read by each deeper target after (i - j) steps (the paper '
      'does not say which; README, detail section).')
  _define(
      'enum', 'ri2itn_input_mode', 'difference', ['difference', 'concat'],
      'Network input: "difference" = Chen20 (face_model.py): normalised '
      'unwrapped input minus unwrapped coarse render, 3 channels; "concat" = '
      'both normalised unwrapped images, 6 channels (paper Fig. 3-4).')
  _define(
      'bool', 'ri2itn_shading_input', True,
      'Append 3 lighting-aware channels to the network input (a departure '
      'from Chen20 and the paper, which feed only the unwrapped photo and '
      'coarse render): the coarse face\'s grey SH shading under the '
      'estimated lighting and its change per unit surface slope along model '
      'x and y, rendered into UV (detail/detail_reconstruction.py '
      'shading_channels). Without them the input does not say which way a '
      'slope faces when the light comes from one side; on the detail '
      'benchmark they cut the t = 2 error (README, detail benchmark). '
      '--nori2itn_shading_input = Chen20\'s input.')
  _define(
      'float', 'detail_displacement_scale_mm', 1.0,
      'Millimetres of model-space depth per unit of the tanh output '
      '(Chen20 adds the tanh output directly in its model units).')

  # --- Large pose (Sec. 3.4) --------------------------------------------------
  _define(
      'bool', 'large_pose', False,
      'Large-pose training: symmetric UV padding of the self-occluded half '
      'on every image, initialised from the small-pose RI2ITN checkpoint '
      '(--init_checkpoint).')
  _define(
      'bool', 'large_pose_padding', True,
      'With --large_pose: replace the self-occluded UV half by the mirrored '
      'frontal half on every training image (Sec. 3.4). False trains the '
      'same large-pose steps without the padding (the ablation of '
      'eval/detail_benchmark.py).')
  _define(
      'float', 'large_pose_yaw_threshold_deg', 30.0,
      'At inference, symmetric padding is applied when |yaw| exceeds this.')

  _define(
      'bool', 'detail_photo_skin_mask', True,
      'Count only the skin pixels of each training image in the photometric '
      'loss (Chen20 masks its fine photo loss with the face parser\'s skin '
      'class): the skin masks stored by preprocess/prepare_data.py with '
      '--data, the rendered face region without eyes for synthetic faces. '
      'False: every rendered face pixel outside the eyes counts.')

  # --- Loss weights (Eq. 12-13, 19-20; Chen20 run_train.sh fine model) -------
  training_flags.define_loss_weights('detail', detail_losses.DEFAULT_WEIGHTS,
                                     _WEIGHT_HELP)

  # --- Output -----------------------------------------------------------------
  _define(
      'string', 'detail_dir', 'results/detail',
      'Output folder: <dir>/small_pose and <dir>/large_pose hold checkpoints, '
      'detail_config.json and TensorBoard logs (the reconstruct command\'s '
      '--detail_checkpoint takes <dir>).')
