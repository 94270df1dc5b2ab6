"""Test faces with a known displacement map, for the detail benchmark.

Faces are rendered from the morphable model (preprocess/synthetic_data.py:
random identity, expression, albedo, lighting, background), with the yaw of
the split, and get a random wrinkle displacement (detail/synthetic_details.py,
the same generator as the detail stage's synthetic training faces, another
seed) rendered over them. The ground-truth coarse coefficients are kept, so
a detail network scored on them is judged on detail alone.

A set is a dict of NumPy arrays (N faces, V model vertices, UV side S):
  images [N,H,W,3] float32 in [0,1] (with the wrinkles);
  maps [N,S,S,1] float32 in [-1,1] (mm = map x amplitude_mm x detail mask);
  coefficients [N,D] float32 (coarse.coefficients.Coefficients.to_vector);
  vertices [N,V,3] float32 mm (ground-truth coarse face, model space);
  yaw_deg [N] float32.
Generation is deterministic for a seed and takes seconds, so sets are not
cached.
"""

import numpy as np
import tensorflow as tf

from detail import synthetic_details
from eval import synthetic_sets
from preprocess import synthetic_data

_BATCH = 16


def make_set(model, applier, seed, count, image_size, low_deg, high_deg,
             amplitude_mm):
  """A test set (module docstring) of `count` faces, |yaw| in [low, high).

  Args:
    model: bfm.MorphableModel.
    applier: detail.displacement.DisplacementApplier at the benchmark's UV
      size (the maps are UV maps of its size).
    seed: seed of faces and maps.
    count: N > 0.
    image_size: side in pixels.
    low_deg, high_deg: |yaw| range in degrees (random sign).
    amplitude_mm: peak wrinkle depth in mm (> 0).
  """
  if count <= 0:
    raise ValueError('detail_sets.make_set: count must be > 0, got %r' %
                     (count,))
  rng = np.random.RandomState(seed)
  details = synthetic_details.SyntheticDetails(applier, amplitude_mm,
                                               seed + 7919)
  yaw = synthetic_sets.symmetric_yaw(low_deg, high_deg)
  parts = []
  done = 0
  while done < count:
    n = min(_BATCH, count - done)
    batch = synthetic_data.sample_batch(model, n, image_size, rng, yaw)
    images, maps = details.apply(tf.constant(batch.images), batch.coefficients)
    parts.append({
        'images': np.asarray(images, np.float32),
        'maps': np.asarray(maps, np.float32),
        'coefficients': np.asarray(batch.coefficients.to_vector(),
                                   np.float32),
        'vertices': np.asarray(batch.vertices, np.float32),
        'yaw_deg': np.asarray(batch.yaw_deg, np.float32),
    })
    done += n
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
