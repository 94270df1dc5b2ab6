"""Builds and runs the C++ unit test of the TensorFlow-free rasterizer core.

renderer/kernels/rasterize_triangles_core_test.cc checks the dynamic
parallel-for (every block run once, whether pool threads start at once,
late or never) and that splitting an image over threads leaves the outputs
bit-identical. Needs only g++ (skipped, saying so, without it).
"""

import os
import shutil
import subprocess
import tempfile
import unittest

_KERNELS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'renderer',
    'kernels')


class CoreCppTest(unittest.TestCase):

  def test_core_unit_test_passes(self):
    compiler = os.environ.get('CXX', 'g++')
    if not shutil.which(compiler):
      self.skipTest('%s not found: cannot build the C++ core test' % compiler)
    with tempfile.TemporaryDirectory() as folder:
      binary = os.path.join(folder, 'core_test')
      subprocess.run(
          [compiler, '-O2', '-std=c++17', '-pthread', '-ffp-contract=off',
           os.path.join(_KERNELS, 'rasterize_triangles_core_test.cc'),
           os.path.join(_KERNELS, 'rasterize_triangles_core.cc'), '-o',
           binary], check=True)
      result = subprocess.run([binary], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=300)
    output = result.stdout.decode(errors='replace')
    self.assertEqual(result.returncode, 0, output)
    self.assertIn('OK', output)


if __name__ == '__main__':
  unittest.main()
