"""bfm.load(name_or_path): the one entry point that returns a MorphableModel.

- 'synthetic' (default): the built-in procedural face (bfm.synthetic_face).
- 'sfm': the Surrey Face Model, read from <data_dir>/sfm/ (eos files).
- 'ict': ICT-FaceKit's face, read from <data_dir>/ict/ict_face.npz.
- any path ending in .npz: a model converted with `python -m bfm.convert`.

<data_dir> is the `data_dir` argument, else the FULLPOSE_DATA_DIR environment
variable, else <repo>/../shared/data. Loaded models are memoised per
(name, resolved path), so repeated loads are cheap; treat their arrays as
read-only.
"""

import os

from bfm import npz_format
from bfm import synthetic_face

DATA_DIR_ENV = 'FULLPOSE_DATA_DIR'
BUILTIN_NAMES = ('synthetic', 'sfm', 'ict')

_CACHE = {}


def default_data_dir():
  """FULLPOSE_DATA_DIR, else <repo>/../shared/data."""
  env = os.environ.get(DATA_DIR_ENV)
  if env:
    return env
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(repo), 'shared', 'data')


def load(name_or_path='synthetic', data_dir=None):
  """Loads a face model.

  Args:
    name_or_path: 'synthetic', 'sfm', 'ict', or a path to a converted .npz.
    data_dir: folder holding sfm/ and ict/ (see the module docstring).
  Returns:
    bfm.MorphableModel.
  Raises:
    FileNotFoundError: the model's files are missing (the message says what
      to download and which converter to run).
    bfm.ModelFormatError: a file is malformed (names the file and key).
    ValueError: unknown model name.
  """
  name = str(name_or_path)
  if name == 'synthetic':
    return synthetic_face.generate()
  if name in ('sfm', 'ict'):
    folder = os.path.abspath(data_dir or default_data_dir())
    key = (name, folder)
    if key not in _CACHE:
      if name == 'sfm':
        from bfm import sfm_reader  # pylint: disable=g-import-not-at-top
        _CACHE[key] = sfm_reader.read_sfm(os.path.join(folder, 'sfm'))
      else:
        from bfm import ict_reader  # pylint: disable=g-import-not-at-top
        _CACHE[key] = ict_reader.read_ict(
            os.path.join(folder, 'ict', 'ict_face.npz'))
    return _CACHE[key]
  if name.endswith('.npz') or os.path.sep in name:
    path = os.path.abspath(name)
    if not os.path.isfile(path):
      raise FileNotFoundError(
          'bfm.load: model file %s does not exist. Convert a model with '
          '`python -m bfm.convert {sfm,ict,bfm2009,chen20} ... --out %s` '
          '(see bfm/README.md), or use bfm.load(\'synthetic\').' %
          (path, name))
    key = ('npz', path, os.path.getmtime(path))
    if key not in _CACHE:
      _CACHE[key] = npz_format.read(path)
    return _CACHE[key]
  raise ValueError('bfm.load: unknown model %r; use one of %s or a path to a '
                   'converted .npz' % (name, list(BUILTIN_NAMES)))
