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


def write_obj(path, vertices, triangles=None, uvs=None, normals=None,
              mtllib=None, material=None, comments=(), precision=6):
  """Writes a triangle mesh as Wavefront OBJ: the project's one OBJ writer.

  Args:
    path: output file; parent folders are created.
    vertices: [N, 3] float array (millimetres in this project).
    triangles: [T, 3] int array of 0-based indices, counter-clockwise seen
      from outside, or None for points only.
    uvs: optional [N, 2] texture coordinates (u right, v up), one per vertex
      (written as `vt`, faces as v/vt).
    normals: optional [N, 3] unit normals, one per vertex (written as `vn`).
    mtllib: optional material library file name (`mtllib` line).
    material: optional material name (`usemtl` line before the faces).
    comments: lines written first as `# ...` comments.
    precision: digits after the decimal point of positions and normals (UVs
      get at least 6).

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
  attributes = []
  for name, values, width in (('uvs', uvs, 2), ('normals', normals, 3)):
    if values is not None:
      values = np.asarray(values, np.float64)
      if values.shape != (vertices.shape[0], width):
        raise ValueError(f'{path}: {name} must be [{vertices.shape[0]}, '
                         f'{width}], got {values.shape}.')
      if not np.all(np.isfinite(values)):
        raise ValueError(f'{path}: {name} contain NaN or inf.')
    attributes.append(values)
  uvs, normals = attributes
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  digits = int(precision)
  xyz = f'%.{digits}f %.{digits}f %.{digits}f'
  with open(path, 'w', encoding='utf-8') as f:
    for line in comments:
      f.write('# %s\n' % line)
    if mtllib:
      f.write('mtllib %s\n' % mtllib)
    _write_rows(f, 'v ' + xyz, vertices)
    if uvs is not None:
      uv_digits = max(digits, 6)
      _write_rows(f, f'vt %.{uv_digits}f %.{uv_digits}f', uvs)
    if normals is not None:
      _write_rows(f, 'vn ' + xyz, normals)
    if material:
      f.write('usemtl %s\n' % material)
    if triangles.shape[0]:
      t = triangles.astype(np.int64) + 1
      corner, repeat = {
          (False, False): ('%d', 1),
          (True, False): ('%d/%d', 2),
          (False, True): ('%d//%d', 2),
          (True, True): ('%d/%d/%d', 3),
      }[(uvs is not None, normals is not None)]
      _write_rows(f, 'f ' + ' '.join([corner] * 3),
                  np.repeat(t, repeat, axis=1))


# Rows formatted per call of _write_rows' one %-format (bounds its memory).
_ROWS_PER_FORMAT = 1 << 16


def _write_rows(f, row_format, values):
  """Writes `row_format % tuple(row)` and a newline for each row of the 2-D
  `values`: the text of np.savetxt(f, values, fmt=row_format), formatted
  one block of rows per %-operation instead of one row at a time."""
  line = row_format + '\n'
  for start in range(0, values.shape[0], _ROWS_PER_FORMAT):
    block = values[start:start + _ROWS_PER_FORMAT]
    f.write((line * block.shape[0]) % tuple(block.ravel().tolist()))
