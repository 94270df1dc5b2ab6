"""Assembles a MorphableModel from a source model's arrays, deriving whatever
the source does not provide (one code path for every converter):

- centres the mean shape on its bounding-box centre (bases are deltas and are
  unchanged);
- flips the triangle winding if the source's triangles face inward;
- UVs: cylindrical projection of the mean face (bfm.cylindrical_uv);
- region masks and contour-landmark candidates from the landmark geometry
  (bfm.face_regions);
- vertex symmetry by nearest mirrored neighbour (bfm.symmetry), with the
  worst mismatch recorded in model.symmetry_max_error_mm;
- a constant skin-grey mean albedo and an empty texture basis for shape-only
  models.
"""

import numpy as np

from bfm import cylindrical_uv
from bfm import face_regions
from bfm import mesh_geometry
from bfm import morphable_model
from bfm import symmetry as symmetry_lib

# Constant albedo for shape-only models (SFM, ICT): a neutral light skin tone.
DEFAULT_ALBEDO = (0.72, 0.56, 0.48)


def build_model(name, mean_shape, triangles, landmarks68, id_basis, exp_basis,
                mean_albedo=None, tex_basis=None, uv=None, masks=None,
                symmetry=None, contour_candidates=None, exp_names=(),
                source=''):
  """Returns a validated MorphableModel; see the module docstring.

  Args:
    name: model name.
    mean_shape: [N, 3] mm in model axes (x subject's left, y up, z forward).
    triangles: [T, 3] int (either winding; made outward here).
    landmarks68: [68] int iBUG vertex indices.
    id_basis, exp_basis: [K, N, 3] mm per unit coefficient.
    mean_albedo: [N, 3] in [0, 1] or None (constant DEFAULT_ALBEDO).
    tex_basis: [K_tex, N, 3] or None (empty).
    uv: [N, 2] in [0, 1] (u right, v up) or None (cylindrical).
    masks: dict of bool [N] or None (derived); missing keys are derived.
    symmetry: [N] int involution or None (nearest mirrored neighbour).
    contour_candidates: 17 int arrays or None (derived).
    exp_names: names of the expression components.
    source: provenance string (and the prefix of error messages).
  """
  src = source or name
  mean_shape = np.asarray(mean_shape, np.float64)
  if mean_shape.ndim != 2 or mean_shape.shape[1] != 3:
    raise morphable_model.ModelFormatError(
        '%s: \'mean_shape\' has shape %s, expected [N, 3]' %
        (src, mean_shape.shape))
  if not np.all(np.isfinite(mean_shape)):
    raise morphable_model.ModelFormatError(
        '%s: \'mean_shape\' contains NaN/Inf values' % src)
  n = len(mean_shape)
  lo, hi = mean_shape.min(0), mean_shape.max(0)
  mean_shape = mean_shape - 0.5 * (lo + hi)
  triangles = np.asarray(triangles)
  if triangles.ndim != 2 or triangles.shape[1] != 3 or (
      triangles.size and (triangles.min() < 0 or triangles.max() >= n)):
    raise morphable_model.ModelFormatError(
        '%s: \'triangles\' must be [T, 3] indices in [0, %d), got shape %s' %
        (src, n, triangles.shape))
  triangles, _ = mesh_geometry.orient_outward(mean_shape, triangles)
  landmarks68 = np.asarray(landmarks68)
  if landmarks68.shape != (68,) or landmarks68.min() < 0 or (
      landmarks68.max() >= n):
    raise morphable_model.ModelFormatError(
        '%s: \'landmarks68\' must be 68 indices in [0, %d), got shape %s' %
        (src, n, landmarks68.shape))
  if mean_albedo is None:
    mean_albedo = np.tile(np.asarray(DEFAULT_ALBEDO, np.float32), [n, 1])
  if tex_basis is None:
    tex_basis = np.zeros([0, n, 3], np.float32)
  if uv is None:
    uv = cylindrical_uv.cylindrical_uv(mean_shape)
  derived = None
  masks = dict(masks or {})
  for key in morphable_model.MASK_KEYS:
    if key not in masks:
      if derived is None:
        derived = face_regions.region_masks(mean_shape, triangles, landmarks68)
      masks[key] = derived[key]
  if contour_candidates is None:
    contour_candidates = face_regions.contour_candidates(
        mean_shape, triangles, landmarks68)
  if symmetry is None:
    symmetry, max_error, _ = symmetry_lib.mirror_map(mean_shape)
  else:
    symmetry = np.asarray(symmetry)
    if symmetry.shape != (n,) or symmetry.min() < 0 or symmetry.max() >= n:
      raise morphable_model.ModelFormatError(
          '%s: \'symmetry\' must be [%d] indices in range' % (src, n))
    max_error = float(symmetry_lib.mismatch_mm(mean_shape, symmetry).max())
  # MorphableModel's positional order.
  return morphable_model.MorphableModel(
      name, mean_shape.astype(np.float32), id_basis, exp_basis, mean_albedo,
      tex_basis, triangles, uv, landmarks68, contour_candidates, masks,
      symmetry, symmetry_max_error_mm=max_error, exp_names=exp_names,
      source=source)
