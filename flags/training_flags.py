"""absl flags of the training loop both stages share (coarse/training_loop.py).

coarse/train.py and detail/train.py run the same loop, so its settings are
one flag each, without a stage prefix (see flags/__init__.py). Where the two
stages' defaults differ (Chen20 trains its coarse and fine models with
different schedules) the flag's default is None and the stage's
`training_loop.Defaults` decides; the help text gives both values. Call
`define_flags()` before `app.run`; it is idempotent.
"""

from absl import flags

from flags import common_flags

FLAGS = flags.FLAGS

_define = common_flags.define_once

STRATEGIES = ('default', 'mirrored', 'multi_worker')


def define_flags():
  """Defines the training-loop flags plus the shared ones (idempotent)."""
  common_flags.define_flags()

  # --- Training data ----------------------------------------------------------
  _define(
      'string', 'data', None,
      'TFRecord shards of face crops written by preprocess/prepare_data.py: '
      'a folder, a file or a glob. Without it, training uses synthetic faces '
      'rendered from the --bfm model (preprocess/synthetic_data.py).')
  _define(
      'integer', 'num_images', 1000,
      'Size of the fixed synthetic training set, cycled through (paper Sec. '
      '5.2: 1,000 CelebA images); detail/train.py: 0 = a new random batch '
      'every step. Ignored with --data.')
  _define('integer', 'seed', 0,
          'Seed of the network initialisation, the synthetic set and the '
          'shuffling.')
  _define(
      'bool', 'skip_bad_records', False,
      'With --data: check every record of every shard first, then train on '
      'the readable ones, logging how many were skipped in which shard. '
      'Without it an unreadable record stops the run, naming its shard.')

  # --- Start and resume -------------------------------------------------------
  _define(
      'string', 'init_checkpoint', None,
      'Checkpoint (file or folder) whose network weights start a fresh '
      'training folder. coarse/train.py: a coarse checkpoint, e.g. of a '
      '--sam_config=none (Chen20) run, as the paper does before SAM. '
      'detail/train.py --large_pose: the small-pose RI2ITN (default: the '
      'latest in <--detail_dir>/small_pose). A folder that already holds '
      'checkpoints resumes from them and must have been started the same '
      'way.')
  _define(
      'bool', 'allow_fewer_steps', False,
      'Let a run whose --steps is below the step the training folder already '
      'holds exit successfully, doing nothing. Without it such a run fails, '
      'saying so (a mistyped --steps or --log_dir).')

  # --- Optimisation (Chen20 controller.py / run_train.sh; paper appendix C) ---
  _define('integer', 'steps', None,
          'Training steps. Default: coarse 250 (paper appendix C, SAM '
          'steps) and 200000 with --sam_config=none (the Chen20 '
          'pre-training SAM starts from); detail 20000 small pose, 5000 '
          '--large_pose.')
  _define('integer', 'batch_size', None,
          'Images per step. Default: coarse 6 (paper); detail 4 (Chen20 '
          'fine model: 48; small for CPU runs).')
  _define('float', 'learning_rate', 1e-5,
          'Adam learning rate (Chen20, both stages: 1e-5).')
  _define('integer', 'lr_decay_steps', None,
          'Exponential learning-rate decay period in steps. Default (Chen20): '
          'coarse 2000, detail 5000.')
  _define('float', 'lr_decay_rate', None,
          'Learning-rate factor per decay period. Default (Chen20): coarse '
          '0.98, detail 0.99.')
  _define('float', 'min_learning_rate', None,
          'Learning-rate floor. Default (Chen20): coarse 1e-6, detail 1e-7.')
  _define('float', 'grad_clip', 1.0,
          'Clip every gradient element to [-v, v] (Chen20 1.0); 0 = off.')

  # --- Devices (issue 15) -----------------------------------------------------
  _define(
      'enum', 'strategy', 'default', list(STRATEGIES),
      'tf.distribute strategy: "default" (one device), "mirrored" (every '
      'local GPU, or the --num_cpu_devices logical CPUs), "multi_worker" '
      '(TF_CONFIG workers). --batch_size is the global batch, split across '
      'the devices; checkpoints are written by the chief.')
  _define(
      'integer', 'num_cpu_devices', 0,
      'Split the host CPU into this many logical devices (for --strategy='
      'mirrored without GPUs, e.g. in tests); 0 = leave it whole.')

  # --- Logging and checkpoints ------------------------------------------------
  _define('integer', 'log_every', None,
          'Progress line and scalar summaries every N steps. Default: coarse '
          '10, detail 100 (Chen20).')
  _define('integer', 'image_every', None,
          'TensorBoard image grids every N steps. Default: coarse 50, detail '
          '500 (Chen20).')
  _define('integer', 'save_every', None,
          'Checkpoint every N steps (and at the end, and on Ctrl-C). Default: '
          'coarse 50, detail 1000 (Chen20).')
  _define('integer', 'keep_checkpoints', 3,
          'Checkpoints kept in the training folder.')


def define_loss_weights(prefix, defaults, helps):
  """One float flag <prefix>_<term>_weight per loss term.

  Args:
    prefix: the stage, 'coarse' or 'detail'.
    defaults: the losses module's DEFAULT_WEIGHTS {term: weight}.
    helps: {term: help text}, the same keys.
  """
  for term, weight in defaults.items():
    _define('float', '%s_%s_weight' % (prefix, term), weight, helps[term])
