"""The project's own model file: a NumPy .npz (no pickles), see bfm/README.md.

save(model, path) writes it; read(path) returns a MorphableModel after
checking every array; errors name the file and the key.
"""

import os
import zipfile

import numpy as np

from bfm import morphable_model

FORMAT_VERSION = 1

# key -> (kind, meaning); kind is 'float', 'int', 'bool' or 'str'.
KEYS = {
    'format_version': 'int',
    'name': 'str',
    'source': 'str',
    'mean_shape': 'float',
    'id_basis': 'float',
    'exp_basis': 'float',
    'exp_names': 'str',
    'mean_albedo': 'float',
    'tex_basis': 'float',
    'triangles': 'int',
    'uv': 'float',
    'landmarks68': 'int',
    'contour_candidates': 'int',
    'contour_offsets': 'int',
    'symmetry': 'int',
    'symmetry_max_error_mm': 'float',
}
for _m in morphable_model.MASK_KEYS:
  KEYS['mask_' + _m] = 'bool'
OPTIONAL_KEYS = ('source', 'exp_names')


def save(model, path):
  """Writes `model` (a MorphableModel) to `path` (.npz, uncompressed)."""
  offsets = np.cumsum([0] + [len(c) for c in model.contour_candidates])
  arrays = dict(
      format_version=np.int32(FORMAT_VERSION),
      name=np.str_(model.name),
      source=np.str_(model.source),
      mean_shape=model.mean_shape.astype(np.float32),
      id_basis=model.id_basis.astype(np.float32),
      exp_basis=model.exp_basis.astype(np.float32),
      exp_names=np.asarray(model.exp_names, dtype=np.str_).reshape(-1),
      mean_albedo=model.mean_albedo.astype(np.float32),
      tex_basis=model.tex_basis.astype(np.float32),
      triangles=model.triangles.astype(np.int32),
      uv=model.uv.astype(np.float32),
      landmarks68=model.landmarks68.astype(np.int32),
      contour_candidates=np.concatenate(model.contour_candidates).astype(
          np.int32),
      contour_offsets=offsets.astype(np.int32),
      symmetry=model.symmetry.astype(np.int32),
      symmetry_max_error_mm=np.float32(model.symmetry_max_error_mm),
  )
  for key in morphable_model.MASK_KEYS:
    arrays['mask_' + key] = model.masks[key].astype(bool)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  with open(path, 'wb') as f:
    np.savez(f, **arrays)


def read(path):
  """Reads a model .npz written by save() or `python -m bfm.convert`.

  Raises:
    FileNotFoundError: no such file.
    morphable_model.ModelFormatError: not a readable .npz (e.g. truncated), a
      missing key, a wrong dtype/shape, NaNs, out-of-range indices.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError('model file %s does not exist' % path)
  fail = morphable_model.ModelFormatError
  try:
    archive = np.load(path, allow_pickle=False)
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise fail('%s: not a readable .npz model file (%s: %s); re-run '
               '`python -m bfm.convert`' % (path, type(e).__name__, e)) from e
  with archive:
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise fail('%s: expected an .npz archive, got a single array' % path)
    arrays = {}
    for key, kind in KEYS.items():
      if key not in archive.files:
        if key in OPTIONAL_KEYS:
          continue
        raise fail('%s: missing key %r (has %s)' %
                   (path, key, sorted(archive.files)))
      try:
        value = archive[key]
      except Exception as e:  # zlib/zip/format errors of a damaged member
        raise fail('%s: cannot read key %r (%s: %s); the file is damaged' %
                   (path, key, type(e).__name__, e)) from e
      ok = {
          'float': lambda v: v.dtype.kind in 'fiu',
          'int': lambda v: v.dtype.kind in 'iu',
          'bool': lambda v: v.dtype.kind in 'biu',
          'str': lambda v: v.dtype.kind == 'U',
      }[kind](value)
      if not ok:
        raise fail('%s: key %r has dtype %s, expected %s' %
                   (path, key, value.dtype, kind))
      arrays[key] = value
  version = int(arrays['format_version'])
  if version != FORMAT_VERSION:
    raise fail('%s: key \'format_version\' is %d, this code reads %d' %
               (path, version, FORMAT_VERSION))
  offsets = arrays['contour_offsets']
  flat = arrays['contour_candidates']
  if (offsets.shape != (18,) or offsets[0] != 0 or offsets[-1] != len(flat)
      or np.any(np.diff(offsets) <= 0)):
    raise fail('%s: key \'contour_offsets\' must be 18 increasing offsets '
               'from 0 to len(contour_candidates)=%d, got %s' %
               (path, len(flat), offsets.tolist()))
  candidates = [flat[offsets[k]:offsets[k + 1]] for k in range(17)]
  masks = {k: arrays['mask_' + k] for k in morphable_model.MASK_KEYS}
  try:
    return _build(arrays, candidates, masks, path)
  except morphable_model.ModelFormatError as e:
    if path in str(e):
      raise
    raise fail('%s: %s' % (path, e)) from e


# MorphableModel fields stored as arrays under their own name.
_ARRAY_FIELDS = ('mean_shape', 'id_basis', 'exp_basis', 'mean_albedo',
                 'tex_basis', 'triangles', 'uv', 'landmarks68', 'symmetry')


def _build(arrays, candidates, masks, path):
  fields = {key: arrays[key] for key in _ARRAY_FIELDS}
  return morphable_model.MorphableModel(
      name=str(arrays['name']), contour_candidates=candidates, masks=masks,
      symmetry_max_error_mm=float(arrays['symmetry_max_error_mm']),
      exp_names=list(arrays.get('exp_names', [])),
      source=str(arrays.get('source', path)) or path, **fields)
