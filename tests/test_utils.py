"""Helpers shared by the tests (no tests here).

- `require_rasterizer()`: skips the calling test (class) when the rasterizer
  op is not built, saying why; `gpu_kernel_skip_reason()`: why the GPU
  kernel tests cannot run (no CUDA kernel built, no GPU), or None.
- `data_dir()`: the shared test data folder, found by the same function the
  package uses (bfm.default_data_dir: FULLPOSE_DATA_DIR, else
  <repo>/../shared/data); `require_data(*parts)` skips when a file or folder
  of it is missing.
- `icosphere(radius, subdivisions)`: a closed sphere whose vertices lie
  exactly on the sphere, outward counter-clockwise triangles.
- `FlagsTestCase`: a tf.test.TestCase for code that reads absl FLAGS (marks
  them parsed once, as app.run would).
- `network_weights(checkpoint)`: the trained network's variables saved in a
  training checkpoint (coarse/training_loop.py layout), by name.
- `assert_rejects(test, fn, what)`: fn() raises a ValueError naming `what`
  (the bad-argument tests of every module).
"""

import os
import subprocess
import sys
import unittest

from absl import flags
import numpy as np
import tensorflow as tf

import bfm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FlagsTestCase(tf.test.TestCase):
  """For tests of scripts that read absl FLAGS: marks them parsed (with their
  defaults) before the first test, as absl.app.run would."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()


def require_rasterizer():
  """Raises unittest.SkipTest naming the cause if the op cannot be loaded."""
  try:
    from renderer import rasterize_op  # pylint: disable=unused-import,g-import-not-at-top
  except ImportError as e:
    raise unittest.SkipTest('rasterizer op not built: %s' % e)


def gpu_kernel_skip_reason():
  """Why the GPU kernel tests cannot run here, or None when they can."""
  try:
    from renderer import rasterize_op  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return 'rasterizer op not available: %s' % e
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not rasterize_op.BUILT_WITH_CUDA:
    return 'the op library was built without the CUDA kernel'
  if not tf.config.list_physical_devices('GPU'):
    return 'CUDA kernel built but no GPU is visible to TensorFlow'
  return None


def require_gpu_kernel():
  """Raises unittest.SkipTest with gpu_kernel_skip_reason() when there is one;
  returns the GPU device name otherwise."""
  reason = gpu_kernel_skip_reason()
  if reason:
    raise unittest.SkipTest(reason)
  return '/GPU:0'


def data_dir():
  """The shared test data folder (see the module docstring)."""
  return bfm.default_data_dir()


def require_data(*parts):
  """Path of data_dir()/parts; unittest.SkipTest saying where it looked."""
  path = os.path.join(data_dir(), *parts)
  if not os.path.exists(path):
    raise unittest.SkipTest(
        '%s not found (shared test data; set FULLPOSE_DATA_DIR, see '
        '../shared/data/README.md)' % path)
  return path


def icosphere(radius=1.0, subdivisions=3):
  """Icosphere: vertices [N, 3] exactly on the sphere, triangles [T, 3]."""
  t = (1.0 + 5.0**0.5) / 2.0
  verts = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t],
           [0, 1, t], [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1],
           [-t, 0, -1], [-t, 0, 1]]
  faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
           [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
           [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
           [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
  verts = [np.array(v, np.float64) / np.linalg.norm(v) for v in verts]
  for _ in range(subdivisions):
    cache = {}

    def midpoint(i, j):
      key = (min(i, j), max(i, j))
      if key not in cache:
        m = verts[i] + verts[j]
        verts.append(m / np.linalg.norm(m))
        cache[key] = len(verts) - 1
      return cache[key]

    new_faces = []
    for i, j, k in faces:
      a, b, c = midpoint(i, j), midpoint(j, k), midpoint(k, i)
      new_faces += [[i, a, c], [j, b, a], [k, c, b], [a, b, c]]
    faces = new_faces
  vertices = np.asarray(verts) * radius
  return vertices, np.asarray(faces, np.int64)


def assert_rejects(test, fn, what, error=ValueError):
  """Asserts that fn() raises `error` whose message matches the regex `what`.

  Args:
    test: the calling tf.test.TestCase / absltest.TestCase.
    fn: a callable with bad arguments bound (e.g. a lambda).
    what: regex the message must contain (the argument's name).
    error: the exception class expected.
  """
  with test.assertRaisesRegex(error, what):
    fn()


def network_weights(checkpoint):
  """{variable name: array} of the 'network/' variables in `checkpoint` (a
  prefix, or a folder: its latest checkpoint)."""
  if tf.io.gfile.isdir(checkpoint):
    checkpoint = tf.train.latest_checkpoint(checkpoint)
  reader = tf.train.load_checkpoint(checkpoint)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.startswith('network/')}


def reconstruct_env():
  """Environment for a `python -m reconstruct` child: CPU only, quiet."""
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
              PYTHONPATH=REPO)


def start_reconstruct(args):
  """Starts `python -m reconstruct ARGS` in the repository (subprocess.Popen,
  text stdout/stderr pipes)."""
  return subprocess.Popen([sys.executable, '-m', 'reconstruct'] + list(args),
                          cwd=REPO, env=reconstruct_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def run_test_child(module, function, argument, timeout=600):
  """Runs tests.MODULE.FUNCTION(argument) in a fresh CPU-only Python (for
  tests that need their own TensorFlow devices); CompletedProcess."""
  return subprocess.run(
      [sys.executable, '-c',
       'import sys; from tests import %s as t; t.%s(sys.argv[1])' %
       (module, function), argument],
      cwd=REPO, capture_output=True, text=True, timeout=timeout,
      env=dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2'))
