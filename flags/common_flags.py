"""absl flags shared by several command-line scripts (coarse, detail, eval).

Call `define_flags()` before `app.run`; it is idempotent and leaves alone a
flag another module already defined under the same name.
"""

from absl import flags

FLAGS = flags.FLAGS


def _define(kind, name, default, *args, **kwargs):
  """DEFINE_<kind>(name, default, *args) unless `name` is already defined."""
  if name in FLAGS:
    return
  getattr(flags, 'DEFINE_' + kind)(name, default, *args, **kwargs)


def define_flags():
  """Defines --bfm, --image_size and --log_dir (safe to call repeatedly)."""
  _define(
      'string', 'bfm', 'synthetic',
      'Face model for bfm.load(): "synthetic" (built in, runs anywhere), '
      '"sfm", "ict" or a path to a model .npz (see bfm/README.md).')
  _define(
      'integer', 'image_size', 224,
      'Side of the square network input and render, in pixels (paper and '
      'Chen20: 224 network input; Chen20 renders at 300). '
      'coarse/prepare_data.py: side of the saved face crops.')
  _define('string', 'log_dir', '/tmp/fullpose_face',
          'Folder for checkpoints and TensorBoard summaries.')
