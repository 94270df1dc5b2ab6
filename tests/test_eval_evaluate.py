"""eval/evaluate.py on bad inputs (issue 16): one line naming the file, a bad
prediction counted while the rest are evaluated (--strict stops), and the
reconstruct command's own output names (NAME_coarse.obj, NAME_landmarks.txt).

Tiny sphere "faces" in the documented layouts (tests/test_eval_datasets.py).
"""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from bfm import mesh_io
from eval import datasets
from eval import evaluate
from eval import landmark_io
from eval import protocols
from tests import test_eval_datasets as layouts
from tests import test_eval_fixtures as fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD = 's02/a'  # the prediction the tests break


def _evaluate_cli(*args):
  return subprocess.run(
      [sys.executable, os.path.join(REPO, 'eval', 'evaluate.py')] +
      list(args), capture_output=True, text=True, timeout=300, cwd=REPO,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))


def _write_reconstruct_landmarks(path, points8):
  """NAME_landmarks.txt as reconstruct/outputs.py writes it: a comment, then
  68 rows `x y X Y Z` (keypoints and nose tip at their iBUG rows)."""
  mesh = np.zeros([68, 3])
  mesh[list(protocols.KEYPOINTS7_IBUG68)] = points8[:7]
  mesh[protocols.NOSE_TIP_IBUG68] = points8[7]
  photo = np.random.default_rng(0).uniform(0, 400, [68, 2])
  with open(path, 'w', encoding='utf-8') as f:
    f.write('# 68 iBUG landmarks of photo.jpg, one per row: x y = detected '
            '(dlib) in photo pixels; X Y Z = mm on NAME_coarse.obj.\n')
    np.savetxt(f, np.concatenate([photo, mesh], 1), fmt='%.6f')


class EvaluateInputProblemsTest(tf.test.TestCase):

  def _dataset(self, name):
    root = os.path.join(self.get_temp_dir(), name)
    predictions = os.path.join(root, 'predictions')
    layouts._make_generic(root, predictions)  # pylint: disable=protected-access
    return root, predictions

  def test_bad_prediction_is_counted_and_the_rest_evaluated(self):
    root, predictions = self._dataset('bad_obj')
    bad = os.path.join(predictions, *BAD.split('/')) + '.obj'
    with open(bad, 'w') as f:
      f.write('v 0 0 0\nv 1 0 0\nf 1 2 9\n')  # index out of range
    items = datasets.load('micc', root)
    result = evaluate.evaluate_items(items, predictions, strict=False)
    self.assertLen(result['items'], len(items) - 1)
    self.assertLen(result['failed'], 1)
    self.assertEqual(result['failed'][0]['image'], BAD + '.jpg')
    self.assertIn(bad, result['failed'][0]['reason'])
    self.assertLess(result['splits']['small']['pooled']['mean'], 1e-4)
    with self.assertRaisesRegex(mesh_io.MeshFileError, r'a\.obj'):
      evaluate.evaluate_items(items, predictions, strict=True)

  def test_bad_landmark_file_is_counted(self):
    root, predictions = self._dataset('bad_landmarks')
    base = os.path.join(predictions, *BAD.split('/'))
    os.remove(base + '.npy')
    with open(base + '.txt', 'w') as f:
      f.write('1 2\n')
    result = evaluate.evaluate_items(datasets.load('micc', root), predictions,
                                     strict=False)
    self.assertLen(result['failed'], 1)
    self.assertIn(base + '.txt', result['failed'][0]['reason'])

  def test_reads_the_reconstruct_commands_files(self):
    root, predictions = self._dataset('reconstruct_names')
    vertices, triangles, landmarks = fixtures.sphere_face(layouts.RADIUS, 3)
    del vertices, triangles
    items = datasets.load('micc', root)
    for item in items:
      base = os.path.join(predictions, *item.key.split('/'))
      mesh = mesh_io.read_obj(base + '.obj')
      mesh_io.write_obj(base + '_coarse.obj', mesh.vertices, mesh.triangles,
                        precision=10)
      frame_landmarks = landmark_io.read_landmarks(base + '.npy')
      _write_reconstruct_landmarks(base + '_landmarks.txt', frame_landmarks)
      os.remove(base + '.obj')
      os.remove(base + '.npy')
    got = landmark_io.read_landmarks(
        os.path.join(predictions, 's01', 'frontal_landmarks.txt'),
        expected_count=68)
    self.assertEqual(got.shape, (68, 3))
    result = evaluate.evaluate_items(items, predictions)
    self.assertLen(result['items'], len(items))
    self.assertLess(result['splits']['small']['pooled']['mean'], 1e-4)
    with self.assertRaisesRegex(datasets.DatasetError, r'_detail\.obj'):
      evaluate.evaluate_items(items, predictions, stage='detail')
    del landmarks

  def test_command_line_one_line_per_problem(self):
    root, predictions = self._dataset('cli')
    bad = os.path.join(predictions, *BAD.split('/')) + '.obj'
    with open(bad, 'w') as f:
      f.write('v 0 0 zero\n')
    common = ['--dataset=micc', '--predictions=' + predictions]
    # A missing dataset root.
    run = _evaluate_cli('--dataset_root=' + root + '_nowhere', *common)
    self.assertEqual(run.returncode, 1, run.stderr)
    self.assertNotIn('Traceback', run.stderr)
    self.assertRegex(run.stderr, r'eval/evaluate.py: \S+_nowhere: dataset '
                     r'folder not found')
    # One malformed prediction: counted, the rest evaluated.
    run = _evaluate_cli('--dataset_root=' + root, *common)
    self.assertEqual(run.returncode, 0, run.stderr)
    self.assertIn('1 prediction(s) could not be evaluated', run.stdout)
    self.assertIn(bad, run.stdout)
    self.assertIn('micc\tsmall\t0.000', run.stdout)
    # --strict: the same file stops the run in one line.
    run = _evaluate_cli('--dataset_root=' + root, '--strict', *common)
    self.assertEqual(run.returncode, 1, run.stderr)
    self.assertNotIn('Traceback', run.stderr)
    self.assertIn(bad, run.stderr)


if __name__ == '__main__':
  tf.test.main()
