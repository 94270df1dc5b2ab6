"""absl flags of eval/fit_benchmark.py (the cross-model full-pose fit
benchmark). Call `define_flags()` before `app.run`; it is idempotent."""

from absl import flags

from flags import common_flags
from flags import reconstruct_flags

FLAGS = flags.FLAGS

_define = common_flags.define_once


def define_flags():
  """The benchmark's own flags plus the reconstruct command's (the fit runs
  through the command's pipeline with its settings: --fit_steps,
  --landmarks, ...)."""
  reconstruct_flags.define_flags()
  FLAGS.set_default('fit', True)  # the benchmark measures --fit by default
  # --- What is rendered and fitted --------------------------------------------
  _define(
      'list', 'fit_benchmark_pairs', ['ict:sfm', 'sfm:ict', 'ict:ict',
                                      'sfm:sfm'],
      'RENDER:FIT model pairs: faces of RENDER (random identity and '
      'expression, real skin) are reconstructed with FIT. Pairs with two '
      'different models are the cross-model measurements; RENDER:RENDER is '
      'the in-model reference.')
  _define('integer', 'fit_benchmark_images_per_bin', 3,
          'Rendered photos per yaw bin and yaw sign (six bins of 15 degrees, '
          'both signs) and model pair.')
  _define('integer', 'fit_benchmark_image_size', 384,
          'Side of the rendered photos in pixels.')
  _define('integer', 'fit_benchmark_seed', 0,
          'Seed of identities, expressions, poses, lighting, skins and '
          'backgrounds (the same for every run with the same flags).')
  _define('float', 'fit_benchmark_max_pitch_deg', 20.0,
          'Pitch is uniform in [-v, v] degrees.')
  _define('float', 'fit_benchmark_max_roll_deg', 10.0,
          'Roll is uniform in [-v, v] degrees.')
  # --- Outputs ------------------------------------------------------------------
  _define('string', 'fit_benchmark_out', 'eval/results/fit',
          'Folder for fit_benchmark.json and fit_benchmark.md.')
  _define('string', 'fit_benchmark_name', 'fit_benchmark',
          'File stem of the results.')
  _define('string', 'fit_benchmark_work_dir', None,
          'Folder for the rendered photos (default: a temporary folder, '
          'deleted at the end).')
