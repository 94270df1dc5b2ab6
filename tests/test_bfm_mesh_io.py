"""Tests for bfm/mesh_io.py and eval/landmark_io.py."""

import io
import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from eval import landmark_io
from bfm import mesh_io


def _write(path, text):
  with open(path, 'w') as f:
    f.write(text)
  return path


class ObjTest(tf.test.TestCase, parameterized.TestCase):

  def test_round_trip(self):
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(50, 3)) * 100
    triangles = rng.integers(0, 50, (70, 3))
    path = os.path.join(self.get_temp_dir(), 'sub', 'mesh.obj')
    mesh_io.write_obj(path, vertices, triangles, precision=9)
    mesh = mesh_io.read_obj(path)
    self.assertAllClose(mesh.vertices, vertices, atol=1e-8)
    self.assertAllEqual(mesh.triangles, triangles)
    self.assertEqual(mesh.triangles.dtype, np.int32)
    self.assertEqual(mesh.path, path)

  def test_variants_polygons_negative_indices_and_extras(self):
    path = _write(
        os.path.join(self.get_temp_dir(), 'variants.obj'), '# comment\n'
        'mtllib x.mtl\n'
        'v 0 0 0 1 0 0\n'  # vertex colour ignored
        'v 1 0 0\nv 1 1 0\n'
        'v 0 1 \\\n 0\n'  # line continuation
        'vt 0 0\nvn 0 0 1\ng face\ns off\nusemtl skin\n'
        'f 1/1/1 2/1/1 3/1/1 4/1/1\n'  # quad -> 2 triangles
        'f -4//1 -2//1 -1//1\n')  # relative indices
    mesh = mesh_io.read_obj(path)
    self.assertAllClose(mesh.vertices,
                        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    self.assertAllEqual(mesh.triangles, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])

  @parameterized.named_parameters(
      ('missing', None, 'cannot read'),
      ('empty', '', 'no vertices'),
      ('not_obj', 'hello world\n', 'no vertices'),
      ('nan', 'v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n', 'vertex 2.*NaN'),
      ('short_vertex', 'v 0 0\n', ':1: vertex needs 3'),
      ('bad_number', 'v 0 0 x\n', ':1: bad vertex'),
      ('index_range', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n', ':4:.*range'),
      ('index_zero', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n', ':4:.*1-based'),
      ('two_corners', 'v 0 0 0\nv 1 0 0\nf 1 2\n', ':3: face needs'),
      ('no_faces', 'v 0 0 0\nv 1 0 0\nv 0 1 0\n', 'no faces'),
  )
  def test_errors_name_the_file(self, text, message):
    path = os.path.join(self.get_temp_dir(), f'bad_{self._testMethodName}.obj')
    if text is not None:
      _write(path, text)
    with self.assertRaisesRegex(mesh_io.MeshFileError,
                                f'{os.path.basename(path)}.*{message}'):
      mesh_io.read_obj(path)

  def test_point_cloud_allowed_on_request(self):
    path = _write(os.path.join(self.get_temp_dir(), 'cloud.obj'),
                  'v 0 0 0\nv 1 0 0\n')
    mesh = mesh_io.read_obj(path, allow_empty_triangles=True)
    self.assertEqual(mesh.num_vertices, 2)
    self.assertEqual(mesh.num_triangles, 0)

  def test_write_rejects_bad_input(self):
    path = os.path.join(self.get_temp_dir(), 'out.obj')
    with self.assertRaisesRegex(ValueError, 'out.obj.*NaN'):
      mesh_io.write_obj(path, [[0, 0, np.nan]])
    with self.assertRaisesRegex(ValueError, 'out.obj.*out of range'):
      mesh_io.write_obj(path, np.zeros([3, 3]), [[0, 1, 3]])


class LandmarkTest(tf.test.TestCase):

  def test_formats(self):
    points = np.arange(21, dtype=np.float64).reshape(7, 3) - 5.5
    tmp = self.get_temp_dir()
    lnd = os.path.join(tmp, 'a.lnd')  # FG 2018: index x y z
    _write(lnd, ''.join(f'{i + 1} {p[0]} {p[1]} {p[2]}\n'
                        for i, p in enumerate(points)) + '\n')
    txt = os.path.join(tmp, 'a.txt')
    landmark_io.write_landmarks(txt, points)
    npy = os.path.join(tmp, 'a.npy')
    landmark_io.write_landmarks(npy, points)
    pp = _write(os.path.join(tmp, 'a.pp'), '<!DOCTYPE PickedPoints>\n'
                '<PickedPoints><DocumentData></DocumentData>\n' + ''.join(
                    f'<point x="{p[0]}" y="{p[1]}" z="{p[2]}" active="1" '
                    f'name="{i}"/>\n' for i, p in enumerate(points)) +
                '</PickedPoints>\n')
    for path in (lnd, txt, npy, pp):
      self.assertAllClose(landmark_io.read_landmarks(path, 7), points)

  def test_errors_name_the_file(self):
    tmp = self.get_temp_dir()
    path = _write(os.path.join(tmp, 'six.txt'), '1 2 3\n' * 6)
    with self.assertRaisesRegex(ValueError, 'six.txt.*expected 7.*found 6'):
      landmark_io.read_landmarks(path, expected_count=7)
    path = _write(os.path.join(tmp, 'nan.txt'), '1 2 nan\n')
    with self.assertRaisesRegex(ValueError, 'nan.txt.*NaN'):
      landmark_io.read_landmarks(path)
    path = _write(os.path.join(tmp, 'two.txt'), '1 2\n')
    with self.assertRaisesRegex(ValueError, 'two.txt:1:.*got 2 values'):
      landmark_io.read_landmarks(path)
    path = _write(os.path.join(tmp, 'broken.pp'), '<PickedPoints><point')
    with self.assertRaisesRegex(ValueError, 'broken.pp.*not a MeshLab'):
      landmark_io.read_landmarks(path)
    with self.assertRaisesRegex(ValueError, 'absent.npy.*not found'):
      landmark_io.read_landmarks(os.path.join(tmp, 'absent.npy'))


class WriteObjAttributesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((False, False), (True, False), (False, True),
                            (True, True))
  def test_round_trip(self, with_normals, with_uvs):
    rng = np.random.RandomState(0)
    verts = rng.normal(size=[5, 3])
    tris = np.array([[0, 1, 2], [2, 3, 4]])
    normals = rng.normal(size=[5, 3]) if with_normals else None
    uvs = rng.uniform(size=[5, 2]) if with_uvs else None
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'm.obj')
    mesh_io.write_obj(path, verts, tris, uvs=uvs, normals=normals)
    mesh = mesh_io.read_obj(path)
    self.assertAllClose(mesh.vertices, verts, atol=1e-6)
    self.assertAllEqual(mesh.triangles, tris)
    lines = open(path).read().splitlines()
    vt = np.array([l.split()[1:] for l in lines if l.startswith('vt ')],
                  float).reshape(-1, 2)
    vn = np.array([l.split()[1:] for l in lines if l.startswith('vn ')],
                  float).reshape(-1, 3)
    self.assertAllClose(vt, uvs if with_uvs else np.zeros([0, 2]), atol=1e-6)
    self.assertAllClose(vn, normals if with_normals else np.zeros([0, 3]),
                        atol=1e-6)

  @parameterized.parameters((False, False), (True, False), (False, True),
                            (True, True))
  def test_text_is_savetxt_text(self, with_normals, with_uvs):
    # The reference: np.savetxt row by row, as write_obj wrote before it
    # formatted blocks of rows at once; 70,001 rows span two blocks.
    rng = np.random.RandomState(1)
    num = 70001
    verts = rng.normal(size=[num, 3]) * 100
    verts[0] = [-0.0, 0.0, 1e-9]  # Signed zero and rounding to zero.
    tris = rng.randint(0, num, [num, 3])
    normals = rng.normal(size=[num, 3]) if with_normals else None
    uvs = rng.uniform(size=[num, 2]) if with_uvs else None
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'm.obj')
    mesh_io.write_obj(path, verts, tris, uvs=uvs, normals=normals,
                      mtllib='m.mtl', material='face', comments=('a', 'b'),
                      precision=5)
    expected = io.StringIO()
    expected.write('# a\n# b\nmtllib m.mtl\n')
    np.savetxt(expected, verts, fmt='v %.5f %.5f %.5f')
    if with_uvs:
      np.savetxt(expected, uvs, fmt='vt %.6f %.6f')
    if with_normals:
      np.savetxt(expected, normals, fmt='vn %.5f %.5f %.5f')
    expected.write('usemtl face\n')
    corner = {(False, False): '%d', (True, False): '%d/%d',
              (False, True): '%d//%d', (True, True): '%d/%d/%d'}[
                  (with_uvs, with_normals)]
    np.savetxt(expected, np.repeat(tris + 1, corner.count('%'), axis=1),
               fmt='f ' + ' '.join([corner] * 3))
    with open(path, encoding='utf-8') as f:
      self.assertEqual(f.read(), expected.getvalue())

  def test_bad_shapes_name_the_file(self):
    with self.assertRaisesRegex(ValueError, 'x.obj.*uvs'):
      mesh_io.write_obj('x.obj', np.zeros([3, 3]), [[0, 1, 2]],
                        uvs=np.zeros([2, 2]))
    with self.assertRaisesRegex(ValueError, 'x.obj.*out of range'):
      mesh_io.write_obj('x.obj', np.zeros([3, 3]), [[0, 1, 3]])


if __name__ == '__main__':
  tf.test.main()
