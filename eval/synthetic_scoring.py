"""Scores a coarse network on a synthetic test set with eval/'s NME protocol.

Prediction: ONE plain pass of the trained network per test image, whatever
SAM config it was trained with. The paper (Sec. 3.2): "In the inference
phase, we just load the trained network model without employing the
self-augment mechanism"; the reconstruct command and the detail stage do the
same. The predicted mesh is model.vertices(identity, expression) of that
pass, in model space. `SCORING` says so in the benchmark's results.

Protocol (eval/protocols.py nme, FG 2018): the ground-truth mesh plays the
scan. Its 7 keypoints are the model's landmark vertices 36, 39, 42, 45, 33,
48, 54 on the GT mesh (exact, where a scan would be hand-annotated); the
prediction's are the same vertices on the predicted mesh. Crop the GT mesh
to the FG 2018 sphere, similarity-Procrustes the prediction onto the GT
keypoints, error = distance of each kept GT vertex to the predicted surface.
Pose, scale and translation errors are thus removed, as in the paper's
tables: the number measures the shape (identity + expression) only.
"""

import numpy as np
import tensorflow as tf

from coarse import coefficients as coefficients_lib
from eval import protocols

# How test faces are predicted; the "scoring" field of the benchmark's JSON.
SCORING = ('one network pass, no SAM (paper Sec. 3.2: inference loads the '
           'trained network without the self-augment mechanism)')


def mean_face_vertices(model, count):
  """[count, V, 3] the model's mean face (the zero-coefficient prediction)."""
  zeros = coefficients_lib.Coefficients.zeros(model, 1)
  mean = np.asarray(model.vertices(zeros.identity, zeros.expression))
  return np.repeat(mean, count, axis=0)


def predict_vertices(model, net, images, batch_size=8):
  """Predicted model-space meshes of images, one network pass each (SCORING).

  Args:
    model: bfm.MorphableModel.
    net: coarse_model.CoarseModel (trained), or any callable
      (images [n,S,S,3] float32 in [0,1], training=False) -> [n, D]
      coefficient vectors (coarse/coefficients.py layout).
    images: [N,S,S,3] uint8 or float32 in [0,1].
    batch_size: images per network call.

  Returns:
    [N, V, 3] float32 mm, model.vertices(identity, expression) of each
    image's own prediction.
  """
  images = np.asarray(images)
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 255.0
  if images.ndim != 4 or images.shape[1] != images.shape[2]:
    raise ValueError('predict_vertices: images must be [N,S,S,3], got %s' %
                     (images.shape,))
  out = []
  for start in range(0, images.shape[0], int(batch_size)):
    vector = net(tf.constant(images[start:start + batch_size], tf.float32),
                 training=False)
    coeffs = coefficients_lib.Coefficients.from_vector(model, vector)
    out.append(np.asarray(model.vertices(coeffs.identity, coeffs.expression)))
  return np.concatenate(out).astype(np.float32)


def score(model, test_set, pred_vertices, variant='fg2018', backend='auto'):
  """NME of predicted meshes against a test set's ground-truth meshes.

  Args:
    model: bfm.MorphableModel (triangles and landmark vertices).
    test_set: dict from eval/synthetic_sets.py load_test_set.
    pred_vertices: [N, V, 3] predicted meshes, mm.
    variant: eval/protocols.py NME variant.

  Returns:
    (aggregate dict of protocols.aggregate, [N] per-image mean errors mm).
  """
  gt = test_set['vertices']
  pred_vertices = np.asarray(pred_vertices)
  if pred_vertices.shape != gt.shape:
    raise ValueError('score: predicted meshes %s do not match the ground truth '
                     '%s' % (pred_vertices.shape, gt.shape))
  pred_landmarks = np.asarray(model.landmarks(pred_vertices))
  triangles = np.asarray(model.triangles)
  distances = []
  for i in range(gt.shape[0]):
    result = protocols.nme(gt[i], test_set['landmarks3d'][i], pred_vertices[i],
                           triangles, pred_landmarks[i], variant=variant,
                           backend=backend, scan_name='ground truth %d' % i,
                           pred_name='prediction %d' % i)
    distances.append(result.distances)
  return (protocols.aggregate(distances),
          np.array([d.mean() for d in distances]))
