"""bfm.fetch (from a local folder, through a file:// URL, checksum and
missing-file failures leaving nothing behind) and the model lookup of
bfm.loader (order, messages). No network: downloads are file:// URLs."""

import contextlib
import io
import os
import re
import shutil
import tempfile
import unittest
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from bfm import fetch
from bfm import loader
from bfm import sfm_reader

SFM_DIR = os.path.join(bfm.default_data_dir(), 'sfm')
HAS_SFM = all(
    os.path.isfile(os.path.join(SFM_DIR, f)) for f in sfm_reader.FILES)
NO_SFM = ('the eos share/ files are not in %s (shared test data; set '
          'FULLPOSE_DATA_DIR, see ../shared/data/README.md)' % SFM_DIR)
ICT_NPZ = os.path.join(bfm.default_data_dir(), 'ict', 'ict_face.npz')
SFM_NAMES = [f for f, _, _ in fetch.SFM_FILES]


def _quiet(_):
  pass


def _listing(folder):
  return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


class _TempDirs(tf.test.TestCase):

  def _dir(self, *parts):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path

  def _env(self, data_dir=None, cache=None):
    """FULLPOSE_DATA_DIR = data_dir (unset when None), XDG_CACHE_HOME."""
    patch = mock.patch.dict(os.environ)
    patch.start()
    self.addCleanup(patch.stop)
    os.environ.pop(loader.DATA_DIR_ENV, None)
    if data_dir:
      os.environ[loader.DATA_DIR_ENV] = data_dir
    os.environ['XDG_CACHE_HOME'] = cache or self._dir('cache')


@unittest.skipUnless(HAS_SFM, NO_SFM)
class FetchSfmTest(_TempDirs, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.reference = sfm_reader.read_sfm(SFM_DIR)

  def _assert_is_sfm(self, model):
    for key in ('mean_shape', 'id_basis', 'exp_basis', 'uv', 'triangles',
                'landmarks68', 'symmetry'):
      self.assertAllEqual(getattr(model, key), getattr(self.reference, key))

  def _source(self, layout):
    """from_dir / base_url kwargs for each way of holding the eos files."""
    if layout == 'files':
      return dict(from_dir=SFM_DIR)
    if layout == 'eos_checkout':
      root = self._dir('eos')
      shutil.copytree(SFM_DIR, os.path.join(root, 'share'))
      return dict(from_dir=root)
    if layout == 'shared_layout':
      return dict(from_dir=os.path.dirname(SFM_DIR))
    return dict(base_url='file://' + SFM_DIR + '/')  # the download path

  @parameterized.parameters('files', 'eos_checkout', 'shared_layout',
                            'file_url')
  def test_fetch_then_lookup_finds_sfm(self, layout):
    dest = self._dir('data')
    self._env(data_dir=dest)
    path = fetch.fetch('sfm', **self._source(layout), say=_quiet)
    self.assertEqual(path, os.path.join(dest, 'sfm.npz'))
    self.assertEqual(_listing(dest), ['sfm.npz'])  # no staging left
    self._assert_is_sfm(bfm.load('sfm'))
    model, line = loader.resolve_model(None)
    self._assert_is_sfm(model)
    self.assertStartsWith(line, 'face model: sfm (Surrey Face Model;')
    self.assertIn(path, line)
    self.assertNotIn('\n', line)
    source = bfm.load(path).source
    self.assertIn('patrikhuber/eos@%s' % fetch.SFM_COMMIT, source)
    self.assertIn('sha256:%s' % fetch.SFM_FILES[0][2], source)

  def test_cli_prints_licence_and_source(self):
    dest = self._dir('data')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      rc = fetch.main(['sfm', '--from_dir=%s' % SFM_DIR, '--data_dir', dest])
    self.assertEqual(rc, 0)
    text = out.getvalue()
    self.assertIn('free for use for non-commercial purposes', text)
    self.assertIn('patrikhuber/eos@%s' % fetch.SFM_COMMIT, text)
    for name in SFM_NAMES:
      self.assertRegex(text, r'%s .*SHA-256 \w+ ok' % name)
    self.assertIn('wrote %s' % os.path.join(dest, 'sfm.npz'), text)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      rc = fetch.main(['sfm', '--from_dir=%s' % SFM_DIR, '--data_dir', dest])
    self.assertEqual(rc, 0)
    self.assertIn('already present', out.getvalue())

  @parameterized.parameters('from_dir', 'file_url')
  def test_checksum_mismatch_keeps_the_old_model(self, how):
    dest = self._dir('data')
    good = fetch.fetch('sfm', data_dir=dest, from_dir=SFM_DIR, say=_quiet)
    with open(good, 'rb') as f:
      before = f.read()
    bad = self._dir('bad')
    for name in SFM_NAMES:
      shutil.copy(os.path.join(SFM_DIR, name), bad)
    with open(os.path.join(bad, sfm_reader.LANDMARKS_FILE), 'a') as f:
      f.write('\n')  # still a valid mapping, different bytes
    source = (dict(from_dir=bad) if how == 'from_dir' else
              dict(base_url='file://%s/' % bad))
    with self.assertRaisesRegex(
        fetch.FetchError, r'ibug_to_sfm\.txt: SHA-256 mismatch .*expected '
        '810810c4.*nothing was written$'):
      fetch.fetch('sfm', data_dir=dest, force=True, say=_quiet, **source)
    self.assertEqual(_listing(dest), ['sfm.npz'])
    with open(good, 'rb') as f:
      self.assertEqual(f.read(), before)


class FetchFailureTest(_TempDirs, parameterized.TestCase):
  """Failures that need no shared data: one line, nothing written."""

  def _garbage_share(self):
    folder = self._dir('garbage')
    for name in SFM_NAMES:
      with open(os.path.join(folder, name), 'w') as f:
        f.write('not the eos file\n')
    return folder

  def test_checksum_mismatch_from_dir(self):
    dest = self._dir('data')
    with self.assertRaisesRegex(
        fetch.FetchError,
        r'^sfm: \S+sfm_shape_3448\.bin: SHA-256 mismatch \(got \w+, expected '
        r'43750338\w+, eos d48d903 share/\); nothing was written$'):
      fetch.fetch('sfm', data_dir=dest, from_dir=self._garbage_share(),
                  say=_quiet)
    self.assertEqual(_listing(dest), [])

  def test_checksum_mismatch_download(self):
    dest = self._dir('data')
    url = 'file://%s/' % self._garbage_share()
    with self.assertRaisesRegex(fetch.FetchError,
                                r'%ssfm_shape_3448\.bin: SHA-256 mismatch' %
                                url):
      fetch.fetch('sfm', data_dir=dest, base_url=url, say=_quiet)
    self.assertEqual(_listing(dest), [])

  def test_download_error(self):
    dest = self._dir('data')
    url = 'file://%s/' % os.path.join(self._dir('empty'), 'nowhere')
    with self.assertRaisesRegex(
        fetch.FetchError,
        r'^could not download %ssfm_shape_3448\.bin \(.*\); nothing was '
        r'written$' % url):
      fetch.fetch('sfm', data_dir=dest, base_url=url, say=_quiet)
    self.assertEqual(_listing(dest), [])

  def test_missing_files(self):
    dest = self._dir('data')
    src = self._garbage_share()
    os.remove(os.path.join(src, sfm_reader.CONTOURS_FILE))
    os.remove(os.path.join(src, sfm_reader.SYMMETRY_FILE))
    with self.assertRaisesRegex(
        fetch.FetchError,
        r'^sfm: sfm_model_contours\.json, sfm_reference_symmetry\.txt '
        r'missing in \S+ \(--from_dir needs .*\); nothing was written$'):
      fetch.fetch('sfm', data_dir=dest, from_dir=src, say=_quiet)
    self.assertEqual(_listing(dest), [])
    with self.assertRaisesRegex(fetch.FetchError, 'does not exist'):
      fetch.fetch('sfm', data_dir=dest, from_dir=os.path.join(src, 'no'),
                  say=_quiet)

  def test_cli_error_is_one_line(self):
    dest = self._dir('data')
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
      rc = fetch.main(['sfm', '--from_dir', self._garbage_share(),
                       '--data_dir', dest])
    self.assertEqual(rc, 1)
    lines = err.getvalue().splitlines()
    self.assertLen(lines, 1)
    self.assertRegex(lines[0], r'^bfm\.fetch: error: sfm: .*SHA-256 mismatch')
    self.assertEqual(_listing(dest), [])

  def test_ict_without_from_dir_says_why_and_writes_nothing(self):
    dest = os.path.join(self._dir('data'), 'never_created')
    with self.assertRaisesRegex(
        fetch.FetchError,
        r'^ICT-FaceKit is not downloaded: .*154 OBJ files.*395 MB.*'
        r'python -m bfm\.fetch ict --from_dir=DIR'):
      fetch.fetch('ict', data_dir=dest, say=_quiet)
    self.assertFalse(os.path.exists(dest))

  def test_ict_bad_extract(self):
    dest = self._dir('data')
    with self.assertRaisesRegex(fetch.FetchError, r'^ict: no ict_face\.npz'):
      fetch.fetch('ict', data_dir=dest, from_dir=self._dir('src'), say=_quiet)
    src = self._dir('src2')
    np.savez(os.path.join(src, 'ict_face.npz'), mean=np.zeros([4, 3]))
    with self.assertRaisesRegex(
        fetch.FetchError, r'^ict: \S+src2/ict_face\.npz: .*nothing was '
        'written$'):
      fetch.fetch('ict', data_dir=dest, from_dir=src, say=_quiet)
    self.assertEqual(_listing(dest), [])

  @unittest.skipUnless(os.path.isfile(ICT_NPZ),
                       '%s not found (shared test data)' % ICT_NPZ)
  def test_ict_from_dir(self):
    dest = self._dir('data')
    self._env(data_dir=dest)
    lines = []
    fetch.fetch('ict', from_dir=os.path.dirname(ICT_NPZ), say=lines.append)
    self.assertEqual(_listing(dest), ['ict.npz'])
    self.assertIn("ok (the project's reference extract)", '\n'.join(lines))
    self.assertIn('MIT', '\n'.join(lines))
    model, line = loader.resolve_model(None)
    self.assertEqual(model.num_vertices, 6706)
    self.assertStartsWith(line, 'face model: ict (ICT-FaceKit face;')


class LookupTest(_TempDirs, parameterized.TestCase):
  """Lookup order and messages, with stand-in models (the synthetic face
  saved under the searched names)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.stand_in = bfm.load('synthetic')

  def _put(self, folder, *names):
    for name in names:
      self.stand_in.save(os.path.join(folder, name + '.npz'))

  def test_only_synthetic_says_how_to_fetch(self):
    self._env(data_dir=self._dir('empty'))
    self.assertEqual(loader.available_models(),
                     [('synthetic', None, 'builtin')])
    model, line = loader.resolve_model(None)
    self.assertIs(model, bfm.load('synthetic'))
    self.assertNotIn('\n', line)
    self.assertEqual(line.count('python -m bfm.fetch sfm'), 1)
    self.assertStartsWith(line, 'face model: synthetic (built-in procedural '
                          'face, not a statistical face prior;')
    _, named = loader.resolve_model('synthetic')
    self.assertNotIn('bfm.fetch', named)  # asked for: no advice

  @parameterized.parameters(
      (['sfm'], ['sfm']),
      (['sfm', 'ict'], ['ict', 'sfm']),
      (['sfm', 'bfm2009'], ['bfm2009', 'sfm']),
      (['ict', 'chen20', 'sfm', 'bfm2009'],
       ['chen20', 'bfm2009', 'ict', 'sfm']),
  )
  def test_order(self, present, expected):
    store = self._dir('store')
    self._env(data_dir=store)
    self._put(store, *present)
    found = loader.available_models()
    self.assertEqual([n for n, _, _ in found], expected + ['synthetic'])
    self.assertEqual(found[0][1:], (os.path.join(store, expected[0] + '.npz'),
                                    'npz'))
    _, line = loader.resolve_model(None)
    self.assertStartsWith(line, 'face model: %s (' % expected[0])
    self.assertIn('best of the models present', line)
    self.assertNotIn('bfm.fetch', line)

  def test_npz_before_raw_files(self):
    store = self._dir('store')
    os.makedirs(os.path.join(store, 'sfm'))
    with open(os.path.join(store, 'sfm', sfm_reader.SHAPE_FILE), 'wb') as f:
      f.write(b'raw')
    self.assertEqual(loader.find_model('sfm', store),
                     (os.path.join(store, 'sfm'), 'raw'))
    self._put(store, 'sfm')
    self.assertEqual(loader.find_model('sfm', store),
                     (os.path.join(store, 'sfm.npz'), 'npz'))
    self.assertIsNone(loader.find_model('ict', store))

  def test_default_folders(self):
    cache = self._dir('xdg')
    self._env(cache=cache)
    store = os.path.join(cache, 'fullpose')
    self.assertEqual(loader.models_dir(), store)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(loader.__file__)))
    shared = os.path.join(os.path.dirname(repo), 'shared', 'data')
    self.assertEqual(bfm.default_data_dir(), shared)  # tests' data, unchanged
    self.assertEqual(loader.search_dirs(), [store, os.path.abspath(shared)])
    os.makedirs(store)
    self._put(store, 'sfm')  # fetched: before any raw sfm/ in shared data
    self.assertEqual(loader.find_model('sfm'),
                     (os.path.join(store, 'sfm.npz'), 'npz'))
    env_dir = self._dir('env')
    self._env(data_dir=env_dir, cache=cache)  # FULLPOSE_DATA_DIR: only it
    self.assertEqual(loader.models_dir(), env_dir)
    self.assertEqual(loader.search_dirs(), [env_dir])
    self.assertIsNone(loader.find_model('sfm'))

  @parameterized.parameters(
      ('sfm', r'`python -m bfm\.fetch sfm`'),
      ('ict', r'`python -m bfm\.fetch ict --from_dir=DIR`'),
      ('bfm2009', r'registration.*`python -m bfm\.convert bfm2009'),
  )
  def test_missing_named_model_says_the_command(self, name, command):
    empty = self._dir('empty')
    self._env(data_dir=empty)
    with self.assertRaisesRegex(
        FileNotFoundError, r"^bfm\.load: no '%s' model found \(looked for "
        r'%s\.npz.*\)\. .*%s' % (name, re.escape(os.path.join(empty, name)),
                                  command)
    ) as raised:
      loader.resolve_model(name)
    self.assertNotIn('\n', str(raised.exception))


if __name__ == '__main__':
  tf.test.main()
