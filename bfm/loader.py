"""bfm.load(name_or_path) returns a MorphableModel; resolve_model() picks one.

Names:
- 'synthetic': the built-in procedural face (bfm.synthetic_face); no files.
- 'sfm', 'ict': the Surrey Face Model and ICT-FaceKit's face, as fetched by
  `python -m bfm.fetch sfm|ict` (NAME.npz) or as their raw files (sfm/ with
  eos's share/ files, ict/ict_face.npz).
- 'bfm2009', 'chen20': a BFM 2009 model converted by the user with
  `python -m bfm.convert bfm2009|chen20 ... --out <models_dir()>/NAME.npz`
  (the model needs a registration, so it cannot be fetched).
- any path ending in .npz: a model converted with `python -m bfm.convert`.

Lookup of a named model: the search folders are `data_dir` when given, else
$FULLPOSE_DATA_DIR when set, else models_dir() (~/.cache/fullpose) followed
by <repo>/../shared/data. In each folder, in that order, NAME.npz (fetched or
converted) comes before the raw files (sfm/sfm_shape_3448.bin + the other eos
files, ict/ict_face.npz); the first hit wins.

Two folders, two functions: models_dir() is where `bfm.fetch` writes
(FULLPOSE_DATA_DIR, else $XDG_CACHE_HOME/fullpose, else ~/.cache/fullpose);
default_data_dir() is where the shared test data (photos, raw model files)
lives (FULLPOSE_DATA_DIR, else <repo>/../shared/data), as the tests expect.

Loaded models are memoised per (name, file), so repeated loads are cheap;
treat their arrays as read-only.
"""

import os

from bfm import npz_format
from bfm import synthetic_face

DATA_DIR_ENV = 'FULLPOSE_DATA_DIR'
# Names looked up in the search folders, best first: resolve_model(None)
# takes the first one present. BFM 2009 (the paper's model, with an albedo
# model) before ICT-FaceKit (100 identity, 53 expression components, 6,706
# vertices) before SFM (63 identity, 6 expression components, 3,448
# vertices); 'synthetic' (always present) last.
SEARCHED_NAMES = ('chen20', 'bfm2009', 'ict', 'sfm')
PREFERENCE = SEARCHED_NAMES + ('synthetic',)
BUILTIN_NAMES = ('synthetic',) + SEARCHED_NAMES
TITLES = {
    'synthetic': 'built-in procedural face, not a statistical face prior',
    'sfm': 'Surrey Face Model',
    'ict': 'ICT-FaceKit face',
    'bfm2009': 'Basel Face Model 2009',
    'chen20': 'Basel Face Model 2009, Chen20 layout',
}
FETCH_HINT = ('for a statistical face model run `python -m bfm.fetch sfm` '
              '(Surrey Face Model, free for non-commercial research; see '
              'bfm/README.md)')

_CACHE = {}


def default_data_dir():
  """The shared data folder: FULLPOSE_DATA_DIR, else <repo>/../shared/data.

  It holds the shared test photos and the raw model files (sfm/, ict/);
  tests find their data here.
  """
  env = os.environ.get(DATA_DIR_ENV)
  if env:
    return env
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(repo), 'shared', 'data')


def models_dir():
  """Where `python -m bfm.fetch` stores models (NAME.npz).

  FULLPOSE_DATA_DIR, else $XDG_CACHE_HOME/fullpose, else ~/.cache/fullpose.
  """
  env = os.environ.get(DATA_DIR_ENV)
  if env:
    return env
  cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(cache, 'fullpose')


def search_dirs(data_dir=None):
  """The folders searched for named models, in order (module docstring)."""
  if data_dir:
    return [os.path.abspath(data_dir)]
  dirs = []
  for d in (models_dir(), default_data_dir()):
    d = os.path.abspath(d)
    if d not in dirs:
      dirs.append(d)
  return dirs


def _raw_path(name, folder):
  """The raw source of `name` under `folder` (what its reader takes)."""
  if name == 'sfm':
    return os.path.join(folder, 'sfm')
  if name == 'ict':
    return os.path.join(folder, 'ict', 'ict_face.npz')
  return None


def _raw_present(name, path):
  if name == 'sfm':
    from bfm import sfm_reader  # pylint: disable=g-import-not-at-top
    return os.path.isfile(os.path.join(path, sfm_reader.SHAPE_FILE))
  return os.path.isfile(path)


def find_model(name, data_dir=None):
  """Where the named model is, without loading it.

  Args:
    name: one of SEARCHED_NAMES.
    data_dir: search only this folder (default: search_dirs()).
  Returns:
    (path, kind): kind 'npz' (path is NAME.npz, fetched or converted) or
    'raw' (path is the sfm/ folder or ict/ict_face.npz); None when absent.
  """
  for folder in search_dirs(data_dir):
    path = os.path.join(folder, name + '.npz')
    if os.path.isfile(path):
      return path, 'npz'
    raw = _raw_path(name, folder)
    if raw and _raw_present(name, raw):
      return raw, 'raw'
  return None


def available_models(data_dir=None):
  """Models present, best first (PREFERENCE order), ending with synthetic.

  Returns:
    list of (name, path, kind); for 'synthetic' path is None and kind
    'builtin'.
  """
  out = []
  for name in SEARCHED_NAMES:
    found = find_model(name, data_dir)
    if found:
      out.append((name,) + found)
  out.append(('synthetic', None, 'builtin'))
  return out


def missing_model_message(name, data_dir=None):
  """One line: where `name` was looked for and the command that gets it."""
  dirs = search_dirs(data_dir)
  raw_shown = {'sfm': os.path.join('sfm', 'sfm_shape_3448.bin') + ' etc.',
               'ict': os.path.join('ict', 'ict_face.npz')}
  looked = ' and '.join(
      os.path.join(d, name + '.npz') +
      (' or %s' % os.path.join(d, raw_shown[name]) if name in raw_shown
       else '') for d in dirs)
  if name == 'sfm':
    how = ('Fetch it with `python -m bfm.fetch sfm` (Surrey Face Model from '
           'patrikhuber/eos, free for non-commercial research), or put the '
           'eos share/ files in a sfm/ folder there, or convert them with '
           '`python -m bfm.convert sfm --sfm_dir DIR --out FILE.npz`.')
  elif name == 'ict':
    how = ('Get it with `python -m bfm.fetch ict --from_dir=DIR`, DIR holding '
           'ict_face.npz, the face extracted from ICT-FaceKit (MIT; `python '
           '-m bfm.fetch ict` says how), or convert it with `python -m '
           'bfm.convert ict --ict_npz FILE --out FILE.npz`.')
  else:
    how = ('BFM 2009 needs a registration at faces.dmi.unibas.ch; convert it '
           'with `python -m bfm.convert %s ... --out %s` (see bfm/README.md).'
           % (name, os.path.join(models_dir(), name + '.npz')))
  return 'bfm.load: no %r model found (looked for %s). %s' % (name, looked,
                                                              how)


def _load_found(name, path, kind):
  if kind == 'npz':
    key = ('npz', path, os.path.getmtime(path))
    if key not in _CACHE:
      _CACHE[key] = npz_format.read(path)
    return _CACHE[key]
  key = (name, path)
  if key not in _CACHE:
    if name == 'sfm':
      from bfm import sfm_reader  # pylint: disable=g-import-not-at-top
      _CACHE[key] = sfm_reader.read_sfm(path)
    else:
      from bfm import ict_reader  # pylint: disable=g-import-not-at-top
      _CACHE[key] = ict_reader.read_ict(path)
  return _CACHE[key]


def load(name_or_path='synthetic', data_dir=None):
  """Loads a face model.

  Args:
    name_or_path: 'synthetic', one of SEARCHED_NAMES, or a path to a
      converted .npz.
    data_dir: search only this folder for named models (see the module
      docstring for the default search).
  Returns:
    bfm.MorphableModel.
  Raises:
    FileNotFoundError: the model is missing; one line saying where it was
      looked for and the command that fetches or converts it.
    bfm.ModelFormatError: a file is malformed (names the file and key).
    ValueError: unknown model name.
  """
  name = str(name_or_path)
  if name == 'synthetic':
    return synthetic_face.generate()
  if name in SEARCHED_NAMES:
    found = find_model(name, data_dir)
    if found is None:
      raise FileNotFoundError(missing_model_message(name, data_dir))
    return _load_found(name, *found)
  if name.endswith('.npz') or os.path.sep in name:
    path = os.path.abspath(name)
    if not os.path.isfile(path):
      raise FileNotFoundError(
          'bfm.load: model file %s does not exist. Convert a model with '
          '`python -m bfm.convert {sfm,ict,bfm2009,chen20} ... --out %s` '
          '(see bfm/README.md), or use bfm.load(\'synthetic\').' %
          (path, name))
    return _load_found('npz', path, 'npz')
  raise ValueError('bfm.load: unknown model %r; use one of %s or a path to a '
                   'converted .npz' % (name, list(BUILTIN_NAMES)))


def describe(model, name=None, path=None, kind=None):
  """'sfm (Surrey Face Model; 3448 vertices, 63 identity / 6 expression /
  0 albedo components) from PATH' for messages; `name` defaults to
  model.name."""
  name = name or model.name
  title = TITLES.get(name)
  sizes = '%d vertices, %d identity / %d expression / %d albedo components' % (
      model.num_vertices, model.num_id, model.num_exp, model.num_tex)
  text = '%s (%s)' % (name, '; '.join(t for t in (title, sizes) if t))
  if path:
    text += ' from %s' % path
    if kind == 'raw':
      text += ' (raw files)'
  return text


def resolve_model(name=None, data_dir=None):
  """The model for a command's --bfm flag, and the line to print about it.

  Args:
    name: a model name or .npz path as bfm.load() takes; None, '' or 'auto'
      picks the best model present (available_models()[0]).
    data_dir: as in load().
  Returns:
    (bfm.MorphableModel, line): `line` is one line for the user, e.g.
      'face model: sfm (Surrey Face Model; ...) from /x/sfm.npz; best of the
      models present (--bfm=NAME picks another)'. When only 'synthetic' is
      present and none was named, the line also says how to fetch a real
      model (FETCH_HINT). Print it once.
  Raises:
    as load(): FileNotFoundError (one line naming the fetch command) for a
    named model that is missing; ModelFormatError for a malformed file
    (also when the best model present is malformed: no silent fallback).
  """
  if name in (None, '', 'auto'):
    best, path, kind = available_models(data_dir)[0]
    model = load(best, data_dir)
    line = 'face model: %s' % describe(model, best, path, kind)
    if best == 'synthetic':
      return model, '%s; %s' % (line, FETCH_HINT)
    return model, ('%s; best of the models present (--bfm=NAME picks '
                   'another)' % line)
  name = str(name)
  model = load(name, data_dir)
  if name in SEARCHED_NAMES:
    path, kind = find_model(name, data_dir)
    return model, 'face model: %s' % describe(model, name, path, kind)
  if name == 'synthetic':
    return model, 'face model: %s' % describe(model, name)
  return model, 'face model: %s' % describe(model, None, os.path.abspath(name),
                                            'npz')
