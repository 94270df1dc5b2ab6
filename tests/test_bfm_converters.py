"""Converter round trips (generated .bin/.mat/.npz -> MorphableModel ->
vertices), bad files (truncated, wrong shapes, NaNs, missing keys) and the
loader's messages for missing data."""

import json
import os
import struct
import unittest

from absl.testing import parameterized
import numpy as np
from scipy import io as sio
import tensorflow as tf

import bfm
from bfm import bfm2009_reader
from bfm import convert
from bfm import face_regions
from bfm import ict_reader
from bfm import npz_format
from bfm import sfm_reader
from coarse import face_reconstruction
from renderer import camera

DATA_DIR = bfm.default_data_dir()
SFM_DIR = os.path.join(DATA_DIR, 'sfm')
HAS_SFM = all(
    os.path.isfile(os.path.join(SFM_DIR, f)) for f in sfm_reader.FILES)


# ---------------------------------------------------------------- writers
def _eigen(matrix):
  """eos cereal Eigen matrix: int32 rows, int32 cols, column-major float32."""
  matrix = np.asarray(matrix, np.float32)
  return struct.pack('<ii', *matrix.shape) + matrix.flatten(order='F').astype(
      '<f4').tobytes()


def write_eos_shape_model(path, mean, basis, eigenvalues, triangles, uv):
  """Writes eos's cereal layout (bfm/sfm_reader.py docstring)."""
  out = struct.pack('<I', 1)
  out += _eigen(np.reshape(mean, [-1, 1])) + _eigen(basis)
  out += _eigen(np.reshape(eigenvalues, [-1, 1]))
  out += struct.pack('<Q', len(triangles)) + np.asarray(
      triangles, '<i4').tobytes()
  # Empty colour model: mean and eigenvalues are Eigen vectors (0 x 1).
  out += (_eigen(np.zeros([0, 1])) + _eigen(np.zeros([0, 0])) +
          _eigen(np.zeros([0, 1])) + struct.pack('<Q', 0))
  out += struct.pack('<Q', len(uv)) + np.asarray(uv, '<f8').tobytes()
  with open(path, 'wb') as f:
    f.write(out)


def write_eos_blendshapes(path, names, deltas):
  out = struct.pack('<Q', len(names))
  for name, delta in zip(names, deltas):
    out += struct.pack('<Q', len(name)) + name.encode()
    out += _eigen(np.reshape(delta, [-1, 1]))
  with open(path, 'wb') as f:
    f.write(out)


def _orthonormal(rows, cols, seed):
  q, _ = np.linalg.qr(np.random.RandomState(seed).normal(size=[rows, cols]))
  return q


def write_sfm_folder(folder, model, num_id=4, reference_vertices=None):
  """A complete SFM-style folder generated from `model` (its mean, topology,
  landmarks, symmetry), with a random orthonormal identity basis."""
  os.makedirs(folder, exist_ok=True)
  n = model.num_vertices
  basis = _orthonormal(3 * n, num_id, 0).astype(np.float32)
  eigenvalues = np.array([900.0, 400.0, 100.0, 25.0][:num_id], np.float32)
  uv_file = np.stack([model.uv[:, 0], 1.0 - model.uv[:, 1]], 1)
  write_eos_shape_model(
      os.path.join(folder, sfm_reader.SHAPE_FILE), model.mean_shape, basis,
      eigenvalues, model.triangles, uv_file)
  names = ['open', 'smile']
  deltas = model.exp_basis[:2]
  write_eos_blendshapes(
      os.path.join(folder, sfm_reader.BLENDSHAPES_FILE), names, deltas)
  lm = model.landmarks68
  with open(os.path.join(folder, sfm_reader.LANDMARKS_FILE), 'w') as f:
    f.write('# test mapping\n[landmark_mappings]\n')
    for k in [8] + list(range(17, 68)):
      if k not in (60, 64):  # SFM leaves the inner mouth corners undefined
        f.write('%d = %d  # ibug %d\n' % (k + 1, lm[k], k + 1))
    f.write('[contour_landmarks]\nright = [ 1 ]\n')
  right, left = lm[0:8], lm[16:8:-1]
  with open(os.path.join(folder, sfm_reader.CONTOURS_FILE), 'w') as f:
    json.dump({'model_contour': {'right_contour': right.tolist(),
                                 'left_contour': left.tolist()}}, f)
  m = reference_vertices or n
  with open(os.path.join(folder, sfm_reader.SYMMETRY_FILE), 'w') as f:
    for i, s in enumerate(model.symmetry[:m]):
      f.write('%d%s\n' % (s + 1, ' # 1-based' if i == 0 else ''))
  return dict(basis=basis, eigenvalues=eigenvalues, names=names,
              deltas=deltas, uv_file=uv_file)


def _bfm2009_arrays(model, num_pc=90, num_tex_pc=85):
  n = model.num_vertices
  um = 1000.0
  shape_pc = _orthonormal(3 * n, num_pc, 1)
  tex_pc = _orthonormal(3 * n, num_tex_pc, 2)
  return {
      'shapeMU': (model.mean_shape.astype(np.float64) * um).reshape(-1, 1),
      'shapePC': shape_pc,
      'shapeEV': np.linspace(30000, 1000, num_pc).reshape(-1, 1),
      'texMU': (model.mean_albedo.astype(np.float64) * 255).reshape(-1, 1),
      'texPC': tex_pc,
      'texEV': np.linspace(300, 10, num_tex_pc).reshape(-1, 1),
      # BFM's own winding is unknown here: reversed, the reader must fix it.
      'tl': (model.triangles[:, ::-1] + 1).astype(np.float64),
  }


def _chen20_arrays(model, num_pc=90):
  n = model.num_vertices
  return {
      'mu_shape': model.mean_shape.astype(np.float64).reshape(-1, 1),
      'mu_exp': (0.5 * model.exp_basis[1]).astype(np.float64).reshape(-1, 1),
      'mu_tex': (model.mean_albedo.astype(np.float64) * 255).reshape(-1, 1),
      'bases_shape': _orthonormal(3 * n, num_pc, 3),
      'sigma_shape': np.linspace(30, 1, num_pc).reshape(1, -1),
      'bases_exp': _orthonormal(3 * n, 6, 4),
      'sigma_exp': np.linspace(10, 1, 6).reshape(1, -1),
      'bases_tex': _orthonormal(3 * n, num_pc, 5),
      'sigma_tex': np.linspace(300, 10, num_pc).reshape(1, -1),
      'tri': model.triangles.astype(np.float64),
      'mask_face': model.masks['face'].astype(np.float64).reshape(1, -1),
      'mask_wo_eye': model.masks['wo_eyes'].astype(np.float64).reshape(1, -1),
  }


class SyntheticModelTestCase(tf.test.TestCase, parameterized.TestCase):
  """Holds the built-in synthetic model as self.synthetic (no tests)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.synthetic = bfm.load('synthetic')


class ConverterRoundTripTest(SyntheticModelTestCase):

  def test_npz_round_trip_is_exact(self):
    path = os.path.join(self.get_temp_dir(), 'model.npz')
    self.synthetic.save(path)
    back = bfm.load(path)
    for key in ('mean_shape', 'id_basis', 'exp_basis', 'mean_albedo',
                'tex_basis', 'triangles', 'uv', 'landmarks68', 'symmetry'):
      self.assertAllEqual(getattr(back, key), getattr(self.synthetic, key),
                          msg=key)
    for key, mask in self.synthetic.masks.items():
      self.assertAllEqual(back.masks[key], mask)
    for a, b in zip(back.contour_candidates, self.synthetic.contour_candidates):
      self.assertAllEqual(a, b)
    self.assertEqual(back.exp_names, self.synthetic.exp_names)
    self.assertEqual(back.name, 'synthetic')
    coeff = np.random.RandomState(0).normal(size=[2, back.num_id])
    self.assertAllEqual(back.vertices(coeff), self.synthetic.vertices(coeff))

  def test_sfm_binary_round_trip(self):
    folder = os.path.join(self.get_temp_dir(), 'sfm')
    m = self.synthetic
    written = write_sfm_folder(folder, m, reference_vertices=73)
    model = sfm_reader.read_sfm(folder)
    self.assertAllEqual(model.mean_shape, m.mean_shape)  # already centred
    self.assertAllEqual(model.triangles, m.triangles)
    expected_id = (written['basis'] * np.sqrt(written['eigenvalues'])[None]).T
    self.assertAllClose(model.id_basis, expected_id.reshape(-1, m.num_vertices,
                                                            3), rtol=1e-6)
    self.assertAllEqual(model.exp_basis, written['deltas'])
    self.assertEqual(model.exp_names, written['names'])
    self.assertAllClose(model.uv, m.uv, atol=1e-7)  # v flipped back
    # Reference list for the first 73 vertices, nearest mirror for the rest:
    # on an exactly symmetric mesh both give the true mirror map.
    self.assertAllEqual(model.symmetry, m.symmetry)
    self.assertAllEqual(model.landmarks68[17:60], m.landmarks68[17:60])
    self.assertEqual(model.landmarks68[60], m.landmarks68[48])
    self.assertEqual(model.num_tex, 0)
    for k in range(8):
      self.assertIn(model.landmarks68[k], m.landmarks68[0:8])
    # The jaw's sliding candidates are the derived per-landmark bands, not
    # the contour lists: with a whole list per side, marching (the extreme
    # screen x among the candidates) put landmarks 0-7 on one vertex.
    derived = face_regions.contour_candidates(
        model.mean_shape, model.triangles, model.landmarks68)
    for got, want in zip(model.contour_candidates, derived):
      self.assertAllEqual(got, want)
    pose = np.array([[0.0, np.deg2rad(20.0), 0.0, 0.0, 0.0, 0.0]], np.float32)
    screen = camera.orthographic_project(model.mean_shape[None], pose, (64, 64))
    jaw = face_reconstruction.landmark_indices(model, screen).numpy()[0, :17]
    self.assertLen(set(jaw), 17)
    coeff = np.array([[1.0, -2.0, 0.5, 0.0]], np.float32)
    exp = np.array([[0.3, 1.0]], np.float32)
    expected = (m.mean_shape + np.einsum('k,knc->nc', coeff[0],
                                         expected_id.reshape(4, -1, 3)) +
                np.einsum('k,knc->nc', exp[0], written['deltas']))
    self.assertAllClose(model.vertices(coeff, exp)[0], expected, atol=1e-3)

  def test_eos_writer_reproduces_the_real_sfm_file(self):
    if not HAS_SFM:
      raise unittest.SkipTest('sfm data not found under %s' % SFM_DIR)
    source = os.path.join(SFM_DIR, sfm_reader.SHAPE_FILE)
    shape = sfm_reader.read_shape_model(source)
    copy = os.path.join(self.get_temp_dir(), 'copy.bin')
    write_eos_shape_model(copy, shape['mean'], shape['basis'],
                          shape['eigenvalues'], shape['triangles'],
                          shape['uv'])
    with open(source, 'rb') as a, open(copy, 'rb') as b:
      self.assertEqual(a.read(), b.read())
    names, deltas = sfm_reader.read_blendshapes(
        os.path.join(SFM_DIR, sfm_reader.BLENDSHAPES_FILE))
    copy = os.path.join(self.get_temp_dir(), 'blend.bin')
    write_eos_blendshapes(copy, names, deltas)
    with open(os.path.join(SFM_DIR, sfm_reader.BLENDSHAPES_FILE),
              'rb') as a, open(copy, 'rb') as b:
      self.assertEqual(a.read(), b.read())

  def test_bfm2009_mat_round_trip(self):
    m = self.synthetic
    tmp = self.get_temp_dir()
    arrays = _bfm2009_arrays(m)
    path = os.path.join(tmp, '01_MorphableModel.mat')
    sio.savemat(path, arrays)
    exp_path = os.path.join(tmp, 'exp.mat')
    ex_pc = (m.exp_basis.reshape(m.num_exp, -1).T * 1000.0).astype(np.float64)
    sio.savemat(exp_path, {'exPC': ex_pc,
                           'exEV': np.ones([m.num_exp, 1])})
    model = bfm2009_reader.read_bfm2009(path, landmarks=m.landmarks68,
                                        expression_path=exp_path)
    self.assertEqual((model.num_id, model.num_exp, model.num_tex),
                     (80, m.num_exp, 80))  # cut to 80 as Chen20
    self.assertAllEqual(model.triangles, m.triangles)  # winding fixed
    self.assertIn('units um', model.source)
    rng = np.random.RandomState(2)
    id_c = rng.normal(size=[1, 80])
    exp_c = rng.normal(size=[1, m.num_exp])
    tex_c = rng.normal(size=[1, 80]) * 0.1
    expected = (arrays['shapeMU'][:, 0] + arrays['shapePC'][:, :80] @ (
        arrays['shapeEV'][:80, 0] * id_c[0]) + ex_pc @ exp_c[0]) / 1000.0
    self.assertAllClose(model.vertices(id_c, exp_c)[0],
                        expected.reshape(-1, 3), atol=1e-3)
    albedo = (arrays['texMU'][:, 0] + arrays['texPC'][:, :80] @ (
        arrays['texEV'][:80, 0] * tex_c[0])) / 255.0
    self.assertAllClose(model.albedo(tex_c)[0],
                        np.clip(albedo, 0, 1).reshape(-1, 3), atol=1e-5)

  def test_bfm2009_expression_on_a_vertex_subset(self):
    m = self.synthetic
    tmp = self.get_temp_dir()
    path = os.path.join(tmp, 'bfm.mat')
    sio.savemat(path, _bfm2009_arrays(m, num_pc=5, num_tex_pc=5))
    keep = np.arange(73, m.num_vertices)  # drop the bottom grid row
    exp_path = os.path.join(tmp, 'exp_subset.mat')
    ex_pc = m.exp_basis[:, keep].reshape(m.num_exp, -1).T * 1000.0
    sio.savemat(exp_path, {'exPC': ex_pc, 'exEV': np.ones([m.num_exp, 1]),
                           'vertex_indices': (keep + 1).reshape(-1, 1)})
    lm = m.landmarks68.copy()
    lm[lm < 73] += 73  # bottom-row landmarks (chin) one row up
    self.assertTrue(np.all(np.isin(lm, keep)))
    model = bfm2009_reader.read_bfm2009(path, landmarks=lm,
                                        expression_path=exp_path)
    self.assertAllEqual(model.landmarks68, lm - 73)
    self.assertEqual(model.num_vertices, len(keep))
    self.assertEqual(model.num_triangles, m.num_triangles - 2 * 72)
    shifted = m.mean_shape[keep] - 0.5 * (m.mean_shape[keep].min(0) +
                                          m.mean_shape[keep].max(0))
    self.assertAllClose(model.mean_shape, shifted, atol=1e-4)
    self.assertAllClose(model.exp_basis, m.exp_basis[:, keep], atol=1e-5)

  def test_chen20_mat_round_trip(self):
    m = self.synthetic
    arrays = _chen20_arrays(m)
    path = os.path.join(self.get_temp_dir(), 'BFM2009_Model.mat')
    sio.savemat(path, arrays)
    model = bfm2009_reader.read_chen20(path, landmarks=m.landmarks68)
    self.assertEqual((model.num_id, model.num_exp, model.num_tex), (80, 6, 80))
    self.assertIn('units mm', model.source)
    self.assertAllEqual(model.triangles, m.triangles)
    self.assertAllEqual(model.masks['face'], m.masks['face'])
    self.assertAllEqual(model.masks['wo_eyes'], m.masks['wo_eyes'])
    rng = np.random.RandomState(3)
    id_c, exp_c = rng.normal(size=[1, 80]), rng.normal(size=[1, 6])
    mean = (arrays['mu_shape'] + arrays['mu_exp'])[:, 0].reshape(-1, 3)
    centre = 0.5 * (mean.min(0) + mean.max(0))
    expected = (arrays['mu_shape'] + arrays['mu_exp'])[:, 0] + (
        arrays['bases_shape'][:, :80] @ (arrays['sigma_shape'][0, :80] *
                                         id_c[0])) + (
                                             arrays['bases_exp'] @
                                             (arrays['sigma_exp'][0] *
                                              exp_c[0]))
    self.assertAllClose(model.vertices(id_c, exp_c)[0],
                        expected.reshape(-1, 3) - centre, atol=1e-4)
    self.assertAllClose(model.mean_albedo, m.mean_albedo, atol=1e-6)

  def test_convert_command_line(self):
    out = os.path.join(self.get_temp_dir(), 'cli', 'synthetic.npz')
    self.assertEqual(convert.main(['synthetic', '--out', out]), 0)
    self.assertEqual(bfm.load(out).num_vertices, self.synthetic.num_vertices)
    mat = os.path.join(self.get_temp_dir(), 'chen.mat')
    sio.savemat(mat, _chen20_arrays(self.synthetic, num_pc=3))
    lm_file = os.path.join(self.get_temp_dir(), 'lm.txt')
    np.savetxt(lm_file, self.synthetic.landmarks68 + 1, fmt='%d')
    out = os.path.join(self.get_temp_dir(), 'chen.npz')
    self.assertEqual(
        convert.main(['chen20', '--mat', mat, '--landmarks', lm_file,
                      '--landmarks_one_based', '--out', out]), 0)
    self.assertAllEqual(bfm.load(out).landmarks68, self.synthetic.landmarks68)
    self.assertEqual(convert.main(['bfm2009', '--mat', mat + '.missing',
                                   '--out', out]), 1)


class BadFileTest(SyntheticModelTestCase):

  def _npz_arrays(self):
    path = os.path.join(self.get_temp_dir(), 'good.npz')
    self.synthetic.save(path)
    with np.load(path) as f:
      return {k: f[k] for k in f.files}

  def _write(self, arrays, name='bad.npz'):
    path = os.path.join(self.get_temp_dir(), name)
    np.savez(path, **arrays)
    return path

  def test_truncated_npz(self):
    path = os.path.join(self.get_temp_dir(), 'model.npz')
    self.synthetic.save(path)
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(data[:len(data) // 2])
    with self.assertRaisesRegex(bfm.ModelFormatError, 'model.npz'):
      npz_format.read(path)

  @parameterized.named_parameters(
      ('missing_key', lambda a: a.pop('triangles'), 'triangles'),
      ('wrong_basis_shape', lambda a: a.update(id_basis=a['id_basis'][:, :-1]),
       'id_basis'),
      ('nan_mean', lambda a: a['mean_shape'].__setitem__((5, 1), np.nan),
       'mean_shape.*NaN'),
      ('landmark_out_of_range',
       lambda a: a['landmarks68'].__setitem__(3, 10**6), 'landmarks68'),
      ('symmetry_not_involution',
       lambda a: a['symmetry'].__setitem__(0, a['symmetry'][1]), 'symmetry'),
      ('albedo_out_of_range',
       lambda a: a['mean_albedo'].__setitem__((0, 0), 2.0), 'mean_albedo'),
      ('wrong_dtype', lambda a: a.update(triangles=a['triangles'] * 1.0),
       'triangles'),
  )
  def test_bad_npz_names_file_and_key(self, damage, pattern):
    arrays = self._npz_arrays()
    damage(arrays)
    path = self._write(arrays)
    with self.assertRaisesRegex(bfm.ModelFormatError, pattern) as ctx:
      bfm.load(path)
    self.assertIn(path, str(ctx.exception))

  def test_truncated_sfm_binary(self):
    folder = os.path.join(self.get_temp_dir(), 'sfm_trunc')
    write_sfm_folder(folder, self.synthetic, num_id=2)
    path = os.path.join(folder, sfm_reader.SHAPE_FILE)
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(data[:len(data) - 1000])
    with self.assertRaisesRegex(bfm.ModelFormatError,
                                'sfm_shape_3448.bin.*texture_coordinates'):
      sfm_reader.read_sfm(folder)
    with open(path, 'wb') as f:
      f.write(b'\x01\x00\x00\x00' + b'\xff' * 64)
    with self.assertRaisesRegex(bfm.ModelFormatError, 'implausible size'):
      sfm_reader.read_sfm(folder)

  @parameterized.named_parameters(
      ('missing_key', 'bfm2009', lambda a: a.pop('shapeEV'), 'shapeEV'),
      ('nan', 'bfm2009', lambda a: a['shapePC'].__setitem__((3, 2), np.nan),
       'shapePC.*NaN'),
      ('zero_based_tl', 'bfm2009', lambda a: a.update(tl=a['tl'] - 1), 'tl'),
      ('wrong_shape', 'bfm2009',
       lambda a: a.update(texMU=a['texMU'][:-3]), 'texMU'),
      ('chen20_missing_mask', 'chen20', lambda a: a.pop('mask_wo_eye'),
       'mask_wo_eye'),
      ('chen20_sigma_length', 'chen20',
       lambda a: a.update(sigma_exp=a['sigma_exp'][:, :-1]), 'sigma_exp'),
  )
  def test_bad_mat_names_file_and_key(self, layout, damage, pattern):
    m = self.synthetic
    if layout == 'bfm2009':
      arrays, read = _bfm2009_arrays(m, 4, 4), bfm2009_reader.read_bfm2009
    else:
      arrays, read = _chen20_arrays(m, 4), bfm2009_reader.read_chen20
    damage(arrays)
    path = os.path.join(self.get_temp_dir(), 'bad_%s.mat' % layout)
    sio.savemat(path, arrays)
    with self.assertRaisesRegex(bfm.ModelFormatError, pattern) as ctx:
      read(path, landmarks=m.landmarks68)
    self.assertIn(path, str(ctx.exception))

  def test_truncated_mat_and_missing_landmarks(self):
    m = self.synthetic
    path = os.path.join(self.get_temp_dir(), 'trunc.mat')
    sio.savemat(path, _bfm2009_arrays(m, 4, 4))
    with self.assertRaisesRegex(bfm.ModelFormatError, 'iBUG-68.*--landmarks'):
      bfm2009_reader.read_bfm2009(path)
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(data[:len(data) // 3])
    with self.assertRaisesRegex(bfm.ModelFormatError,
                                'trunc.mat.*not a readable .mat'):
      bfm2009_reader.read_bfm2009(path, landmarks=m.landmarks68)

  def test_bad_ict_file(self):
    m = self.synthetic
    arrays = dict(mean=m.mean_shape / 10, id_basis=m.id_basis / 10,
                  exp_basis=m.exp_basis / 10, tris=m.triangles, uv=m.uv,
                  lm68=m.landmarks68)
    good = self._write(arrays, 'ict_good.npz')
    model = ict_reader.read_ict(good)
    self.assertAllClose(model.mean_shape, m.mean_shape, atol=1e-4)  # cm->mm
    self.assertAllClose(model.id_basis, m.id_basis, atol=1e-5)
    arrays['id_basis'] = arrays['id_basis'].copy()
    arrays['id_basis'][0, 0, 0] = np.inf
    path = self._write(arrays, 'ict_nan.npz')
    with self.assertRaisesRegex(bfm.ModelFormatError, 'ict_nan.npz.*id_basis'):
      ict_reader.read_ict(path)
    del arrays['lm68']
    path = self._write(arrays, 'ict_nolm.npz')
    with self.assertRaisesRegex(bfm.ModelFormatError, 'ict_nolm.npz.*lm68'):
      ict_reader.read_ict(path)

  def test_missing_data_messages(self):
    empty = self.get_temp_dir()
    with self.assertRaisesRegex(FileNotFoundError,
                                'patrikhuber/eos.*bfm.convert sfm'):
      bfm.load('sfm', data_dir=os.path.join(empty, 'nothing'))
    with self.assertRaisesRegex(FileNotFoundError, 'ICT-FaceKit.*bfm.convert'):
      bfm.load('ict', data_dir=os.path.join(empty, 'nothing'))
    with self.assertRaisesRegex(FileNotFoundError, 'python -m bfm.convert'):
      bfm.load(os.path.join(empty, 'absent.npz'))
    with self.assertRaisesRegex(ValueError, 'unknown model'):
      bfm.load('bfm2017')

  def test_wrong_coefficient_shapes(self):
    m = self.synthetic
    with self.assertRaisesRegex(ValueError, 'id_coeff must be'):
      m.vertices(tf.zeros([1, m.num_id + 1]))
    with self.assertRaisesRegex(ValueError, 'exp_coeff must be'):
      m.vertices(tf.zeros([1, m.num_id]), tf.zeros([m.num_exp]))


if __name__ == '__main__':
  tf.test.main()
