"""Ground-truth test surfaces for the eval/ tests (and tests of the surfaces).

Other eval tests import the builders from here:
- `face_like_mesh()`: an open height-field face (ellipsoidal base, nose,
  brow ridges) in millimetres, with its 7 FG 2018 keypoints + nose tip lying
  exactly on the surface (they are vertices).
- `ict_face_mesh()`: the ICT-FaceKit face from ../shared/data when present.
"""

import os

import numpy as np
import tensorflow as tf

from tests import test_utils

SHARED_DATA = test_utils.data_dir()
ICT_FACE = os.path.join(SHARED_DATA, 'ict', 'ict_face.npz')
ICT_MISSING_REASON = f'ICT face not found at {ICT_FACE} (shared test data).'

# Keypoint positions (x, y) in mm, FG 2018 order, then the nose tip.
_KEYPOINTS_XY = np.array([[-45., 35.], [-15., 35.], [15., 35.], [45., 35.],
                          [0., -20.], [-25., -50.], [25., -50.], [0., -2.5]])


def face_height(x, y):
  """z (mm) of the face-like surface at (x, y) mm; smooth, nose at x=0."""
  base = 60.0 * np.sqrt(np.clip(1 - (x / 85.0)**2 - (y / 115.0)**2, 0, None))
  nose = 22.0 * np.exp(-((x / 11.0)**2 + ((y + 2.0) / 26.0)**2))
  brow = -6.0 * np.exp(-(((np.abs(x) - 30.0) / 14.0)**2 +
                         ((y - 30.0) / 8.0)**2))
  return base + nose + brow


def face_like_mesh(step=2.5):
  """Open grid face, x in [-75, 75], y in [-95, 95] mm.

  Args:
    step: grid spacing in mm (2.5 divides every keypoint coordinate, so the
      keypoints are vertices).

  Returns:
    vertices [N, 3] float64 mm, triangles [T, 3] int64 (counter-clockwise
    seen from +z, i.e. from the viewer), landmarks [8, 3] (7 keypoints in the
    FG 2018 order + nose tip), landmark_vertex_ids [8] int64.
  """
  xs = np.arange(-75.0, 75.0 + step / 2, step)
  ys = np.arange(-95.0, 95.0 + step / 2, step)
  x, y = np.meshgrid(xs, ys)
  vertices = np.stack([x.ravel(), y.ravel(), face_height(x, y).ravel()], 1)
  idx = np.arange(x.size).reshape(x.shape)
  a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
  c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
  triangles = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
  ids = np.array([
      np.argmin(np.sum((vertices[:, :2] - p)**2, axis=1)) for p in _KEYPOINTS_XY
  ])
  return vertices, triangles.astype(np.int64), vertices[ids], ids


def sphere_face(radius, subdivisions):
  """Icosphere plus 7 keypoints + nose tip: vertices nearest to face-like
  directions on its +z side (so the scan landmarks lie on the scan)."""
  vertices, triangles = test_utils.icosphere(radius, subdivisions)
  directions = np.array([[-45, 35, 60], [-15, 35, 75], [15, 35, 75],
                         [45, 35, 60], [0, -20, 80], [-25, -50, 60],
                         [25, -50, 60], [0, -3, 90]], np.float64)
  directions /= np.linalg.norm(directions, axis=1, keepdims=True)
  ids = np.argmax(vertices @ directions.T, axis=0)
  return vertices, triangles, vertices[ids]


def ict_face_mesh():
  """(vertices [N, 3] mm, triangles [T, 3], lm68 [68]) from the ICT face."""
  data = np.load(ICT_FACE)
  return (data['mean'].astype(np.float64) * 10.0, data['tris'].astype(np.int64),
          data['lm68'].astype(np.int64))


class EvalFixturesTest(tf.test.TestCase):

  def test_face_like_mesh_is_valid_and_landmarks_are_vertices(self):
    vertices, triangles, landmarks, ids = face_like_mesh()
    self.assertAllClose(vertices[ids][:, :2], _KEYPOINTS_XY, atol=1e-12)
    self.assertAllClose(landmarks[:, 2], face_height(*_KEYPOINTS_XY.T))
    corners = vertices[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0],
                       corners[:, 2] - corners[:, 0])
    self.assertTrue(np.all(normals[:, 2] > 0))  # counter-clockwise from +z

  def test_icosphere_vertices_on_sphere_and_outward(self):
    vertices, triangles = test_utils.icosphere(3.0, 2)
    self.assertAllClose(np.linalg.norm(vertices, axis=1),
                        np.full(len(vertices), 3.0))
    corners = vertices[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0],
                       corners[:, 2] - corners[:, 0])
    self.assertTrue(np.all(np.sum(normals * corners.mean(1), 1) > 0))
    self.assertEqual(len(triangles), 20 * 4**2)


if __name__ == '__main__':
  tf.test.main()
