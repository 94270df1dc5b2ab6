"""Reads and writes triangle meshes as Wavefront OBJ files (NumPy only).

The reader keeps what evaluation needs: vertex positions and triangles. It
accepts the usual variants found in scans and in other methods' outputs:
`f v/vt/vn` index triples, negative (relative) indices, polygons with more than
three corners (fan-triangulated), vertex colours after x y z (ignored),
comments, blank lines, line continuations and other statements (vt, vn, g, o,
s, usemtl, mtllib: ignored). Every problem raises `MeshFileError` naming the
file (and the line where there is one).

Used by every stage that reads or writes meshes; keep it dependency-free.
"""

import dataclasses
import os

import numpy as np


class MeshFileError(ValueError):
  """A mesh file is missing, unreadable or malformed; the message names it."""


@dataclasses.dataclass
class Mesh:
  """A triangle mesh.

  Attributes:
    vertices: [N, 3] float64, the file's units (millimetres for scans and
      for this project's reconstructions).
    triangles: [T, 3] int32, 0-based vertex indices, counter-clockwise seen
      from outside (as stored in the file; the reader does not reorient).
    path: the file it was read from, or '' for a mesh built in memory.
  """
  vertices: np.ndarray
  triangles: np.ndarray
  path: str = ''

  @property
  def num_vertices(self):
    return int(self.vertices.shape[0])

  @property
  def num_triangles(self):
    return int(self.triangles.shape[0])


def _parse_index(token, num_vertices, path, line_number):
  """One `f` token ('7', '7/2', '7//3', '-1/..') -> 0-based vertex index."""
  head = token.split('/', 1)[0]
  try:
    index = int(head)
  except ValueError:
    raise MeshFileError(f'{path}:{line_number}: bad face index {token!r}.')
  if index > 0:
    index -= 1
  elif index < 0:
    index += num_vertices
  else:
    raise MeshFileError(f'{path}:{line_number}: face index 0 (OBJ is 1-based).')
  if not 0 <= index < num_vertices:
    raise MeshFileError(
        f'{path}:{line_number}: face index {token!r} out of range '
        f'(only {num_vertices} vertices defined so far).')
  return index


def read_obj(path, allow_empty_triangles=False):
  """Reads an OBJ file.

  Args:
    path: file name.
    allow_empty_triangles: if True a file with vertices but no faces (a point
      cloud) is accepted; otherwise it is an error.

  Returns:
    `Mesh` with float64 vertices [N, 3] and int32 triangles [T, 3].

  Raises:
    MeshFileError: missing/unreadable file, malformed line, out-of-range index,
      non-finite coordinates, no vertices, or (by default) no faces.
  """
  path = os.fspath(path)
  try:
    with open(path, 'r', encoding='utf-8', errors='replace') as f:
      text = f.read()
  except OSError as e:
    raise MeshFileError(f'{path}: cannot read mesh file ({e}).') from e
  text = text.replace('\\\r\n', ' ').replace('\\\n', ' ')
  vertices = []
  triangles = []
  for line_number, line in enumerate(text.splitlines(), start=1):
    line = line.split('#', 1)[0].strip()
    if not line:
      continue
    parts = line.split()
    keyword = parts[0]
    if keyword == 'v':
      if len(parts) < 4:
        raise MeshFileError(
            f'{path}:{line_number}: vertex needs 3 coordinates: {line!r}.')
      try:
        xyz = [float(t) for t in parts[1:4]]
      except ValueError:
        raise MeshFileError(f'{path}:{line_number}: bad vertex {line!r}.')
      vertices.append(xyz)
    elif keyword == 'f':
      if len(parts) < 4:
        raise MeshFileError(
            f'{path}:{line_number}: face needs at least 3 corners: {line!r}.')
      corners = [
          _parse_index(t, len(vertices), path, line_number) for t in parts[1:]
      ]
      for k in range(1, len(corners) - 1):  # fan triangulation
        triangles.append((corners[0], corners[k], corners[k + 1]))
  if not vertices:
    raise MeshFileError(f'{path}: no vertices (empty or not an OBJ file).')
  vertices = np.asarray(vertices, dtype=np.float64)
  if not np.all(np.isfinite(vertices)):
    bad = int(np.flatnonzero(~np.all(np.isfinite(vertices), axis=1))[0])
    raise MeshFileError(
        f'{path}: vertex {bad + 1} has a non-finite coordinate (NaN/inf).')
  if not triangles and not allow_empty_triangles:
    raise MeshFileError(f'{path}: no faces; a triangle mesh is required.')
  triangles = np.asarray(triangles, dtype=np.int32).reshape(-1, 3)
  return Mesh(vertices=vertices, triangles=triangles, path=path)


def write_obj(path, vertices, triangles=None, precision=6):
  """Writes vertices [N, 3] and triangles [T, 3] (0-based) as an OBJ file.

  Args:
    path: output file; parent folders are created.
    vertices: [N, 3] float array.
    triangles: [T, 3] int array of 0-based indices, or None for points only.
    precision: digits after the decimal point.

  Raises:
    ValueError: wrong shapes, non-finite vertices or out-of-range indices
      (message names `path`).
  """
  path = os.fspath(path)
  vertices = np.asarray(vertices, dtype=np.float64)
  if vertices.ndim != 2 or vertices.shape[1] != 3:
    raise ValueError(f'{path}: vertices must be [N, 3], got {vertices.shape}.')
  if not np.all(np.isfinite(vertices)):
    raise ValueError(f'{path}: vertices contain NaN or inf.')
  if triangles is None:
    triangles = np.zeros([0, 3], np.int64)
  triangles = np.asarray(triangles)
  if triangles.ndim != 2 or triangles.shape[1] != 3:
    raise ValueError(
        f'{path}: triangles must be [T, 3], got {triangles.shape}.')
  if triangles.size and (triangles.min() < 0 or
                         triangles.max() >= vertices.shape[0]):
    raise ValueError(f'{path}: triangle index out of range [0, '
                     f'{vertices.shape[0]}).')
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  fmt = f'v %.{int(precision)}f %.{int(precision)}f %.{int(precision)}f'
  with open(path, 'w', encoding='utf-8') as f:
    if vertices.shape[0]:
      np.savetxt(f, vertices, fmt=fmt)
    if triangles.shape[0]:
      np.savetxt(f, triangles.astype(np.int64) + 1, fmt='f %d %d %d')
