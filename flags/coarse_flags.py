"""absl flags of the coarse stage (coarse/train.py) and of
preprocess/prepare_data.py, which writes its training data.

Defaults follow the paper (Sec. 3.2, appendix B.0.1 and C: 250 SAM steps,
batch 6) and, where the paper defers to "the open source version of Chen et
al. (2020)", Chen20's coarse-model settings in cyj907/unsupervised-detail-layer
(run_train.sh: loss weights, learning rate and its decay; controller.py: Adam,
gradient clipping to [-1, 1]). The training loop's flags (--steps,
--batch_size, --data, ...) are flags/training_flags.py's, shared with the
detail stage; their coarse defaults are coarse/train.py's DEFAULTS. Naming
rule: flags/__init__.py. Call `define_flags()` before `app.run`.
"""

from absl import flags

from coarse import losses as coarse_losses
from flags import common_flags
from flags import training_flags

FLAGS = flags.FLAGS

SAM_CONFIGS = ('our_star', 'our_star_literal', 'our', 'none')
SAM_REDUCE = ('sum', 'mean')
SAM_TRANSLATIONS = ('recentre', 'paper')


_define = common_flags.define_once

# Eq. 14-18 loss weights; their defaults are coarse/losses.py DEFAULT_WEIGHTS.
_WEIGHT_HELP = {
    'photo': 'w1, photometric L2,1 loss (Chen20 1.0).',
    'landmark': 'w2, 68-landmark loss (Chen20 landmark3d_weight 1.0).',
    'id': 'w3, perceptual identity loss (Chen20 0.8); needs --vgg_weights.',
    'shape_prior': 'w4 * omega_s, identity coefficient prior (Chen20 3.0).',
    'exp_prior': 'w4 * omega_e, expression coefficient prior (Chen20 10.0).',
    'tex_prior': 'Texture coefficient prior (Chen20 1.0).',
    'contour_landmark': 'Chen20\'s second landmark term (landmark2d_weight '
                        '0.5): the 17 jaw landmarks against the fixed jaw '
                        'vertex where it faces the camera, else against the '
                        'nearest vertex of the face\'s outline at its pose '
                        '(sliding, capped; coarse/losses.py). Used with '
                        'landmarks that follow the outline (--data from '
                        'prepare_data --landmarks=dlib, the synthetic set); '
                        'FaceMesh records (fixed jaw points) leave it out.',
    'vertex': 'Not in the paper: supervised loss, mean squared distance '
              '(mm^2) of the predicted model-space mesh to the ground-truth '
              'mesh of synthetic training records (eval/synthetic_sets.py '
              'writes them; photos have none). 0 = off, the paper\'s '
              'self-supervised training; the synthetic benchmark\'s '
              'pre-training sets it (--benchmark_pretrain_vertex_weight).',
}


def define_sam_options(prefix=''):
  """--sam_reduce, --sam_render_gradients and --sam_translation.

  Args:
    prefix: '' for coarse/train.py; 'benchmark_' for the synthetic
      benchmark's copies, which it passes on to its coarse/train.py runs.
  """
  helps = {
      'sam_reduce': 'How the 1 + K identity/expression predictions of an '
                    'image combine (Eq. 4 sums them).',
      'sam_render_gradients': 'Back-propagate through the SAM renders into '
                              'the first prediction. Default: the renders '
                              'are treated as data.',
      'sam_translation': 'Screen translation of the SAM renders: recentre '
                         '(default) = centre each rotated face in the image '
                         '(what the paper\'s translations do for Chen20\'s '
                         'BFM, whose origin lies behind the face); paper = '
                         'the printed translations (Chen20 pixels of a '
                         '300-px screen, scaled to the image), which push '
                         'the face partly out of the frame with our '
                         'models, whose origin is the face\'s centre.',
  }
  if prefix:
    helps = {k: 'coarse/train.py --%s of the SAM runs. %s' % (k, v)
             for k, v in helps.items()}
    # The benchmark compares reductions: a list, one set of SAM runs each.
    _define('list', prefix + 'sam_reduce', ['sum', 'mean'],
            '%s One set of SAM runs per listed reduction (names: %s), all '
            'from the same pre-training and w/o SAM run.' %
            (helps['sam_reduce'], ', '.join(SAM_REDUCE)))
  else:
    _define('enum', 'sam_reduce', 'sum', list(SAM_REDUCE),
            helps['sam_reduce'])
  _define('bool', prefix + 'sam_render_gradients', False,
          helps['sam_render_gradients'])
  _define('enum', prefix + 'sam_translation', 'recentre',
          list(SAM_TRANSLATIONS), helps['sam_translation'])


def define_flags():
  """Defines all coarse-stage flags plus the shared ones (idempotent)."""
  training_flags.define_flags()

  # --- Network ----------------------------------------------------------------
  _define(
      'string', 'vgg_weights', None,
      'VGG-16 weights: initialise the backbone and enable the perceptual '
      'identity loss. The file decides the preprocessing (coarse/vgg16.py): '
      'a Keras .h5 (ImageNet, keras.applications) = caffe input (BGR minus '
      'the ImageNet mean), fc7 after ReLU; a MatConvNet .mat (VGG-Face, '
      'Chen20\'s resources/vgg-face.mat) = RGB minus its average image, fc7 '
      'before ReLU, as Chen20. Without it the backbone starts random with '
      'ImageNet preprocessing and the identity loss is off (logged once).')
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
      'bool', 'coarse_augment', True,
      'Chen20\'s data augmentation of the training images (coarse/'
      'augmentation.py): colour x U(0.8, 1.2) per channel, left-right flip '
      'with probability 0.5 (landmarks renumbered), rescale by U(0.9, 1.1) '
      'about the centre. The paper keeps Chen20\'s settings.')

  # --- Self-augment mechanism (Sec. 3.2, Eq. 1-5, appendix C) -----------------
  _define(
      'enum', 'sam_config', 'our_star', list(SAM_CONFIGS),
      'SAM pose set (coarse/sam_poses.py): our_star = 26 poses, Eq. 2 with i '
      'mod 13 on the second side; our_star_literal = Eq. 2 as printed; our = '
      'the appendix 9-pose 3x3 yaw/pitch grid; none = no SAM (Chen20).')
  define_sam_options()

  # --- Loss weights (Eq. 14-18; Chen20 run_train.sh) --------------------------
  training_flags.define_loss_weights('coarse', coarse_losses.DEFAULT_WEIGHTS,
                                     _WEIGHT_HELP)

  # --- Data preparation (preprocess/prepare_data.py) ------------------------------
  _define('string', 'images', None,
          'prepare_data: folder of input photos (searched recursively).')
  _define('string', 'out', None,
          'prepare_data: output folder for the TFRecord shards and the '
          'per-file report (must not already hold shards).')
  _define('integer', 'max_images', 0,
          'prepare_data: stop after this many usable faces (0 = all; the '
          'paper trains on 1,000 CelebA images).')
  common_flags.define_landmark_flags()  # prepare_data: --landmarks (+ dlib)
  _define(
      'enum', 'multiple_faces', 'largest', ['largest', 'skip'],
      'prepare_data: a photo with several faces: keep the largest face '
      '(logged) or skip the photo (logged).')
  _define(
      'bool', 'cnn_fallback', True,
      'prepare_data with --landmarks=dlib: when dlib\'s HOG detector finds '
      'no face, try dlib\'s CNN (MMOD) detector from face-recognition-models '
      '(finds more turned faces; ~1.5 s per photo). Ignored for facemesh.')
  _define('integer', 'images_per_shard', 500,
          'prepare_data: records per shard.')
