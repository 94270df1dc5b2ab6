"""The reconstruct command picks the best face model present and says which.

A fresh machine: FULLPOSE_DATA_DIR points at an empty folder (so neither
../shared/data nor ~/.cache/fullpose is searched). With nothing fetched the
command runs on the built-in face and says once how to fetch a real model;
after `python -m bfm.fetch sfm --from_dir=...` the same command, with no
--bfm, reconstructs with SFM and says so.
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import tensorflow as tf

from bfm import fetch
from tests import test_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ['--fit', '--landmarks=dlib', '--image_size=128', '--fit_detail_steps=1',
        '--fit_uv_size=32', '--texture_size=64']


class ModelChoiceTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    test_utils.require_rasterizer()
    self.sfm = test_utils.require_data('sfm')
    self.photo = test_utils.require_data('faces', 'celeba_sample',
                                         '000002.jpg')
    self.tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.data = os.path.join(self.tmp, 'data')
    os.makedirs(self.data)
    self.env = dict(os.environ, FULLPOSE_DATA_DIR=self.data,
                    TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
                    PYTHONPATH=REPO)

  def _run(self, *args):
    proc = subprocess.run([sys.executable, '-m'] + list(args), cwd=REPO,
                          env=self.env, capture_output=True, text=True,
                          timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr

  def test_fetched_model_is_used_without_bfm(self):
    code, out = self._run('reconstruct', self.photo, '--out=' +
                          os.path.join(self.tmp, 'before'), *FAST)
    self.assertEqual(code, 0, out)
    self.assertIn('face model: synthetic', out)
    self.assertEqual(out.count('python -m bfm.fetch sfm'), 1, out)

    # `python -m bfm.fetch sfm --from_dir=...` is bfm.fetch.main with the
    # same argv and environment; run in this process (the reconstruct runs,
    # whose output is checked, stay commands).
    output = io.StringIO()
    with mock.patch.dict(os.environ, {'FULLPOSE_DATA_DIR': self.data}), \
        contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
      code = fetch.main(['sfm', '--from_dir=' + self.sfm])
    self.assertEqual(code, 0, output.getvalue())
    code, out = self._run('reconstruct', self.photo, '--out=' +
                          os.path.join(self.tmp, 'after'), *FAST)
    self.assertEqual(code, 0, out)
    self.assertIn('face model: sfm', out)
    self.assertNotIn('python -m bfm.fetch', out)
    with open(os.path.join(self.tmp, 'after', '000002_coarse.obj')) as f:
      vertices = sum(1 for line in f if line.startswith('v '))
    self.assertEqual(vertices, 3448)  # the Surrey Face Model's mesh

  def test_missing_named_model_names_the_fetch_command(self):
    code, out = self._run('reconstruct', self.photo, '--bfm=sfm', '--out=' +
                          os.path.join(self.tmp, 'x'), *FAST)
    self.assertNotEqual(code, 0)
    self.assertIn('python -m bfm.fetch sfm', out)
    self.assertNotIn('Traceback', out)

  def tearDown(self):
    shutil.rmtree(self.tmp, ignore_errors=True)
    super().tearDown()


if __name__ == '__main__':
  tf.test.main()
