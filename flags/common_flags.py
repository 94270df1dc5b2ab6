"""absl flags shared by several command-line scripts (coarse, detail, eval).

Call `define_flags()` before `app.run`; it is idempotent and leaves alone a
flag another module already defined under the same name.

--log_dir: absl.logging itself defines a --log_dir flag ("directory to write
logfiles into", default ''), and absl.logging is imported by absl.app, so a
second definition would either fail or be skipped. define_flags() therefore
shares absl's flag: it gives it our default and help text. absl writes log
files there only when a program calls logging.use_absl_log_file(), which
none of ours do.
"""

from absl import flags
from absl import logging  # pylint: disable=unused-import (defines --log_dir)

from coarse import landmark_fit

FLAGS = flags.FLAGS

DEFAULT_LOG_DIR = 'results/coarse'
LOG_DIR_HELP = ('Folder for checkpoints and TensorBoard summaries (shared '
                'with absl.logging\'s --log_dir, which writes no files unless '
                'asked to).')


def define_once(kind, name, default, *args, **kwargs):
  """flags.DEFINE_<kind>(name, default, *args) unless `name` is defined.

  Every flags/ module defines its flags through this, so that scripts which
  combine several modules (e.g. the reconstruct command uses coarse and
  detail flags) share a flag of the same name instead of failing.
  """
  if name in FLAGS:
    return
  getattr(flags, 'DEFINE_' + kind)(name, default, *args, **kwargs)


_define = define_once




def define_landmark_model_flag():
  """--landmark_model: dlib's 68-point predictor file."""
  _define(
      'string', 'landmark_model', None,
      'dlib 68-point shape predictor .dat for --landmarks=dlib (default: the '
      'copy shipped in the face-recognition-models package).')


def define_landmark_flags():
  """--landmarks and --landmark_model: the photo landmark source of the
  reconstruct command and of preprocess/prepare_data.py (which stores it
  with each record, so that coarse training matches the jaw with the same
  convention: fixed vertices for facemesh, dlib's sliding contour)."""
  define_landmark_model_flag()
  _define(
      'enum', 'landmarks', 'facemesh', landmark_fit.LANDMARK_SOURCES,
      'Face detector and 68 landmarks of reconstruct and prepare_data: '
      '"facemesh" (MediaPipe BlazeFace + FaceMesh, works to profile; jaw '
      'points are fixed surface points) or "dlib" (HOG/CNN detector + '
      '68-point predictor; reliable to ~45 deg yaw; jaw points follow the '
      'visible silhouette). prepare_data stores it with the records; '
      'coarse/train.py reads it from --data, not from this flag.')


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
      'preprocess/prepare_data.py: side of the saved face crops.')
  _define('string', 'log_dir', DEFAULT_LOG_DIR, LOG_DIR_HELP)
  log_dir = FLAGS['log_dir']
  if log_dir.help != LOG_DIR_HELP:  # absl.logging's flag: adopt it
    log_dir.help = LOG_DIR_HELP
    if not log_dir.present:
      FLAGS.set_default('log_dir', DEFAULT_LOG_DIR)
