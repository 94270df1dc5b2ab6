"""absl flags for the coarse stage (coarse/train.py, preprocess/prepare_data.py).

Defaults follow the paper (Sec. 3.2, appendix B.0.1 and C: 250 SAM steps,
batch 6) and, where the paper defers to "the open source version of Chen et
al. (2020)", Chen20's coarse-model settings in cyj907/unsupervised-detail-layer
(run_train.sh: loss weights, learning rate and its decay; controller.py: Adam,
gradient clipping to [-1, 1]). Call `define_flags()` before `app.run`.
"""

from absl import flags

from coarse import losses as coarse_losses
from flags import common_flags

FLAGS = flags.FLAGS

SAM_CONFIGS = ('our_star', 'our_star_literal', 'our', 'none')


_define = common_flags.define_once
_W = coarse_losses.DEFAULT_WEIGHTS


def define_flags():
  """Defines all coarse-stage flags plus the shared ones (idempotent)."""
  common_flags.define_flags()

  # --- Data -------------------------------------------------------------------
  _define(
      'string', 'data', None,
      'TFRecord shards written by preprocess/prepare_data.py: a folder, a file or '
      'a glob. Without it, training uses a synthetic set rendered from the '
      'loaded face model (preprocess/synthetic_data.py).')
  _define(
      'integer', 'num_images', 1000,
      'Size of the synthetic training set (paper Sec. 5.2: 1,000 CelebA '
      'images). Ignored with --data.')
  _define('integer', 'seed', 0,
          'Seed of the network initialisation, the synthetic set and the '
          'shuffling.')

  # --- Network ----------------------------------------------------------------
  _define(
      'string', 'vgg_weights', None,
      'Keras .h5 VGG-16 weights (ImageNet from keras.applications, or '
      'converted VGG-Face): initialise the backbone and enable the perceptual '
      'identity loss. Without it the backbone starts random and the identity loss is '
      'off (logged once).')
  _define(
      'float', 'vgg_width', 1.0,
      'Width multiplier of the VGG-16 channels and fc layers. 1.0 is the '
      'standard VGG-16; smaller values exist only for fast tests and CPU '
      'demos and cannot load --vgg_weights.')
  _define(
      'integer', 'vgg_input_size', None,
      'Side the images are resized to before VGG (Chen20: 224). Default: '
      '--image_size. --vgg_weights needs 224 (the fc6 layer size).')
  _define(
      'string', 'init_checkpoint', None,
      'Coarse checkpoint (file or folder) whose network weights start the run, '
      'e.g. a --sam_config=none (Chen20) run as the paper does before SAM. '
      'Ignored when --log_dir already holds a checkpoint to resume.')

  # --- Self-augment mechanism (Sec. 3.2, Eq. 1-5, appendix C) -----------------
  _define(
      'enum', 'sam_config', 'our_star', list(SAM_CONFIGS),
      'SAM pose set (coarse/sam_poses.py): our_star = 26 poses, Eq. 2 with i '
      'mod 13 on the second side; our_star_literal = Eq. 2 as printed; our = '
      'the appendix 9-pose 3x3 yaw/pitch grid; none = no SAM (Chen20).')
  _define(
      'enum', 'sam_reduce', 'sum', ['sum', 'mean'],
      'How the 1 + K identity/expression predictions of an image combine '
      '(Eq. 4 sums them).')
  _define(
      'bool', 'sam_render_gradients', False,
      'Back-propagate through the SAM renders into the first prediction. '
      'Default: the renders are treated as data.')
  _define(
      'enum', 'sam_translation', 'recentre', ['recentre', 'paper'],
      'Screen translation of the SAM renders: recentre = centre each rotated '
      'face in the image (what the paper\'s translations do for Chen20\'s '
      'BFM, whose origin lies behind the face); paper = the printed '
      'translations (Chen20 pixels of a 300-px screen, scaled to the image).')

  # --- Optimisation (Chen20 run_train.sh / controller.py; paper appendix C) ---
  _define('integer', 'steps', 250,
          'Training steps (paper appendix C: 250 SAM steps).')
  _define('integer', 'batch_size', 6, 'Images per step (paper: 6).')
  _define('float', 'learning_rate', 1e-5, 'Adam learning rate (Chen20 1e-5).')
  _define('integer', 'lr_decay_steps', 2000,
          'Exponential decay period in steps (Chen20 2000).')
  _define('float', 'lr_decay_rate', 0.98, 'Decay factor per period (Chen20).')
  _define('float', 'min_learning_rate', 1e-6,
          'Lower bound of the learning rate (Chen20 1e-6).')
  _define('float', 'grad_clip', 1.0,
          'Clip every gradient element to [-v, v] (Chen20 1.0); 0 = off.')

  # --- Loss weights (Eq. 14-18; Chen20 run_train.sh) --------------------------
  _define('float', 'photo_weight', _W['photo'],
          'w1, photometric L2,1 loss (Chen20 1.0).')
  _define('float', 'landmark_weight', _W['landmark'],
          'w2, 68-landmark loss (Chen20 landmark3d_weight 1.0).')
  _define('float', 'id_weight', _W['id'],
          'w3, perceptual identity loss (Chen20 0.8); needs --vgg_weights.')
  _define('float', 'shape_prior_weight', _W['shape_prior'],
          'w4 * omega_s, identity coefficient prior (Chen20 3.0).')
  _define('float', 'exp_prior_weight', _W['exp_prior'],
          'w4 * omega_e, expression coefficient prior (Chen20 10.0).')
  _define('float', 'tex_prior_weight', _W['tex_prior'],
          'Texture coefficient prior (Chen20 1.0).')

  # --- Logging and checkpoints -----------------------------------------------
  _define('integer', 'log_every', 10,
          'Progress line and scalars every N steps.')
  _define('integer', 'image_every', 50,
          'TensorBoard image grids every N steps.')
  _define('integer', 'save_every', 50,
          'Checkpoint every N steps (and at the end).')
  _define('integer', 'keep_checkpoints', 3, 'Checkpoints kept by the manager.')

  # --- Data preparation (preprocess/prepare_data.py) ------------------------------
  _define('string', 'images', None,
          'prepare_data: folder of input photos (searched recursively).')
  _define('string', 'out', None,
          'prepare_data: output folder for the TFRecord shards and the '
          'per-file report (must not already hold shards).')
  _define('integer', 'max_images', 0,
          'prepare_data: stop after this many usable faces (0 = all; the '
          'paper trains on 1,000 CelebA images).')
  _define(
      'string', 'landmark_model', None,
      'prepare_data: dlib 68-point shape predictor .dat. Default: the file '
      'shipped in the installed face-recognition-models package.')
  _define(
      'enum', 'multiple_faces', 'largest', ['largest', 'skip'],
      'prepare_data: a photo with several faces: keep the largest face '
      '(logged) or skip the photo (logged).')
  _define(
      'bool', 'cnn_fallback', True,
      'prepare_data: when dlib\'s HOG detector finds no face, try dlib\'s CNN '
      '(MMOD) detector from face-recognition-models (finds more turned '
      'faces; ~1.5 s per photo).')
  _define('integer', 'images_per_shard', 500,
          'prepare_data: records per shard.')
