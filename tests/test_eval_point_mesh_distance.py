"""Tests for eval/point_mesh_distance.py: exact point-to-surface distances."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from eval import alignment
from eval import point_mesh_distance as pmd

# Right triangle a=(0,0,0), b=(4,0,0), c=(0,3,0) in the z=0 plane. Each case:
# (query point with height h=0.7 above the plane, expected closest point).
# Edge/vertex cases lie in the edge's / vertex's Voronoi region, so the
# answer is the edge foot / the vertex by construction.
_H = 0.7
_CASES = {
    'interior': ([1.0, 1.0, _H], [1.0, 1.0, 0.0]),
    'on_face': ([1.0, 0.5, 0.0], [1.0, 0.5, 0.0]),
    'edge_ab': ([2.0, -1.5, _H], [2.0, 0.0, 0.0]),
    'edge_bc': ([2.0 + 0.6 * 2, 1.5 + 0.8 * 2, _H], [2.0, 1.5, 0.0]),
    'edge_ca': ([-1.2, 1.5, _H], [0.0, 1.5, 0.0]),
    'vertex_a': ([-1.0, -2.0, _H], [0.0, 0.0, 0.0]),
    'vertex_b': ([4.0 + 2.0, -0.2, _H], [4.0, 0.0, 0.0]),
    'vertex_c': ([-0.2, 3.0 + 2.0, _H], [0.0, 3.0, 0.0]),
    'exactly_on_edge': ([2.0, 0.0, 0.0], [2.0, 0.0, 0.0]),
    'exactly_at_vertex': ([4.0, 0.0, 0.0], [4.0, 0.0, 0.0]),
}
_TRIANGLE = np.array([[0.0, 0, 0], [4, 0, 0], [0, 3, 0]])


def _random_rigid(seed):
  rng = np.random.default_rng(seed)
  rotation = alignment.rotation_from_axis_angle(rng.normal(size=3))
  return alignment.SimilarityTransform(1.0, rotation, rng.normal(size=3) * 50)


def _random_mesh(seed, num_vertices=60, num_triangles=80):
  rng = np.random.default_rng(seed)
  vertices = rng.uniform(-10, 10, (num_vertices, 3))
  triangles = np.stack(
      [rng.choice(num_vertices, 3, replace=False)
       for _ in range(num_triangles)])
  return vertices, triangles


def _tricky_points(vertices, triangles, seed, count=200):
  """Points near vertices, on and beyond edges, on faces, and random."""
  rng = np.random.default_rng(seed)
  corners = vertices[triangles]
  t = rng.integers(0, len(triangles), count)
  e = rng.integers(0, 3, count)
  a, b = corners[t, e], corners[t, (e + 1) % 3]
  s = rng.uniform(-0.3, 1.3, count)[:, None]
  on_edge_line = a + s * (b - a)
  bary = rng.dirichlet([1, 1, 1], count)
  on_face = np.einsum('ij,ijk->ik', bary, corners[t])
  return np.concatenate([
      vertices[rng.integers(0, len(vertices), count)],  # exactly vertices
      vertices[rng.integers(0, len(vertices), count)] + rng.normal(
          size=(count, 3)),
      on_edge_line,  # exactly on edges, or beyond their ends
      on_edge_line + rng.normal(size=(count, 3)) * 0.5,
      on_face,
      rng.uniform(-15, 15, (count, 3)),
  ])


class ClosestPointOnTriangleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(name, name) for name in _CASES])
  def test_known_region_answers(self, case):
    point, expected = (np.array(x) for x in _CASES[case])
    for seed in range(3):  # the same geometry in random rigid frames
      frame = _random_rigid(seed)
      a, b, c = frame.apply(_TRIANGLE)
      closest, sq = pmd.closest_points_on_triangles(frame.apply(point)[None],
                                                    a[None], b[None], c[None])
      self.assertAllClose(closest[0], frame.apply(expected), atol=1e-10)
      self.assertAllClose(sq[0], np.sum((point - expected)**2), atol=1e-10)

  def test_degenerate_triangles_reduce_to_segments(self):
    a = np.array([[0.0, 0, 0], [1.0, 1, 1]])
    b = np.array([[2.0, 0, 0], [1.0, 1, 1]])  # collinear; a single point
    c = np.array([[1.0, 0, 0], [1.0, 1, 1]])
    p = np.array([[3.0, 1.0, 0.0], [1.0, 1.0, 3.0]])
    closest, sq = pmd.closest_points_on_triangles(p, a, b, c)
    self.assertAllClose(closest, [[2.0, 0, 0], [1.0, 1, 1]])
    self.assertAllClose(sq, [2.0, 4.0])

  def test_not_larger_than_dense_sampling_and_close_to_it(self):
    # Independent check: the minimum over a barycentric grid with spacing
    # 1/n is >= the exact distance and exceeds it by at most the grid's
    # covering radius (distance is 1-Lipschitz in the surface point).
    rng = np.random.default_rng(7)
    n = 60
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1))
    keep = i + j <= n
    grid = np.stack([i[keep], j[keep]], 1) / n
    for _ in range(20):
      a, b, c = rng.normal(size=(3, 3)) * 3
      p = rng.normal(size=3) * 4
      samples = a + grid[:, :1] * (b - a) + grid[:, 1:] * (c - a)
      sampled = np.min(np.linalg.norm(samples - p, axis=1))
      _, sq = pmd.closest_points_on_triangles(p[None], a[None], b[None],
                                              c[None])
      exact = np.sqrt(sq[0])
      longest_edge = max(np.linalg.norm(b - a), np.linalg.norm(c - b),
                         np.linalg.norm(a - c))
      self.assertLessEqual(exact, sampled + 1e-12)
      self.assertLessEqual(sampled - exact, longest_edge / n + 1e-12)


class MeshDistanceTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('igl', 'kdtree')
  def test_backend_equals_brute_force(self, backend):
    for seed in range(3):
      vertices, triangles = _random_mesh(seed)
      points = _tricky_points(vertices, triangles, seed + 100)
      brute = pmd.MeshDistance(vertices, triangles, 'brute').query(points)
      fast = pmd.MeshDistance(vertices, triangles, backend).query(points)
      self.assertAllClose(fast[0], brute[0], atol=1e-9)
      # The returned point is on the returned triangle and at that distance.
      self.assertAllClose(np.sum((fast[2] - points)**2, 1), fast[0], atol=1e-9)
      corners = vertices[triangles[fast[1]]]
      on_triangle, sq = pmd.closest_points_on_triangles(
          fast[2], corners[:, 0], corners[:, 1], corners[:, 2])
      self.assertAllClose(sq, np.zeros_like(sq), atol=1e-9)

  @parameterized.parameters('igl', 'kdtree', 'brute')
  def test_points_on_surface_have_zero_distance(self, backend):
    vertices, triangles = _random_mesh(3)
    rng = np.random.default_rng(3)
    bary = rng.dirichlet([1, 1, 1], 80)
    points = np.einsum('ij,ijk->ik', bary, vertices[triangles])
    d = pmd.MeshDistance(vertices, triangles, backend).distances(points)
    self.assertAllClose(d, np.zeros(80), atol=1e-7)

  def test_kdtree_exact_far_from_a_fine_mesh_with_big_triangles(self):
    # Far points force the shortlist to widen; must still be exact.
    x, y = np.meshgrid(np.linspace(0, 10, 30), np.linspace(0, 10, 30))
    vertices = np.stack([x.ravel(), y.ravel(), np.sin(x.ravel())], 1)
    idx = np.arange(900).reshape(30, 30)
    triangles = np.concatenate([
        np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(),
                  idx[1:, 1:].ravel()], 1),
        np.stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel(),
                  idx[1:, :-1].ravel()], 1)])
    # Plus a few huge triangles (kept out of the KD-tree, checked apart).
    rng = np.random.default_rng(0)
    big = rng.uniform(-40, 50, (9, 3))
    triangles = np.concatenate([triangles, 900 + np.arange(9).reshape(3, 3)])
    vertices = np.concatenate([vertices, big])
    points = rng.uniform(-20, 30, (300, 3))
    brute = pmd.MeshDistance(vertices, triangles, 'brute').distances(points)
    kd = pmd.MeshDistance(vertices, triangles, 'kdtree').distances(points)
    self.assertAllClose(kd, brute, atol=1e-9)

  def test_bad_input_names_the_mesh(self):
    vertices, triangles = _random_mesh(0)
    with self.assertRaisesRegex(ValueError, 'scan.obj.*non-empty'):
      pmd.MeshDistance(np.zeros([0, 3]), triangles, name='scan.obj')
    with self.assertRaisesRegex(ValueError, 'pred.obj.*triangles'):
      pmd.MeshDistance(vertices, np.zeros([0, 3], int), name='pred.obj')
    bad = vertices.copy()
    bad[3, 1] = np.nan
    with self.assertRaisesRegex(ValueError, 'pred.obj.*NaN'):
      pmd.MeshDistance(bad, triangles, name='pred.obj')
    with self.assertRaisesRegex(ValueError, 'pred.obj.*out of range'):
      pmd.MeshDistance(vertices, triangles + 100, name='pred.obj')
    mesh = pmd.MeshDistance(vertices, triangles, name='pred.obj')
    with self.assertRaisesRegex(ValueError, 'pred.obj.*NaN'):
      mesh.query(np.array([[0.0, np.nan, 0.0]]))

  def test_nearest_vertex_distances(self):
    vertices = np.array([[0.0, 0, 0], [10.0, 0, 0]])
    d, i = pmd.nearest_vertex_distances(np.array([[1.0, 2, 2], [9, 0, 0]]),
                                        vertices)
    self.assertAllClose(d, [3.0, 1.0])
    self.assertAllEqual(i, [0, 1])


if __name__ == '__main__':
  tf.test.main()
