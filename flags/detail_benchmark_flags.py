"""absl flags of the detail-stage benchmark, eval/detail_benchmark.py.

The benchmark's own flags are prefixed `detail_benchmark_`; `--paper_scale`
and the face model `--bfm` are shared with the coarse benchmark
(flags/benchmark_flags.py; naming rule: flags/__init__.py). The detail
stage's own flags (flags/detail_flags.py: loss weights, --ri2itn_channels,
--detail_displacement_scale_mm, ...) are the training settings of every
row, so one name means one thing in both commands; the benchmark sets per
row only what a row changes (--ri2itn_passes, --ri2itn_share_weights,
--large_pose, --large_pose_padding).
Defaults are the CPU setting (two idle cores, under an hour);
`--paper_scale` replaces the settings marked [paper_scale] with the paper's
(appendix C; Chen20's fine model). Call `define_flags()` before `app.run`;
it is idempotent.
"""

from absl import flags

from flags import benchmark_flags
from flags import common_flags
from flags import detail_flags

FLAGS = flags.FLAGS

_define = common_flags.define_once

# The settings --paper_scale replaces with the paper's: flag -> (paper value,
# what the paper says). Filled by define_flags().
PAPER_SCALE = {}


def _scaled(kind, name, default, paper, text):
  benchmark_flags.define_scaled(kind, name, default, paper, text,
                                table=PAPER_SCALE)


def names():
  """Names of the flags a result records: the benchmark's own, --bfm,
  --paper_scale and the detail stage's training flags it passes on."""
  shared = ('paper_scale', 'bfm', 'ri2itn_stem_channels',
            'ri2itn_feedback_chains', 'ri2itn_input_mode',
            'ri2itn_shading_input',
            'detail_displacement_scale_mm', 'detail_photo_skin_mask',
            'large_pose_yaw_threshold_deg')
  return sorted(n for n in FLAGS if n.startswith('detail_benchmark_') or
                n in shared or (n.startswith('detail_') and
                                n.endswith('_weight')))


def define_flags():
  """Defines the benchmark flags plus the shared ones (idempotent)."""
  detail_flags.define_flags()
  benchmark_flags.define_paper_scale()

  # --- Data: synthetic faces with known wrinkles -----------------------------
  _define('integer', 'detail_benchmark_seed', 0,
          'Seed of the training stream (and of every network\'s '
          'initialisation), the small-pose test set (seed + 1001) and the '
          'large-pose test set (seed + 1002).')
  _scaled('integer', 'detail_benchmark_image_size', 128,
          (300, 'Chen20 fine stage 300-px images'),
          'Side of the square images in pixels (training and test). At 64 '
          'px a face is narrower (~35 px) than the 64-texel UV map and even '
          'a per-image fit of the map recovers only ~30% of the wrinkles.')
  _scaled('integer', 'detail_benchmark_uv_size', 64,
          (512, 'UV maps 512 x 512'), 'UV map side in texels.')
  _scaled('integer', 'detail_benchmark_train_images', 200,
          (1000, '1,000 CelebA training images'),
          'Training faces (a fixed set, cycled; the yaw distribution of '
          'preprocess/synthetic_data.py: mostly near frontal, like CelebA).')
  _scaled('integer', 'detail_benchmark_test_images', 40,
          (200, 'not stated; 200 test faces per split'),
          'Test faces in EACH split (small and large pose).')
  _define('float', 'detail_benchmark_wrinkles_mm', 2.0,
          'Peak depth (mm) of the known random wrinkle displacement of '
          'training and test faces (detail/synthetic_details.py; the detail '
          'stage\'s --detail_synthetic_wrinkles_mm).')
  _define('float', 'detail_benchmark_small_max_yaw', 30.0,
          'Small-pose test set: |yaw| uniform in [0, this) degrees.')
  _define('list', 'detail_benchmark_large_yaw', ['45', '90'],
          'Large-pose test set: |yaw| uniform in [LOW, HIGH] degrees, random '
          'sign.')

  # --- Training (detail/train.py, in this process) ---------------------------
  _scaled('integer', 'detail_benchmark_steps', 1200,
          (20000, 'small-pose training 20,000 steps'),
          'Small-pose training steps of every small-pose row.')
  _scaled('integer', 'detail_benchmark_large_steps', 100,
          (5000, 'large-pose training 5,000 steps'),
          'Large-pose training steps (with and without the padding), from '
          'the t = 2 small-pose network.')
  _scaled('list', 'detail_benchmark_channels',
          ['16', '32', '64', '128', '128', '128'],
          (['chen20'], 'Chen20\'s widths 32, 64, 128, 256, 512, ... (17.0 M '
           'parameters at UV 64, t = 2; 2.7 s a step on 2 CPU cores)'),
          'Widths of the stride-2 convolutions of every row\'s RI2ITN (the '
          'detail stage\'s --ri2itn_channels; "chen20" = its default), '
          'log2(UV size) entries.')
  _scaled('integer', 'detail_benchmark_batch_size', 4, (4, 'batch size 4'),
          'Training images per step.')
  _scaled('float', 'detail_benchmark_learning_rate', 1e-3,
          (1e-5, 'Chen20 learning rate 1e-5'),
          'Adam learning rate of every row (Chen20: 1e-5 over 20,000 steps; '
          'the CPU setting trains ~50x fewer steps).')
  _define('list', 'detail_benchmark_rows',
          ['zero', 't1', 't2', 't2_unshared', 't3', 'large_as_is',
           'large_no_padding', 'large_padding'],
          'Rows to run (names in eval/detail_benchmark.py ROWS). The large-'
          'pose rows also train "t2" (their network or starting point).')
  _define('bool', 'detail_benchmark_reuse_runs', False,
          'Reuse finished training runs of the same setting under '
          '--detail_benchmark_cache_dir (their recorded wall times are '
          'reported) instead of training afresh.')
  _define('string', 'detail_benchmark_cache_dir',
          '/tmp/fullpose_detail_benchmark',
          'Folder of the training runs (one sub-folder per row and setting).')

  # --- Scoring and output ----------------------------------------------------
  _define('float', 'detail_benchmark_lowpass_texels', 4.0,
          'Sigma (texels at UV 64; scaled with the UV size) of the Gaussian '
          'blur whose output is removed before the detail score '
          '(detail_mae_mm): the wrinkles have wavelengths of 4-10 texels at '
          'UV 64.')
  _define('integer', 'detail_benchmark_eval_batch_size', 8,
          'Test images per network call.')
  _define('integer', 'detail_benchmark_figure_faces', 3,
          'Test faces per split in the Figure-7-like picture.')
  _define('string', 'detail_benchmark_results_dir', 'eval/results/detail',
          'Folder of the results JSON, Markdown and picture (relative paths '
          'are relative to the repository root).')
  _define('string', 'detail_benchmark_name', 'detail_benchmark',
          'Base name of the results files (<name>.json, .md, .png).')
