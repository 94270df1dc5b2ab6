"""absl flags of the synthetic full-pose benchmark, eval/synthetic_benchmark.py.

The benchmark's own flags are prefixed `benchmark_` (except `--paper_scale`,
named in issue 6) so that the benchmark can live next to the coarse/eval flags
in one process; the face model is the shared --bfm (naming rule:
flags/__init__.py).
Defaults are the CPU setting (two cores, well under an hour); `--paper_scale`
replaces the settings marked [paper_scale] with the paper's (appendix C/D:
1,000 training images, 224-px images, a full-width VGG-16, batch 6, 250 SAM
steps after a long Chen20 pre-training). Call `define_flags()` before
`app.run`; it is idempotent.
"""

from absl import flags

from eval import protocols
from flags import coarse_flags
from flags import common_flags
from flags import eval_flags

FLAGS = flags.FLAGS

_define = common_flags.define_once

# The settings --paper_scale replaces with the paper's (appendix C and D.0.1),
# filled by define_flags(): flag -> (paper value, what the paper says).
PAPER_SCALE = {}

# Face models the benchmark uses when --bfm is not given, in order of
# preference: the first one found in the shared data (bfm/loader.py), else
# the built-in 'synthetic' model (no download). SFM first: 3,448 vertices
# render and train faster than ICT's 6,706.
DEFAULT_MODELS = ('sfm', 'ict')


def define_scaled(kind, name, default, paper, text, table=None):
  """A flag --paper_scale sets; paper = (its value, what the paper says),
  recorded in `table` (default: this benchmark's PAPER_SCALE). Its help
  starts with "[paper_scale: <value>]"."""
  (PAPER_SCALE if table is None else table)[name] = paper
  _define(kind, name, default, '[paper_scale: %s] %s' % (paper[0], text))


_define_scaled = define_scaled


def apply_paper_scale(table):
  """Sets the paper values of `table`'s flags not given on the command
  line (--paper_scale)."""
  for name, (value, _) in table.items():
    if not FLAGS[name].present:
      FLAGS[name].value = value


def scale_shortcuts(table):
  """'--flag=value (paper: ...)' for every flag of `table` whose value is
  not the paper's."""
  out = []
  for name, (paper_value, what) in table.items():
    value = FLAGS[name].value
    if value != paper_value:
      out.append('--%s=%s (paper: %s)' % (name, value, what))
  return out


def define_paper_scale():
  """--paper_scale, shared by the benchmarks (idempotent)."""
  _define(
      'bool', 'paper_scale', False,
      'Use the paper\'s settings for every flag marked [paper_scale] (needs a '
      'GPU: hours). Flags given explicitly on the command line still win.')


def names():
  """Names of the flags a benchmark result records (prefix 'benchmark_',
  plus 'paper_scale' and 'bfm'); by name because define_once makes absl
  attribute the flags to flags.common_flags, not to this module."""
  return sorted(n for n in FLAGS if n.startswith('benchmark_') or
                n in ('paper_scale', 'bfm'))


def define_flags():
  """Defines all benchmark flags plus the shared ones (idempotent)."""
  common_flags.define_flags()
  # --- Scale ----------------------------------------------------------------
  define_paper_scale()

  # --- Data sets (cached under --benchmark_cache_dir; face model: --bfm,
  # the same for ground truth and predictions) -------------------------------
  _define(
      'enum', 'benchmark_faces', 'auto', ['auto', 'textured', 'model'],
      'How training and test faces look: "textured" = photo-like renders '
      '(real skin unwrapped from the shared sample photos, disjoint photos '
      'for training and test skins, a head stand-in, random SH lighting, '
      'photo-patch backgrounds; eval/synthetic_photos.py); "model" = the '
      'model\'s own albedo renders over smooth backgrounds '
      '(preprocess/synthetic_data.py); "auto" = textured when the sample '
      'photos are found (FULLPOSE_DATA_DIR/faces), else model.')
  _define(
      'string', 'benchmark_cache_dir', '/tmp/fullpose_synthetic_benchmark',
      'Folder for the generated sets (one sub-folder per setting, reused when '
      'the settings match) and the training runs.')
  _define('integer', 'benchmark_seed', 0,
          'Seed of the sets (train: seed, small-pose test: seed + 1, '
          'large-pose test: seed + 2) and of the training data order.')
  _define_scaled('integer', 'benchmark_image_size', 64,
                 (224, 'images and network input 224 px'),
                 'Side of the square images in pixels (render, network '
                 'input, SAM renders).')
  _define_scaled('integer', 'benchmark_train_images', 1000,
                 (1000, '1,000 CelebA training images'),
                 'Training images (paper: 1,000 CelebA images).')
  _define_scaled(
      'integer', 'benchmark_test_images', 100,
      (200, 'test images per split (the paper uses 20-135 real subjects per '
       'dataset)'), 'Images in EACH test set (small and large pose).')
  _define(
      'string', 'benchmark_train_yaw', 'celeba',
      'Yaw distribution of the training set: "celeba" (normal, sd 15 deg, '
      'clipped to +-75: mostly |yaw| < 30, few large poses, like CelebA), '
      '"uniform" (-90..90), "frontal" (0) or "LOW:HIGH" degrees (uniform). '
      'Its histogram is printed.')
  _define('float', 'benchmark_small_max_yaw', 30.0,
          'Small-pose test set: |yaw| uniform in [0, this) degrees, random '
          'sign (eval/\'s --yaw_threshold_deg default).')
  _define('list', 'benchmark_large_yaw', ['45', '90'],
          'Large-pose test set: |yaw| uniform in [LOW, HIGH] degrees, random '
          'sign.')

  # --- Training (python coarse/train.py subprocesses) -----------------------
  _define(
      'list', 'benchmark_sam_configs', ['none', 'our', 'our_star'],
      'SAM configs compared after the shared pre-training (table rows; '
      'names of flags/coarse_flags.py --sam_config).')
  _define_scaled(
      'integer', 'benchmark_pretrain_steps', 4000,
      (200000, 'Chen20 pre-training 200,000 steps'),
      'Steps of the shared no-SAM (Chen20) pre-training every compared run '
      'starts from (paper: 200,000). With the supervised vertex loss, on '
      'the validation splits (sets of --benchmark_seed=100 and 200; README) '
      '4,000 steps (decay period 400) gave the w/o SAM row 0.833x and '
      '0.833x the mean face\'s small-pose NME, 2,000 steps (period 200) '
      '0.836x and 0.847x; a quarter of the pre-training\'s time more for a '
      'small, consistent gain.')
  _define_scaled(
      'integer', 'benchmark_pretrain_lr_decay_steps', 400,
      (2000, 'Chen20 learning-rate decay period 2,000 steps'),
      'coarse/train.py --lr_decay_steps of the pre-training (exponential '
      'decay period in steps): 400 with 4,000 steps keeps the schedule '
      'that 200 gave 2,000 steps (0.11x the start rate at the end).')
  _define_scaled(
      'float', 'benchmark_pretrain_lr_decay_rate', 0.8,
      (0.98, 'Chen20 learning-rate factor 0.98 per period'),
      'coarse/train.py --lr_decay_rate of the pre-training: with a period '
      'of a tenth of the steps, the rate ends at 0.11x the start rate. '
      'Chosen on a validation split (the sets of --benchmark_seed=100, never '
      'the test sets; eval/results/synthetic/HISTORY.md) for the '
      'self-supervised pre-training: two pre-trainings with this decay '
      'reached 0.90x and 0.92x the mean '
      'face\'s small-pose NME, four without it 0.88x-1.01x (mean 0.95x); the '
      'spread between training seeds is as large as the gain, so this is a '
      'weak choice.')
  _define_scaled(
      'float', 'benchmark_pretrain_vertex_weight', 1.0,
      (0.0, 'self-supervised pre-training, no ground-truth shape'),
      'coarse/train.py --coarse_vertex_weight of the pre-training only: a '
      'supervised loss on the training faces\' ground-truth meshes (mm^2) '
      'added to Chen20\'s losses, so that the network SAM fine-tunes has '
      'learned identity (the compared runs train self-supervised, as the '
      'paper). Self-supervised pre-training at this scale learned no '
      'identity: per-component correlation of predicted and true identity '
      '~0 (README). On the validation split (sets of --benchmark_seed=100) '
      'weight 1 and 5 gave the w/o SAM row 0.84x the mean face\'s '
      'small-pose NME (2.035 / 2.045 vs 2.435 mm): the lower one. 0 = the '
      'paper\'s self-supervised pre-training.')
  _define_scaled(
      'float', 'benchmark_contour_landmark_weight', 0.5,
      (0.5, "Chen20's second landmark term, landmark2d_weight 0.5"),
      'coarse/train.py --coarse_contour_landmark_weight of every run (the '
      'pre-training and the compared runs alike). On the validation split '
      '0 against 0.5 gave 0.88x / 1.01x against 0.95x / 0.97x the mean '
      'face (two training seeds): no clear difference, so Chen20\'s value.')
  _define_scaled('integer', 'benchmark_steps', 250,
                 (250, 'SAM training 250 steps'),
                 'Steps of each compared run (paper appendix C: 250).')
  _define_scaled('integer', 'benchmark_batch_size', 6, (6, 'batch size 6'),
                 'Input images per step of every run (paper: 6).')
  _define_scaled('float', 'benchmark_vgg_width', 0.25,
                 (1.0, 'full-width VGG-16'),
                 'VGG-16 channel width multiplier (1 = VGG-16).')
  _define_scaled(
      'float', 'benchmark_pretrain_learning_rate', 3e-4,
      (1e-5, 'Chen20 learning rate 1e-5'),
      'Adam learning rate of the pre-training (Chen20: 1e-5, for 200,000 '
      'steps from ImageNet weights; the CPU setting starts from random '
      'weights with far fewer steps: 3e-4 lowered the loss faster than 1e-3 '
      'in trials at 64 px).')
  _define_scaled('float', 'benchmark_learning_rate', 1e-5,
                 (1e-5, 'Chen20 learning rate 1e-5'),
                 'Adam learning rate of the compared runs (Chen20 / paper: '
                 '1e-5).')
  coarse_flags.define_sam_options('benchmark_')
  _define('string', 'benchmark_vgg_weights', None,
          'Keras VGG-16 .h5 weights for the pre-training (coarse/train.py '
          '--vgg_weights; needs --benchmark_image_size=224 and '
          '--benchmark_vgg_width=1). Default: random initialisation.')
  _define('bool', 'benchmark_reuse_runs', False,
          'Reuse finished training runs of the same setting (their recorded '
          'wall times are reported) instead of training afresh.')

  # --- Evaluation -----------------------------------------------------------
  _define('enum', 'benchmark_nme_variant', 'fg2018',
          sorted(protocols.NME_VARIANTS),
          'eval/protocols.py NME variant (the ground-truth mesh is the scan).')
  eval_flags.define_aggregate('benchmark_aggregate', 'a test set')
  _define('integer', 'benchmark_eval_batch_size', 8,
          'Test images per network call during evaluation.')

  # --- Output ---------------------------------------------------------------
  _define('string', 'benchmark_results_dir', 'eval/results/synthetic',
          'Folder for the results JSON and Markdown (relative paths are '
          'relative to the repository root). A sub-folder of eval/results '
          'because eval/tables.py reads every *.json directly in '
          'eval/results as an eval/evaluate.py result.')
  _define('string', 'benchmark_name', 'synthetic_benchmark',
          'Base name of the results files (<name>.json, <name>.md).')
