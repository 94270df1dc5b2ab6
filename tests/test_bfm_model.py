"""Tests for bfm/: MorphableModel evaluation, the built-in synthetic face,
normals, symmetry, UVs and regions, on every model that is available."""

import os
import unittest

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import bfm
from tests import test_utils
from bfm import cylindrical_uv
from bfm import face_regions
from bfm import mesh_geometry
from bfm import sfm_reader
from bfm import symmetry as symmetry_lib

DATA_DIR = bfm.default_data_dir()
HAS_SFM = all(
    os.path.isfile(os.path.join(DATA_DIR, 'sfm', f)) for f in sfm_reader.FILES)
HAS_ICT = os.path.isfile(os.path.join(DATA_DIR, 'ict', 'ict_face.npz'))
MODELS = (('synthetic', True), ('sfm', HAS_SFM), ('ict', HAS_ICT))
# iBUG-68 left/right mirror pairs (0-based), from the annotation scheme.
IBUG_MIRROR_PAIRS = ([(k, 16 - k) for k in range(8)] +
                     [(17 + k, 26 - k) for k in range(5)] +
                     [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43),
                      (39, 42), (40, 47), (41, 46), (48, 54), (49, 53),
                      (50, 52), (59, 55), (58, 56), (60, 64), (61, 63),
                      (67, 65)])


def _load(name, available):
  if not available:
    raise unittest.SkipTest(
        '%s data not found under %s (set FULLPOSE_DATA_DIR; see '
        '../shared/data/README.md)' % (name, DATA_DIR))
  return bfm.load(name)


class VertexNormalsTest(tf.test.TestCase):

  def test_sphere_normals_are_radial_and_outward(self):
    verts, tris = test_utils.icosphere(50.0, 2)
    normals = mesh_geometry.vertex_normals(verts[None].astype(np.float32),
                                           tris)[0]
    radial = verts / np.linalg.norm(verts, axis=1, keepdims=True)
    # Area weighting on an irregular icosphere tilts normals by a few degrees.
    self.assertAllClose(normals, radial, atol=5e-2)
    self.assertGreater(np.min(np.sum(normals * radial, 1)), 0.995)
    self.assertAllClose(np.linalg.norm(normals, axis=1),
                        np.ones(len(verts)), atol=1e-5)

  def test_flipped_winding_flips_normals(self):
    verts, tris = test_utils.icosphere(50.0, 1)
    n = mesh_geometry.vertex_normals(verts.astype(np.float32), tris)
    flipped = mesh_geometry.vertex_normals(verts.astype(np.float32),
                                           tris[:, ::-1])
    self.assertAllClose(n, -flipped, atol=1e-6)

  def test_batched_matches_numpy_and_has_finite_gradient(self):
    verts, tris = test_utils.icosphere(50.0, 1)
    rng = np.random.RandomState(0)
    batch = (verts[None] * rng.uniform(0.8, 1.2, [3, len(verts), 3])).astype(
        np.float32)
    x = tf.constant(batch)
    with tf.GradientTape() as tape:
      tape.watch(x)
      n = mesh_geometry.vertex_normals(x, tris)
      loss = tf.reduce_sum(n[..., 2])
    for b in range(3):
      self.assertAllClose(n[b], mesh_geometry.vertex_normals_np(batch[b], tris),
                          atol=1e-5)
    grad = tape.gradient(loss, x)
    self.assertTrue(np.all(np.isfinite(grad.numpy())))

  def test_orient_outward_fixes_inward_winding(self):
    verts, tris = test_utils.icosphere(50.0, 1)
    fixed, flipped = mesh_geometry.orient_outward(verts, tris[:, ::-1])
    self.assertTrue(flipped)
    self.assertAllEqual(fixed, tris)
    # The reference point sits behind a face mask's centre (half the depth
    # back), so on a closed sphere a few back triangles face it.
    self.assertGreater(mesh_geometry.outward_fraction(verts, tris), 0.9)
    self.assertLess(mesh_geometry.outward_fraction(verts, tris[:, ::-1]), 0.1)


class ModelTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*MODELS)
  def test_zero_coefficients_give_the_mean(self, name, available):
    model = _load(name, available)
    verts = model.vertices(tf.zeros([2, model.num_id]),
                           tf.zeros([2, model.num_exp]))
    self.assertEqual(verts.shape, (2, model.num_vertices, 3))
    self.assertAllClose(verts, np.stack([model.mean_shape] * 2))
    albedo = model.albedo(tf.zeros([2, model.num_tex]))
    self.assertAllClose(albedo, np.stack([model.mean_albedo] * 2))

  @parameterized.parameters(*MODELS)
  def test_vertices_are_linear_in_the_bases(self, name, available):
    model = _load(name, available)
    rng = np.random.RandomState(1)
    id_c = rng.normal(size=[2, model.num_id]).astype(np.float32)
    exp_c = rng.uniform(0, 1, size=[2, model.num_exp]).astype(np.float32)
    expected = (model.mean_shape[None] +
                np.einsum('bk,knc->bnc', id_c, model.id_basis) +
                np.einsum('bk,knc->bnc', exp_c, model.exp_basis))
    self.assertAllClose(model.vertices(id_c, exp_c), expected, atol=1e-3)
    lm = model.landmarks(tf.constant(expected, tf.float32))
    self.assertAllClose(lm, expected[:, model.landmarks68], atol=1e-3)

  @parameterized.parameters(*MODELS)
  def test_attribute_contract(self, name, available):
    model = _load(name, available)
    n = model.num_vertices
    self.assertEqual(model.mean_shape.dtype, np.float32)
    self.assertEqual(model.triangles.dtype, np.int32)
    self.assertEqual(model.id_basis.shape, (model.num_id, n, 3))
    self.assertEqual(model.tex_basis.shape, (model.num_tex, n, 3))
    # Bounding-box centre at the origin.
    lo, hi = model.mean_shape.min(0), model.mean_shape.max(0)
    self.assertAllClose((lo + hi) / 2, np.zeros(3), atol=1e-3)
    # Face-sized, in millimetres: 100-250 mm wide and tall.
    self.assertBetween(hi[0] - lo[0], 100, 250)
    self.assertBetween(hi[1] - lo[1], 100, 250)
    self.assertTrue(np.all((model.uv >= 0) & (model.uv <= 1)))
    self.assertLen(model.contour_candidates, 17)
    for k, cand in enumerate(model.contour_candidates):
      self.assertIn(model.landmarks68[k], cand)
    self.assertAllEqual(model.keypoints7,
                        model.landmarks68[[36, 39, 42, 45, 33, 48, 54]])
    for key in ('face', 'wo_eyes', 'wo_nose', 'wo_eyebrows', 'detail'):
      self.assertEqual(model.masks[key].shape, (n,))
      self.assertEqual(model.masks[key].dtype, bool)
    detail = (model.masks['face'] & model.masks['wo_eyes'] &
              model.masks['wo_nose'] & model.masks['wo_eyebrows'])
    self.assertAllEqual(model.masks['detail'], detail)
    self.assertGreater(model.masks['detail'].sum(), n // 4)

  @parameterized.parameters(*MODELS)
  def test_axes_follow_the_convention(self, name, available):
    model = _load(name, available)
    lm = model.mean_shape[model.landmarks68]
    self.assertLess(lm[36, 0], lm[45, 0])  # right eye at -x (image left)
    self.assertGreater(lm[27, 1], lm[57, 1])  # nose bridge above the lips
    self.assertGreater(lm[57, 1], lm[8, 1])  # lips above the chin
    # The nose tip is near the front-most point (z towards the viewer).
    self.assertGreater(lm[30, 2], np.percentile(model.mean_shape[:, 2], 98))

  @parameterized.parameters(*MODELS)
  def test_normals_point_outward_on_the_mean_face(self, name, available):
    model = _load(name, available)
    normals = model.vertex_normals(model.mean_shape[None])[0].numpy()
    lm = model.landmarks68
    # Landmarks on the front of the face face the viewer (+z).
    front = [27, 28, 30, 33, 8, 51, 57]
    self.assertTrue(np.all(normals[lm[front], 2] > 0.3), normals[lm[front]])
    # Away from the head centre (behind the face) almost everywhere.
    self.assertGreater(
        mesh_geometry.outward_fraction(model.mean_shape, model.triangles),
        0.95)

  @parameterized.parameters(*MODELS)
  def test_symmetry_is_an_involution_that_mirrors(self, name, available):
    model = _load(name, available)
    sym = model.symmetry
    self.assertAllEqual(sym[sym], np.arange(model.num_vertices))
    err = symmetry_lib.mismatch_mm(model.mean_shape, sym)
    self.assertAllClose(err.max(), model.symmetry_max_error_mm, atol=1e-4)
    self.assertLess(np.median(err), 1.0)
    self.assertLess(err.max(), 5.0)
    # Mirror landmark pairs map onto each other (contour points excluded for
    # SFM, whose landmarks 0-16 are defaults on the contour lists).
    pairs = [p for p in IBUG_MIRROR_PAIRS if p[0] > 16]
    for a, b in pairs:
      mirrored = model.mean_shape[model.landmarks68[a]] * [-1, 1, 1]
      self.assertLess(
          np.linalg.norm(mirrored - model.mean_shape[model.landmarks68[b]]),
          6.0, 'landmarks %d/%d' % (a, b))

  @parameterized.parameters(*MODELS)
  def test_uv_chart_is_not_folded(self, name, available):
    model = _load(name, available)
    areas = cylindrical_uv.uv_signed_areas(model.uv, model.triangles)
    # Every triangle keeps the outward (counter-clockwise) orientation in UV.
    self.assertGreater(np.mean(areas > 0), 0.999)
    # u grows with x, v with y.
    self.assertGreater(np.corrcoef(model.uv[:, 0], model.mean_shape[:, 0])[0,
                                                                            1],
                       0.9)
    self.assertGreater(np.corrcoef(model.uv[:, 1], model.mean_shape[:, 1])[0,
                                                                            1],
                       0.9)

  @parameterized.parameters(*MODELS)
  def test_regions_hold_their_landmarks(self, name, available):
    model = _load(name, available)
    lm = model.landmarks68
    masks = model.masks
    self.assertFalse(np.any(masks['wo_eyes'][lm[36:48]]))
    self.assertFalse(np.any(masks['wo_nose'][lm[[28, 29, 30]]]))
    self.assertFalse(np.any(masks['wo_eyebrows'][lm[[19, 24]]]))
    # Cheek and forehead points are in the detail region.
    self.assertTrue(np.all(masks['face'][lm[17:68]]))
    self.assertTrue(np.all(masks['detail'][lm[[48, 54, 57]]]))

  def test_sfm_identity_basis_is_orthogonal_with_eigenvalue_norms(self):
    if not HAS_SFM:
      raise unittest.SkipTest('sfm data not found under %s' % DATA_DIR)
    model = bfm.load('sfm')
    shape = sfm_reader.read_shape_model(
        os.path.join(DATA_DIR, 'sfm', sfm_reader.SHAPE_FILE))
    flat = model.id_basis.reshape(model.num_id, -1).astype(np.float64)
    gram = flat @ flat.T
    self.assertAllClose(np.diag(gram), shape['eigenvalues'], rtol=1e-4)
    off = gram - np.diag(np.diag(gram))
    self.assertLess(np.abs(off).max() / gram.max(), 1e-5)

  def test_sfm_sizes(self):
    sfm = _load('sfm', HAS_SFM)
    self.assertEqual((sfm.num_vertices, sfm.num_triangles, sfm.num_id,
                      sfm.num_exp, sfm.num_tex), (3448, 6736, 63, 6, 0))
    self.assertEqual(sfm.exp_names, ['anger', 'disgust', 'fear', 'happiness',
                                     'sadness', 'surprise'])
    self.assertIn(sfm.landmarks68[30], [114])  # ibug 31 = SFM vertex 114

  def test_ict_sizes_and_units(self):
    ict = _load('ict', HAS_ICT)
    self.assertEqual((ict.num_vertices, ict.num_id, ict.num_exp, ict.num_tex),
                     (6706, 100, 53, 0))
    # Centimetres became millimetres: the face is ~15 cm wide.
    self.assertBetween(np.ptp(ict.mean_shape[:, 0]), 120, 200)


class SyntheticFaceTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = bfm.load('synthetic')

  def test_sizes_and_memo(self):
    m = self.model
    self.assertBetween(m.num_vertices, 3000, 6000)
    self.assertGreater(m.num_id, 5)
    self.assertGreater(m.num_exp, 3)
    self.assertGreater(m.num_tex, 3)
    self.assertIs(bfm.load('synthetic'), m)
    self.assertLen(set(m.landmarks68.tolist()), 68)
    self.assertIn('not a statistical', m.source)

  def test_identity_basis_is_pca_like(self):
    flat = self.model.id_basis.reshape(self.model.num_id, -1).astype(
        np.float64)
    gram = flat @ flat.T
    norms = np.sqrt(np.diag(gram))
    cos = gram / norms[:, None] / norms[None]
    self.assertAllClose(cos, np.eye(len(cos)), atol=1e-5)
    self.assertTrue(np.all(np.diff(norms) < 0), norms)
    # 1-sigma identity changes move vertices by millimetres, not metres.
    rms = norms / np.sqrt(self.model.num_vertices)
    self.assertTrue(np.all((rms > 0.1) & (rms < 10)), rms)

  def test_exact_mirror_symmetry(self):
    self.assertLess(self.model.symmetry_max_error_mm, 1e-4)
    lm = self.model.landmarks68
    for a, b in IBUG_MIRROR_PAIRS:
      self.assertEqual(self.model.symmetry[lm[a]], lm[b])

  def test_landmarks_lie_on_the_features_in_a_frontal_view(self):
    m = self.model
    v = m.mean_shape
    lm = v[m.landmarks68]
    normals = mesh_geometry.vertex_normals_np(v, m.triangles)
    # Inner landmarks are visible from the front.
    self.assertTrue(np.all(normals[m.landmarks68[17:], 2] > 0))
    # Nose tip: the front-most vertex region; bridge rises towards the tip.
    self.assertGreater(lm[30, 2], v[:, 2].max() - 3.0)
    self.assertTrue(np.all(np.diff(lm[27:31, 2]) > 0))
    # Eyes are recessed: every eye landmark lies deeper than the brow line
    # above it (brow depth interpolated at its x) and the nose bridge.
    brows = lm[17:27][np.argsort(lm[17:27, 0])]
    brow_z = np.interp(lm[36:48, 0], brows[:, 0], brows[:, 2])
    self.assertTrue(np.all(lm[36:48, 2] < brow_z - 3.0), brow_z - lm[36:48, 2])
    self.assertTrue(np.all(lm[36:48, 2] < lm[27, 2]))
    # Vertical order in the image: brows > eyes > nose base > lips > chin.
    self.assertGreater(lm[17:27, 1].min(), lm[36:48, 1].max())
    self.assertGreater(lm[36:48, 1].min(), lm[31:36, 1].max())
    self.assertGreater(lm[31:36, 1].min(), lm[48:68, 1].max())
    self.assertGreater(lm[48:68, 1].min(), lm[8, 1])
    # Lips protrude beyond the mouth corners; the chin is the lowest landmark.
    self.assertGreater(lm[51, 2], lm[48, 2])
    self.assertLessEqual(lm[8, 1], lm[:, 1].min() + 1e-4)
    # Jaw landmarks lie on the frontal silhouette: no vertex in their height
    # band reaches further out on their side.
    for k in list(range(8)) + list(range(9, 17)):
      band = np.abs(v[:, 1] - lm[k, 1]) < 1.0
      side = np.sign(lm[k, 0])
      self.assertGreaterEqual(side * lm[k, 0], (side * v[band, 0]).max() - 1.0)

  def test_works_in_tf_function_then_eagerly(self):
    m = bfm.morphable_model.MorphableModel(
        **{k: getattr(self.model, k) for k in (
            'name', 'mean_shape', 'id_basis', 'exp_basis', 'mean_albedo',
            'tex_basis', 'triangles', 'uv', 'landmarks68',
            'contour_candidates', 'masks', 'symmetry')})  # empty TF cache

    @tf.function(input_signature=[
        tf.TensorSpec([None, m.num_id]), tf.TensorSpec([None, m.num_exp])])
    def shape_and_normals(id_c, exp_c):
      verts = m.vertices(id_c, exp_c)
      return verts, m.vertex_normals(verts)

    id_c = tf.random.normal([2, m.num_id], seed=1)
    exp_c = tf.zeros([2, m.num_exp])
    verts, normals = shape_and_normals(id_c, exp_c)
    self.assertAllClose(verts, m.vertices(id_c, exp_c), atol=1e-4)
    self.assertAllClose(normals, m.vertex_normals(verts), atol=1e-5)
    with tf.GradientTape() as tape:
      tape.watch(id_c)
      loss = tf.reduce_sum(m.landmarks(m.vertices(id_c))[..., 0])
    grad = tape.gradient(loss, id_c)
    expected = m.id_basis[:, m.landmarks68, 0].sum(1)
    self.assertAllClose(grad, np.stack([expected] * 2), atol=1e-3)

  def test_albedo_has_dark_brows_and_red_lips(self):
    m = self.model
    a = m.mean_albedo[m.landmarks68]
    skin = m.mean_albedo[m.landmarks68[[2, 14]]].mean(0)
    self.assertLess(a[[19, 24]].mean(), skin.mean() - 0.2)
    lips = a[[51, 57]].mean(0)
    self.assertGreater(lips[0] - lips[1], skin[0] - skin[1])

  def test_expressions_move_the_mouth(self):
    m = self.model
    exp = np.zeros([1, m.num_exp], np.float32)
    exp[0, m.exp_names.index('jaw_open')] = 1.0
    verts = m.vertices(tf.zeros([1, m.num_id]), exp)[0].numpy()
    lm = m.landmarks68
    opening = verts[lm[57], 1] - m.mean_shape[lm[57], 1]
    self.assertLess(opening, -3.0)  # lower lip moves down
    self.assertAllClose(verts[lm[27]], m.mean_shape[lm[27]], atol=0.1)


class DerivedGeometryTest(tf.test.TestCase):

  def test_mirror_map_recovers_a_shuffled_symmetric_cloud(self):
    rng = np.random.RandomState(3)
    half = rng.uniform([1, -50, -50], [60, 50, 50], [200, 3])
    midline = rng.uniform([0, -50, -50], [0, 50, 50], [10, 3])
    points = np.concatenate([half, half * [-1, 1, 1], midline])
    order = rng.permutation(len(points))
    shuffled = points[order]
    sym, max_err, _ = symmetry_lib.mirror_map(shuffled +
                                              rng.normal(0, 0.01,
                                                         shuffled.shape))
    inverse = np.argsort(order)
    expected = np.concatenate([np.arange(200, 400), np.arange(200),
                               np.arange(400, 410)])
    self.assertAllEqual(sym, inverse[expected[order]])
    self.assertLess(max_err, 0.1)

  def test_cylindrical_uv_of_a_cylinder(self):
    # A half-cylinder of radius 60 mm (azimuth +-99 degrees, 9 degree steps)
    # and height 80 mm (10 mm steps): its x extent is the diameter, so the
    # derived axis is the cylinder's own.
    step = np.pi / 20
    theta = np.arange(-11, 12) * step
    t, yy = np.meshgrid(theta, np.linspace(-40, 40, 9))
    radius = 60.0
    points = np.stack([radius * np.sin(t), yy, radius * np.cos(t)],
                      -1).reshape(-1, 3)
    uv = cylindrical_uv.cylindrical_uv(points, margin=0.1)
    u, v = uv[:, 0].reshape(t.shape), uv[:, 1].reshape(t.shape)
    # u linear in the azimuth, v linear in height, each filling [0.1, 0.9].
    self.assertAllClose(np.diff(u, axis=1), np.full((9, 22), 0.8 / 22),
                        atol=1e-6)
    self.assertAllClose(np.diff(v, axis=0), np.full((8, 23), 0.8 / 8),
                        atol=1e-6)
    self.assertAllClose([u.min(), u.max(), v.min(), v.max()],
                        [0.1, 0.9, 0.1, 0.9], atol=1e-6)
    # Texel sizes: arc length of one azimuth step over its texels, etc.
    tris = []
    for r in range(8):
      for c in range(22):
        a, b = r * 23 + c, r * 23 + c + 1
        tris += [(a, b, b + 23), (a, b + 23, a + 23)]
    su, sv = cylindrical_uv.texel_size_mm(points, uv, np.array(tris), 100)
    chord = 2 * radius * np.sin(step / 2)
    texels_u, texels_v = 0.8 / 22 * 100, 0.8 / 8 * 100  # per grid step
    self.assertAllClose([su, sv], [chord / texels_u, 10 / texels_v],
                        rtol=1e-4)

  def test_polygon_and_polyline_helpers(self):
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    pts = np.array([[1, 1], [3, 1], [-0.1, 1], [1.9, 1.9]])
    self.assertAllEqual(face_regions.points_in_polygon(pts, square),
                        [True, False, False, True])
    line = np.array([[0, 0], [10, 0]], float)
    self.assertAllClose(
        face_regions.distance_to_polyline(np.array([[5, 3], [-4, 3]]), line),
        [3, 5])


if __name__ == '__main__':
  tf.test.main()
