"""Tests for eval/datasets.py, eval/evaluate.py and eval/tables.py on tiny
folders written in the documented layouts (eval/README.md)."""

import json
import os
import subprocess
import sys

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from eval import alignment
from eval import datasets
from eval import evaluate
from eval import landmark_io
from bfm import mesh_io
from eval import tables
from tests import test_eval_fixtures as fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RADIUS, OFFSET = 80.0, 1.0  # sphere "faces"; large-pose predictions offset


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def _write_lnd(path, points):
  _write(path, ''.join(f'{i + 1} {float(x)!r} {float(y)!r} {float(z)!r}\n'
                       for i, (x, y, z) in enumerate(points)))


def _write_pp(path, points):
  _write(path, '<PickedPoints>\n' + ''.join(
      f' <point x="{float(x)!r}" y="{float(y)!r}" z="{float(z)!r}" '
      f'active="1" name="{i}"/>\n'
      for i, (x, y, z) in enumerate(points)) + '</PickedPoints>\n')


def _write_prediction(predictions, key, offset, seed):
  """Prediction for an image: the scan sphere moved by `offset` along its
  normals, in a random similarity frame, with the true keypoints + tip."""
  vertices, triangles, landmarks = fixtures.sphere_face(RADIUS, 3)
  rng = np.random.default_rng(seed)
  frame = alignment.SimilarityTransform(
      rng.uniform(0.5, 2.0),
      alignment.rotation_from_axis_angle(rng.normal(size=3)),
      rng.normal(size=3) * 50)
  displaced = vertices * (RADIUS + offset) / RADIUS
  base = os.path.join(predictions, *key.split('/'))
  mesh_io.write_obj(base + '.obj', frame.apply(displaced), triangles,
                    precision=10)
  landmark_io.write_landmarks(base + '.npy', frame.apply(landmarks))


def _make_generic(root, predictions, with_yaw=True):
  """Two subjects, 4 images: small-pose predictions exact, large offset."""
  vertices, triangles, landmarks = fixtures.sphere_face(RADIUS, 3)
  rows = [('s01/frontal.jpg', 's01', '5', ''),
          ('s01/profile.jpg', 's01', '-50', ''),
          ('s02/a.jpg', 's02', '20', 'large'),  # explicit split wins
          ('s02/b.jpg', 's02', '-29.9', '')]
  if not with_yaw:
    rows = [(i, s, '', '') for i, s, _, _ in rows]
  _write(os.path.join(root, 'images.csv'),
         'image,subject,yaw_deg,split\n' +
         ''.join(','.join(r) + '\n' for r in rows))
  for subject in ('s01', 's02'):
    mesh_io.write_obj(os.path.join(root, 'scans', subject + '.obj'), vertices,
                      triangles, precision=10)
    _write_lnd(os.path.join(root, 'scans', subject + '.lnd'), landmarks[:7])
  for seed, (image, _, _, _) in enumerate(rows):
    large = image in ('s01/profile.jpg', 's02/a.jpg')
    _write_prediction(predictions, os.path.splitext(image)[0],
                      OFFSET if large else 0.0, seed)
  return rows


def _make_now(root, predictions):
  vertices, triangles, landmarks = fixtures.sphere_face(RADIUS, 3)
  images = ['FaMoS_1/multiview_neutral/IMG_1.jpg',
            'FaMoS_1/multiview_expressions/IMG_2.jpg',
            'FaMoS_2/selfie/IMG_3.jpg']
  _write(os.path.join(root, 'imagepathsvalidation.txt'), '\n'.join(images))
  _write(os.path.join(root, 'images.csv'),
         f'image,yaw_deg\n{images[0]},0\n{images[2]},70\n')
  for subject in ('FaMoS_1', 'FaMoS_2'):
    mesh_io.write_obj(os.path.join(root, 'scans', subject, 'scan.obj'),
                      vertices, triangles, precision=10)
    _write_pp(os.path.join(root, 'scans_lmks_onlypp', subject, 'scan.pp'),
              landmarks[:7])
  for seed, image in enumerate(images):
    _write_prediction(predictions, os.path.splitext(image)[0],
                      OFFSET if seed == 2 else 0.0, seed)
  return images


def _offset_bounds():
  """[lower, OFFSET]: analytic error band of the offset prediction (see
  test_eval_protocols.test_constant_normal_displacement_gives_that_error)."""
  vertices, triangles, _ = fixtures.sphere_face(RADIUS, 3)
  corners = vertices[triangles] * (RADIUS + OFFSET) / RADIUS
  e = [np.linalg.norm(corners[:, i] - corners[:, (i + 1) % 3], axis=1)
       for i in range(3)]
  area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0],
                                       corners[:, 2] - corners[:, 0]), axis=1)
  circumradius = np.max(e[0] * e[1] * e[2] / (4 * area))
  return np.sqrt((RADIUS + OFFSET)**2 - circumradius**2) - RADIUS, OFFSET


class DatasetLoaderTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('micc', 'esrc', '3dr', '3ds')
  def test_generic_layout_and_pose_split(self, name):
    root = os.path.join(self.get_temp_dir(), name)
    _make_generic(root, os.path.join(root, 'predictions'))
    items = datasets.load(name, root, yaw_threshold_deg=30.0)
    self.assertEqual([i.split for i in items],
                     ['small', 'large', 'large', 'small'])
    self.assertEqual(items[1].yaw_deg, -50.0)
    self.assertEqual(items[0].scan_path, os.path.join(root, 'scans',
                                                      's01.obj'))
    self.assertEqual(items[0].key, 's01/frontal')
    # The threshold is honoured: at 10 degrees, 20 and -29.9 are large.
    items = datasets.load(name, root, yaw_threshold_deg=10.0)
    self.assertEqual([i.split for i in items],
                     ['small', 'large', 'large', 'large'])

  def test_without_yaw_3dr_is_large_micc_is_all(self):
    root = os.path.join(self.get_temp_dir(), 'noyaw')
    _make_generic(root, os.path.join(root, 'p'), with_yaw=False)
    self.assertEqual({i.split for i in datasets.load('3dr', root)}, {'large'})
    self.assertEqual({i.split for i in datasets.load('micc', root)}, {'all'})

  def test_now_layout(self):
    root = os.path.join(self.get_temp_dir(), 'now')
    images = _make_now(root, os.path.join(root, 'p'))
    items = datasets.load('now', root)
    self.assertEqual([i.image for i in items], [images[0], images[2]])
    self.assertEqual([i.split for i in items], ['small', 'large'])
    self.assertEqual(items[1].subject, 'FaMoS_2')
    self.assertTrue(items[1].scan_landmarks_path.endswith('scan.pp'))
    os.remove(os.path.join(root, 'images.csv'))  # then: every listed image
    self.assertLen(datasets.load('now', root), 3)

  def test_layout_errors_name_the_path(self):
    root = os.path.join(self.get_temp_dir(), 'broken')
    _make_generic(root, os.path.join(root, 'p'))
    with self.assertRaisesRegex(datasets.DatasetError, 'nowhere.*not found'):
      datasets.load('micc', os.path.join(root, 'nowhere'))
    with self.assertRaisesRegex(datasets.DatasetError, 'unknown dataset'):
      datasets.load('aflw', root)
    os.remove(os.path.join(root, 'scans', 's02.lnd'))
    with self.assertRaisesRegex(datasets.DatasetError, 'scans.s02.*landmark'):
      datasets.load('micc', root)
    _write(os.path.join(root, 'images.csv'),
           'image,subject,yaw_deg\ns01/x.jpg,s01,left\n')
    with self.assertRaisesRegex(datasets.DatasetError,
                                r'images.csv:2: yaw_deg .left'):
      datasets.load('micc', root)
    _write(os.path.join(root, 'images.csv'), 'image,yaw_deg\na.jpg,3\n')
    with self.assertRaisesRegex(datasets.DatasetError,
                                r'images.csv: needs.*subject'):
      datasets.load('micc', root)
    os.remove(os.path.join(root, 'images.csv'))
    with self.assertRaisesRegex(datasets.DatasetError, 'images.csv: missing'):
      datasets.load('micc', root)


class EvaluateTest(tf.test.TestCase):

  def test_splits_have_the_known_errors(self):
    root = os.path.join(self.get_temp_dir(), 'micc')
    predictions = os.path.join(root, 'predictions')
    _make_generic(root, predictions)
    result = evaluate.evaluate_items(datasets.load('micc', root), predictions)
    lower, upper = _offset_bounds()
    self.assertEqual(result['protocol'], 'nme_fg2018')
    self.assertLess(result['splits']['small']['pooled']['mean'], 1e-4)
    large = result['splits']['large']['pooled']['mean']
    self.assertBetween(large, lower, upper)
    self.assertEqual(result['splits']['all']['num_subjects'], 4)
    rows = evaluate.format_rows('Mine', 'micc', result)
    self.assertIn(f'Mine\tmicc\tlarge\t{large:.3f}±', '\n'.join(rows))

  def test_p2p_protocol_runs_and_is_zero_for_exact_predictions(self):
    root = os.path.join(self.get_temp_dir(), 'p2p')
    predictions = os.path.join(root, 'predictions')
    _make_generic(root, predictions)
    result = evaluate.evaluate_items(datasets.load('micc', root), predictions,
                                     protocol='micc_p2p',
                                     p2p_with_scale=True)
    self.assertEqual(result['protocol'], 'micc_p2p')
    self.assertLess(result['splits']['small']['pooled']['mean'], 1e-4)

  def test_missing_prediction_names_the_file_or_is_skipped(self):
    root = os.path.join(self.get_temp_dir(), 'missing')
    predictions = os.path.join(root, 'predictions')
    _make_generic(root, predictions)
    os.remove(os.path.join(predictions, 's02', 'b.obj'))
    items = datasets.load('micc', root)
    with self.assertRaisesRegex(datasets.DatasetError, r's02.b\.obj'):
      evaluate.evaluate_items(items, predictions)
    result = evaluate.evaluate_items(items, predictions, skip_missing=True)
    self.assertEqual(result['missing'], ['s02/b.jpg'])
    _write(os.path.join(predictions, 's02', 'b.obj'), 'v 0 0 0\n')
    with self.assertRaisesRegex(mesh_io.MeshFileError, r'b\.obj: no faces'):
      evaluate.evaluate_items(items, predictions)

  def test_command_line_and_tables(self):
    root = os.path.join(self.get_temp_dir(), 'now_cli')
    predictions = os.path.join(root, 'predictions')
    _make_now(root, predictions)
    output = os.path.join(self.get_temp_dir(), 'results', 'mine_now.json')
    run = subprocess.run(
        [sys.executable, os.path.join(REPO, 'eval', 'evaluate.py'),
         '--dataset=now', f'--dataset_root={root}',
         f'--predictions={predictions}', '--method=Mine',
         f'--output={output}'], capture_output=True, text=True, timeout=120)
    self.assertEqual(run.returncode, 0, run.stderr)
    self.assertIn('Mine\tnow\tsmall\t0.000±0.000 mm', run.stdout)
    with open(output) as f:
      result = json.load(f)
    self.assertEqual(result['dataset'], 'now')
    lower, upper = _offset_bounds()
    self.assertBetween(result['splits']['large']['pooled']['mean'], lower,
                       upper)
    run = subprocess.run(
        [sys.executable, os.path.join(REPO, 'eval', 'tables.py'),
         f'--results={os.path.dirname(output)}', '--tables=1'],
        capture_output=True, text=True, timeout=120)
    self.assertEqual(run.returncode, 0, run.stderr)
    line = [l for l in run.stdout.splitlines() if l.startswith('| Mine')][0]
    cells = [c.strip() for c in line.strip('|').split('|')]
    large = result['splits']['large']['pooled']
    self.assertEqual(cells[1:], [
        '-', '-', '0.000±0.000', f'{large["mean"]:.3f}±{large["std"]:.3f}',
        '-', '-', '-'])
    self.assertIn('| Our (paper) | 2.352±2.010 |', run.stdout)


class TablesTest(tf.test.TestCase):

  def test_paper_mean_column_is_the_average_of_its_columns(self):
    # Independent check of the transcription and of the Mean definition used
    # for runs: the paper's Mean = average of the six cells (to rounding).
    _, columns, _, _, rows = tables.TABLES['1']
    for method, cells in rows.items():
      self.assertLen(cells, len(columns) + 1, method)
      mean = np.mean([m for m, _ in cells[:-1]])
      std = np.mean([s for _, s in cells[:-1]])
      self.assertAllClose(cells[-1], (mean, std), atol=1.5e-3, msg=method)
    # Table 4's "Our*" equals Table 1's "Our" on the shared columns.
    self.assertEqual(tables.TABLES['4'][4]['Our*'][:6],
                     tables.TABLES['1'][4]['Our'][:6])

  def test_full_run_fills_the_mean_and_rejects_duplicates(self):
    results = []
    for i, (dataset, split) in enumerate(tables._T1_COLUMNS):
      results.append({'method': 'M', 'dataset': dataset, 'stage': 'coarse',
                      'protocol': 'nme_fg2018', '_file': f'f{i}',
                      'splits': {split: {'pooled': {'mean': i + 1.0,
                                                    'std': 0.5}}}})
    _, header, rows = tables.build_table('1', results, paper_rows=False)
    self.assertEqual(header[0], 'MICC Small Pose')
    self.assertEqual(rows, [('M [nme_fg2018]', ['1.000±0.500', '2.000±0.500',
                                                 '3.000±0.500', '4.000±0.500',
                                                 '5.000±0.500', '6.000±0.500',
                                                 '3.500±0.500'])])
    # Not a detail-stage result: Table 3 has no run rows.
    self.assertEmpty(tables.build_table('3', results, paper_rows=False)[2])
    with self.assertRaisesRegex(ValueError, 'f1: a second result'):
      tables.build_table('1', results + [dict(results[0], _file='f1')])


if __name__ == '__main__':
  tf.test.main()
