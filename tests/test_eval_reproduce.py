"""eval/reproduce.py: the paper's evaluations per dataset, its layout errors,
and the command end to end on a small MICC-layout set of photo-like renders
of known faces (the Surrey Face Model with real skin, eval/textured_faces.py;
skipped, saying why, without the shared data)."""

import csv
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import tensorflow as tf

import bfm
from bfm import mesh_io
from eval import datasets
from eval import point_mesh_distance
from eval import reproduce
from eval import textured_faces
from reconstruct import outputs
from tests import test_eval_datasets as layouts
from tests import test_utils

REPO = test_utils.REPO
# The tiny layouts of tests/test_eval_datasets.py (sphere "faces").
_make_generic = layouts._make_generic  # pylint: disable=protected-access
_make_now = layouts._make_now  # pylint: disable=protected-access
RENDER_SIZE = 256
HAIR_COLOURS = ((0.16, 0.1, 0.06), (0.05, 0.04, 0.035))  # dark brown, black
# (subject, frame, yaw in degrees): one small- and one large-pose photo per
# subject, as the paper's MICC selection.
PHOTOS = (('subject_01', 'frontal', -10.0), ('subject_01', 'turned', 45.0),
          ('subject_02', 'frontal', 10.0), ('subject_02', 'turned', -40.0))
# MICC in Tables 1-3 of the paper (paper.md), typed from the paper.
PAPER_CELLS = {'1': ('2.352±2.010', '2.476±2.109'),
               '2': ('1.521±1.105', '1.570±1.148'),
               '3': ('2.543±2.392', '2.653±2.474'),
               '4': ('2.446±2.050', '2.746±2.266')}


def _umeyama(source, target):
  """(scale, rotation, translation) of the least-squares similarity
  source -> target (Umeyama 1991), written here for the test."""
  mu_s, mu_t = source.mean(0), target.mean(0)
  xs, xt = source - mu_s, target - mu_t
  u, sigma, vt = np.linalg.svd(xt.T @ xs / len(source))
  d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
  rotation = u @ d @ vt
  scale = np.trace(np.diag(sigma) @ d) / (xs**2).sum(1).mean()
  return scale, rotation, mu_t - scale * rotation @ mu_s


def _fg2018_distances(scan, scan_keys, pred, pred_triangles, pred_keys):
  """[M] distances (mm) of the FG 2018 protocol, computed independently of
  eval/protocols.py: the challenge's crop sphere on the scan's 7 keypoints,
  the 7-point similarity, exact point-to-surface distances (libigl when
  installed, else the brute-force search tested in
  test_eval_point_mesh_distance.py)."""
  bridge = (scan_keys[1] + scan_keys[2]) / 2
  centre = scan_keys[4] + 0.3 * (bridge - scan_keys[4])
  radius = 1.2 * (np.linalg.norm(scan_keys[0] - scan_keys[3]) +
                  np.linalg.norm(bridge - scan_keys[4])) / 2
  points = scan[np.linalg.norm(scan - centre, axis=1) <= radius]
  scale, rotation, translation = _umeyama(pred_keys, scan_keys)
  aligned = scale * pred @ rotation.T + translation
  try:
    import igl  # pylint: disable=g-import-not-at-top
    squared = igl.point_mesh_squared_distance(
        points, aligned, np.asarray(pred_triangles, np.int64))[0]
    return np.sqrt(squared)
  except ImportError:
    return point_mesh_distance.MeshDistance(
        aligned, pred_triangles, 'brute').distances(points)


class TableEvaluationsTest(tf.test.TestCase):

  def test_each_dataset_gets_the_papers_protocols_and_stages(self):
    self.assertEqual(
        reproduce.table_evaluations('micc', ['1', '2', '3', '4']),
        [('nme', 'coarse', ['1', '4']), ('micc_p2p', 'detail', ['2']),
         ('nme', 'detail', ['3'])])
    self.assertEqual(reproduce.table_evaluations('now', ['1', '2', '3', '4']),
                     [('nme', 'coarse', ['1', '4'])])
    self.assertEqual(reproduce.table_evaluations('esrc', ['1', '2', '3', '4']),
                     [('nme', 'coarse', ['4'])])
    self.assertEqual(reproduce.table_evaluations('3dr', ['2', '3']), [])
    with self.assertRaisesRegex(ValueError, '--tables.*5'):
      reproduce.table_evaluations('micc', ['5'])


class DatasetLayoutTest(tf.test.TestCase):

  def test_missing_root_names_it_and_the_layout(self):
    root = os.path.join(self.get_temp_dir(), 'no_such_micc')
    with self.assertRaisesRegex(datasets.DatasetError,
                                'no_such_micc.*images.csv.*scans'):
      reproduce.dataset_items('micc', root, 30.0)
    with self.assertRaisesRegex(datasets.DatasetError,
                                'no_such_micc.*imagepathsvalidation'):
      reproduce.dataset_items('now', root, 30.0)

  def test_missing_photo_names_it_and_the_layout(self):
    root = os.path.join(self.get_temp_dir(), 'micc')
    _make_generic(root, os.path.join(root, 'p'))
    photo = os.path.join(root, 'images', 's01', 'frontal.jpg')
    with self.assertRaisesRegex(
        datasets.DatasetError,
        re.escape(photo) + r': input photo not found \(and 3 more.*'
        r'<root>/images/<image>'):
      reproduce.dataset_items('micc', root, 30.0)
    for i in datasets.load('micc', root):
      path = datasets.image_path(i, root)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      open(path, 'wb').close()
    items, listed = reproduce.dataset_items('micc', root, 30.0, max_images=3)
    self.assertEqual((len(items), listed), (3, 4))

  def test_scan_problem_gets_the_layout_added(self):
    root = os.path.join(self.get_temp_dir(), 'micc_noscan')
    _make_generic(root, os.path.join(root, 'p'))
    os.remove(os.path.join(root, 'scans', 's02.obj'))
    with self.assertRaisesRegex(datasets.DatasetError,
                                r's02.obj.*expected the micc layout'):
      reproduce.dataset_items('micc', root, 30.0)

  def test_reconstruct_outputs_land_where_evaluate_reads_them(self):
    root = os.path.join(self.get_temp_dir(), 'now')
    _make_now(root, os.path.join(root, 'p'))
    items = datasets.load('now', root)
    predictions = os.path.join(self.get_temp_dir(), 'now_predictions')
    jobs = reproduce.reconstruction_jobs(items, root, predictions)
    first = items[0].image.split('/')  # subject/condition/name.jpg
    self.assertEqual(jobs[0][0], os.path.join(predictions, *first[:2]))
    self.assertEqual(jobs[0][1][0], (os.path.join(
        root, 'iphone_pictures', *first), os.path.splitext(first[2])[0]))
    # The files the reconstruct command writes there are the ones that
    # evaluate.py takes as the prediction of the image.
    out_dir, photos = jobs[0]
    files = outputs.output_paths(out_dir, photos[0][1])
    os.makedirs(out_dir, exist_ok=True)
    for path in files.values():
      open(path, 'w').close()
    self.assertEqual(datasets.prediction_files(items[0], predictions, 'detail'),
                     (files['_detail.obj'], files['_landmarks.txt']))
    self.assertEqual(reproduce.earlier_outputs(jobs[:1]),
                     [p for p in files.values()])


_RENDERS = {}


def _renders():
  """Photo-like renders of 2 known SFM faces with real skin, made once:
  {'model', 'scans': {subject: (vertices [N,3], keypoints [7,3])},
  'photos': {(subject, frame): [S,S,3] uint8 RGB}} (PHOTOS' poses)."""
  if _RENDERS:
    return _RENDERS
  from preprocess import face_landmarks  # pylint: disable=g-import-not-at-top
  from preprocess import image_io  # pylint: disable=g-import-not-at-top
  model = bfm.load('sfm')
  # Skins: the first 2 shared frontal photos in which FaceMesh finds a face.
  folder = test_utils.require_data('faces', 'celeba_sample')
  images, landmarks = [], []
  for path in sorted(glob.glob(os.path.join(folder, '*.jpg'))):
    image = image_io.read_image(path)
    faces = face_landmarks.detect_faces(image, 'facemesh')
    if faces:
      images.append(image)
      landmarks.append(faces[0].landmarks)
    if len(images) == 2:
      break
  skins = textured_faces.skin_textures(model, images, landmarks, 256,
                                       'facemesh')
  rng = np.random.RandomState(7)
  backgrounds = [textured_faces.background_tiles(rng, images, RENDER_SIZE)
                 for _ in range(2)]
  scans, photos = {}, {}
  for k, (subject, frame, yaw) in enumerate(PHOTOS):
    if subject not in scans:
      identity = rng.normal(size=model.num_id).astype(np.float32)
      vertices = model.vertices(identity[None]).numpy()[0].astype(np.float64)
      scans[subject] = (vertices, vertices[model.keypoints7])
    image, _ = textured_faces.render_textured(
        model, scans[subject][0].astype(np.float32), skins[k % len(skins)],
        np.deg2rad([0.0, yaw, 0.0]), textured_faces.random_lighting(rng),
        RENDER_SIZE, backgrounds[k % 2],
        hair_colour=HAIR_COLOURS[k % 2])
    photos[(subject, frame)] = np.round(image * 255).astype(np.uint8)
  _RENDERS.update(model=model, scans=scans, photos=photos)
  return _RENDERS


def _write_photo(path, rgb):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
              [cv2.IMWRITE_JPEG_QUALITY, 95])


def _expected_nme(predictions, image_key, scan):
  """The coarse NME of one reconstruction, from the scan the test made and
  the reconstruction's coefficients (not its mesh or landmark files)."""
  model = _renders()['model']
  coefficients = np.load(os.path.join(predictions, *image_key.split('/')) +
                         '_coefficients.npz')
  pred = model.vertices(coefficients['identity'][None],
                        coefficients['expression'][None]).numpy()[0]
  pred = pred.astype(np.float64)
  return _fg2018_distances(scan[0], scan[1], pred, model.triangles,
                           pred[model.keypoints7])


def _csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


class _RendersTestCase(test_utils.FlagsTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_utils.require_rasterizer()
    test_utils.require_data('sfm', 'sfm_shape_3448.bin')
    test_utils.require_data('faces', 'celeba_sample')
    cls.tmp = tempfile.mkdtemp(prefix='test_eval_reproduce_')
    cls.renders = _renders()

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()


class ReproduceMiccEndToEndTest(_RendersTestCase):
  """The command (a child process) on 4 renders of 2 known faces, laid out
  as MICC (eval/README.md): images.csv, images/, scans/ with .obj and
  8-row .lnd (7 FG 2018 keypoints + nose tip)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(cls.tmp, 'MICC')
    cls.out = os.path.join(cls.tmp, 'reproduce_micc')
    model = cls.renders['model']
    lines = ['image,subject,yaw_deg']
    for subject, (vertices, keys) in cls.renders['scans'].items():
      mesh_io.write_obj(os.path.join(cls.root, 'scans', subject + '.obj'),
                        vertices, model.triangles, precision=8)
      layouts._write_lnd(  # pylint: disable=protected-access
          os.path.join(cls.root, 'scans', subject + '.lnd'),
          np.concatenate([keys, vertices[model.landmarks68[30]][None]]))
    for subject, frame, yaw in PHOTOS:
      _write_photo(os.path.join(cls.root, 'images', subject, frame + '.png'),
                   cls.renders['photos'][(subject, frame)])
      lines.append('%s/%s.png,%s,%g' % (subject, frame, subject, yaw))
    with open(os.path.join(cls.root, 'images.csv'), 'w') as f:
      f.write('\n'.join(lines) + '\n')
    cls.result = subprocess.run(
        [sys.executable, os.path.join(REPO, 'eval', 'reproduce.py'),
         '--dataset=micc', '--dataset_root=' + cls.root, '--fit',
         '--bfm=sfm', '--landmarks=facemesh', '--reproduce_out=' + cls.out,
         '--fit_detail_steps=2', '--fit_uv_size=32', '--texture_size=32',
         '--batch_size=4', '--tables=1,2,3,4', '--aggregate=pooled',
         '--nme_variant=fg2018'],
        cwd=REPO, env=test_utils.reconstruct_env(), capture_output=True,
        text=True, timeout=900, check=False)

  def _expected(self, image):
    subject = image.split('/')[0]
    return _expected_nme(os.path.join(self.out, 'predictions'),
                         os.path.splitext(image)[0],
                         self.renders['scans'][subject])

  def test_the_command_succeeds(self):
    self.assertEqual(self.result.returncode, 0,
                     self.result.stdout[-2000:] + self.result.stderr[-3000:])

  def test_per_image_errors_match_an_independent_computation(self):
    rows = _csv(os.path.join(self.out, 'micc_nme_fg2018_coarse.csv'))
    self.assertEqual([r['image'] for r in rows],
                     ['%s/%s.png' % p[:2] for p in PHOTOS])
    evaluated = [r for r in rows if r['status'] == 'evaluated']
    self.assertNotEmpty(evaluated)
    for row in evaluated:
      expected = self._expected(row['image'])
      self.assertAllClose(float(row['mean_mm']), expected.mean(), rtol=2e-3,
                          atol=2e-3, msg=row['image'])
      self.assertEqual(int(row['num_points']), expected.size)
      self.assertEqual(row['split'], 'small' if abs(float(row['yaw_deg'])) <
                       30 else 'large')
      # A real face error, and the mean face's beside it.
      self.assertBetween(float(row['mean_mm']), 0.05, 10.0)
      self.assertBetween(float(row['mean_face_mean_mm']), 0.05, 10.0)

  def test_printed_rows_hold_the_papers_and_the_measured_numbers(self):
    text = self.result.stdout
    for table, cells in PAPER_CELLS.items():
      self.assertIn('| Our (paper) | %s | %s |' % cells, text, table)
    # Table 1's row of this run: small and large pose, pooled over the
    # images of each split as the paper's mean±std.
    row = re.search(r'\| Our \(this run: --fit, sfm, (\d) of 4 images\) '
                    r'\[nme_fg2018\] \| ([\d.]+)±([\d.]+) \| '
                    r'([\d.]+)±([\d.]+) \|', text)
    self.assertIsNotNone(row, text[-3000:])
    rows = {r['image']: r for r in _csv(
        os.path.join(self.out, 'micc_nme_fg2018_coarse.csv'))}
    for split, (mean, std) in (('small', row.group(2, 3)),
                               ('large', row.group(4, 5))):
      images = ['%s/%s.png' % p[:2] for p in PHOTOS
                if (abs(p[2]) < 30) == (split == 'small') and
                rows['%s/%s.png' % p[:2]]['status'] == 'evaluated']
      if not images:
        continue
      pooled = np.concatenate([self._expected(i) for i in images])
      self.assertAllClose(float(mean), pooled.mean(), atol=2e-3, msg=split)
      self.assertAllClose(float(std), pooled.std(), atol=2e-3, msg=split)
    self.assertRegex(text, r'mean face of sfm \(reference\) \[micc_p2p\] \| '
                     r'[\d.]+±[\d.]+ \| [\d.]+±[\d.]+ \|')

  def test_writes_results_that_tables_reads(self):
    from eval import tables  # pylint: disable=g-import-not-at-top
    results = tables.load_results([self.out])
    self.assertCountEqual([(r['protocol'], r['stage']) for r in results],
                          [('nme_fg2018', 'coarse'), ('micc_p2p', 'detail'),
                           ('nme_fg2018', 'detail')])
    _, _, table_rows = tables.build_table('2', results)
    self.assertIn('Our [micc_p2p]', [m for m, _ in table_rows])
    with open(os.path.join(self.out, 'tables.md')) as f:
      self.assertIn('| Our (paper) | %s | %s |' % PAPER_CELLS['3'], f.read())


class ReproduceNowEndToEndTest(_RendersTestCase):
  """The command's main in this process (every flag it reads set here) on
  2 of the renders laid out as NoW's validation release: an image list with
  a third, unselected photo, iphone_pictures/<subject>/<condition>/*.jpg,
  one scan .obj per subject and its 7 landmarks as MeshLab .pp."""

  def test_now_layout_end_to_end(self):
    from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
    root = os.path.join(self.tmp, 'NoW')
    out = os.path.join(self.tmp, 'reproduce_now')
    model = self.renders['model']
    subject, (vertices, keys) = next(iter(self.renders['scans'].items()))
    now_subject = 'FaMoS_180424_03335_TA'
    mesh_io.write_obj(os.path.join(root, 'scans', now_subject,
                                   'natural_head_rotation.000001.obj'),
                      vertices, model.triangles, precision=8)
    layouts._write_pp(os.path.join(  # pylint: disable=protected-access
        root, 'scans_lmks_onlypp', now_subject,
        'natural_head_rotation.000001_picked_points.pp'), keys)
    listed, selected = [], ['image,yaw_deg']
    for frame, condition in (('frontal', 'multiview_neutral'),
                             ('turned', 'multiview_expressions')):
      image = '%s/%s/IMG_%s.jpg' % (now_subject, condition, frame)
      _write_photo(os.path.join(root, 'iphone_pictures', image),
                   self.renders['photos'][(subject, frame)])
      listed.append(image)
      yaw = [p[2] for p in PHOTOS if p[:2] == (subject, frame)][0]
      selected.append('%s,%g' % (image, yaw))
    listed.append('%s/selfie/IMG_unselected.jpg' % now_subject)  # no photo
    with open(os.path.join(root, 'imagepathsvalidation.txt'), 'w') as f:
      f.write('\n'.join(listed) + '\n')
    with open(os.path.join(root, 'images.csv'), 'w') as f:
      f.write('\n'.join(selected) + '\n')
    settings = dict(
        dataset='now', dataset_root=root, tables=['1', '2', '3', '4'],
        method='Our', aggregate='pooled', strict=False, nme_variant='fg2018',
        yaw_threshold_deg=30.0, p2p_crop_radius_mm=95.0,
        p2p_direction='scan_to_prediction', p2p_with_scale=False,
        icp_mode='point_to_plane', icp_max_iterations=100,
        distance_backend='auto', reproduce_out=out,
        reproduce_max_images=None, fit=True, coarse_checkpoint=None,
        detail_checkpoint=None, bfm='sfm', landmarks='facemesh',
        landmark_model=None, image_size=224, fit_steps=0, fit_objective='map',
        fit_photo_weight=0.0, fit_detail_steps=2,
        fit_detail_learning_rate=0.1, fit_detail_tolerance=0.01,
        fit_uv_size=32, fit_displacement_scale_mm=1.0,
        large_pose_yaw_threshold_deg=30.0, batch_size=2, texture_size=32,
        input_workers=1, resume=False, overwrite=False)
    with flagsaver.flagsaver(**settings):
      status = reproduce._main()  # pylint: disable=protected-access
    self.assertEqual(status, 0)
    rows = _csv(os.path.join(out, 'now_nme_fg2018_coarse.csv'))
    self.assertEqual([r['image'] for r in rows], listed[:2])
    self.assertEqual([r['split'] for r in rows], ['small', 'large'])
    predictions = os.path.join(out, 'predictions')
    for row in rows:
      self.assertEqual(row['status'], 'evaluated')
      expected = _expected_nme(predictions, os.path.splitext(row['image'])[0],
                               (vertices, keys))
      self.assertAllClose(float(row['mean_mm']), expected.mean(), rtol=2e-3,
                          atol=2e-3, msg=row['image'])
    with open(os.path.join(out, 'tables.md')) as f:
      text = f.read()
    # NoW's cells of Tables 1 and 4 (paper.md), typed from the paper.
    self.assertIn('| Our (paper) | 2.317±2.019 | 2.341±1.992 |', text)
    self.assertIn('| Our (paper) | 2.430±2.210 | 2.765±2.325 |', text)
    self.assertNotIn('Table 2', text)


if __name__ == '__main__':
  tf.test.main()
