"""Reads 3D landmark files of evaluation sets (text, .lnd, .npy, MeshLab .pp).

Formats (all return [K, 3] float64 in the file's units):
- `.txt` / `.lnd` / `.xyz`: one landmark per line, `x y z` or `index x y z`
  (the FG 2018 challenge's `.lnd` files, e.g. `1 -26.62 20.08 -3.37`);
  whitespace or comma separated; `#` comments and blank lines ignored.
- the reconstruct command's `NAME_landmarks.txt` (reconstruct/outputs.py):
  rows `x y X Y Z`, x y in photo pixels, X Y Z in mm on NAME_coarse.obj;
  the X Y Z columns are returned (the mesh's frame).
- `.npy`: an array of shape [K, 3].
- `.pp`: MeshLab "PickedPoints" XML (the NoW challenge's scan landmarks), one
  `<point x= y= z= .../>` per landmark in file order; points with
  `active="0"` are still returned (their position is what was picked).
"""

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from bfm import mesh_io

LandmarkFileError = mesh_io.MeshFileError


def _read_text(path):
  rows = []
  with open(path, 'r', encoding='utf-8', errors='replace') as f:
    for line_number, line in enumerate(f, start=1):
      line = line.split('#', 1)[0].replace(',', ' ').strip()
      if not line:
        continue
      try:
        values = [float(t) for t in line.split()]
      except ValueError:
        raise LandmarkFileError(f'{path}:{line_number}: not numbers: {line!r}.')
      if len(values) == 4:
        values = values[1:]
      elif len(values) == 5:  # reconstruct's x y (photo) X Y Z (mesh)
        values = values[2:]
      if len(values) != 3:
        raise LandmarkFileError(
            f'{path}:{line_number}: expected "x y z", "index x y z" or '
            f'"x y X Y Z" (reconstruct), got {len(values)} values.')
      rows.append(values)
  return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def _read_pp(path):
  try:
    root = ElementTree.parse(path).getroot()
  except ElementTree.ParseError as e:
    raise LandmarkFileError(f'{path}: not a MeshLab .pp XML file ({e}).')
  rows = []
  for point in root.iter('point'):
    try:
      rows.append([float(point.attrib[k]) for k in ('x', 'y', 'z')])
    except (KeyError, ValueError):
      raise LandmarkFileError(f'{path}: <point> without numeric x, y, z: '
                              f'{point.attrib}.')
  return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def read_landmarks(path, expected_count=None):
  """Reads a landmark file; see the module docstring for formats.

  Args:
    path: file name (.txt, .lnd, .xyz, .npy or .pp).
    expected_count: if given, the number of landmarks the file must hold.

  Returns:
    [K, 3] float64.

  Raises:
    LandmarkFileError: missing/unreadable/malformed file, wrong count or
      non-finite values; the message names the file.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise LandmarkFileError(f'{path}: landmark file not found.')
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext == '.npy':
      try:
        points = np.load(path, allow_pickle=False)
      except ValueError as e:
        raise LandmarkFileError(f'{path}: not a .npy array ({e}).')
      points = np.asarray(points, dtype=np.float64)
      if points.ndim != 2 or points.shape[1] != 3:
        raise LandmarkFileError(
            f'{path}: landmark array must be [K, 3], got {points.shape}.')
    elif ext == '.pp':
      points = _read_pp(path)
    else:
      points = _read_text(path)
  except OSError as e:
    raise LandmarkFileError(f'{path}: cannot read landmark file ({e}).') from e
  if points.shape[0] == 0:
    raise LandmarkFileError(f'{path}: no landmarks in file.')
  if not np.all(np.isfinite(points)):
    raise LandmarkFileError(f'{path}: landmarks contain NaN or inf.')
  if expected_count is not None and points.shape[0] != expected_count:
    raise LandmarkFileError(
        f'{path}: expected {expected_count} landmarks, found '
        f'{points.shape[0]}.')
  return points


def write_landmarks(path, points):
  """Writes [K, 3] landmarks as `x y z` text lines (or .npy by extension)."""
  path = os.fspath(path)
  points = np.asarray(points, dtype=np.float64)
  if points.ndim != 2 or points.shape[1] != 3:
    raise ValueError(f'{path}: landmarks must be [K, 3], got {points.shape}.')
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  if path.lower().endswith('.npy'):
    np.save(path, points)
  else:
    np.savetxt(path, points, fmt='%.6f')
