"""Evaluates a folder of predicted meshes on one evaluation set.

Usage:
  python eval/evaluate.py --dataset=now --dataset_root=/data/NoW \
      --predictions=/runs/now_meshes --method=Our [--protocol=nme] \
      [--nme_variant=fg2018] [--output=eval/results/our_now.json]

Prints one row per pose split in the paper's format, e.g.
  Our  now  small  2.317±2.019 mm  (nme_fg2018, 20 images, ...)
and optionally writes a JSON result file that eval/tables.py collects.
Flags: flags/eval_flags.py. Dataset and prediction layouts: eval/README.md;
the reconstruct command's output folder is a prediction folder as it is
(NAME_coarse.obj / NAME_detail.obj by --stage, NAME_landmarks.txt).

Input problems are one line each, naming the file: a dataset problem (no
root folder, a missing scan) stops the run with exit status 1; a bad
prediction (malformed OBJ or landmark file, wrong landmark count) is
reported, counted in the result's 'failed' list and the rest are evaluated
(--strict stops at the first one instead). A missing prediction stops the
run unless --skip_missing.
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

from eval import datasets
from eval import landmark_io
from bfm import mesh_io
from eval import protocols
from flags import eval_flags

FLAGS = flags.FLAGS
RESULT_FORMAT_VERSION = 1


def evaluate_items(items, predictions_dir, protocol='nme',
                   nme_variant='fg2018', p2p_crop_radius_mm=95.0,
                   p2p_direction='scan_to_prediction', p2p_with_scale=False,
                   icp_mode='point_to_plane', icp_max_iterations=100,
                   distance_backend='auto', skip_missing=False, strict=True,
                   stage='coarse', find_prediction=None):
  """Runs one protocol over dataset items.

  Args:
    items: list of datasets.Item.
    predictions_dir: folder of predictions (datasets.prediction_files).
    protocol: 'nme' or 'micc_p2p'; the other arguments configure it (see
      protocols.nme / protocols.micc_p2p).
    skip_missing: skip items without a prediction (listed in the result)
      instead of raising.
    strict: raise on the first bad prediction file; False: log it, list it
      in 'failed' and go on (the command line's default, --strict).
    stage: 'coarse' or 'detail': which of the reconstruct command's meshes
      (NAME_coarse.obj / NAME_detail.obj) when there is no NAME.obj.
    find_prediction: function (item, predictions_dir, stage) -> (mesh path,
      landmark path); default datasets.prediction_files (e.g. one mean-face
      mesh for every item instead).

  Returns:
    dict: 'protocol' (e.g. 'nme_fg2018'), 'items' (per image: image, subject,
    split, yaw_deg, mean, median, std, num_points), 'splits' (per split name
    and 'all': protocols.aggregate output), 'missing' (skipped images),
    'failed' (per bad prediction: image, reason).

  Raises:
    datasets.DatasetError: a missing prediction (unless skip_missing).
    mesh_io.MeshFileError (a ValueError): a bad scan; with `strict`, a bad
      prediction. ValueError: no prediction could be evaluated.
  """
  if protocol not in ('nme', 'micc_p2p'):
    raise ValueError(f'protocol must be nme or micc_p2p, got {protocol!r}.')
  if find_prediction is None:
    find_prediction = datasets.prediction_files
  scans = {}
  per_item, distances_by_split, missing, failed = [], {}, [], []
  protocol_name = None
  for item in items:
    try:
      pred_mesh_path, pred_landmarks_path = find_prediction(
          item, predictions_dir, stage)
    except datasets.DatasetError as e:
      if not skip_missing:
        raise
      logging.warning('skipping: %s', e)
      missing.append(item.image)
      continue
    if item.scan_path not in scans:
      scan = mesh_io.read_obj(item.scan_path, allow_empty_triangles=True)
      scan_landmarks = landmark_io.read_landmarks(item.scan_landmarks_path)
      scans[item.scan_path] = (scan, scan_landmarks)
    scan, scan_landmarks = scans[item.scan_path]
    try:
      result = _evaluate_prediction(
          scan, scan_landmarks, item.scan_path, pred_mesh_path,
          pred_landmarks_path, protocol, nme_variant, p2p_crop_radius_mm,
          p2p_direction, p2p_with_scale, icp_mode, icp_max_iterations,
          distance_backend)
    except ValueError as e:  # MeshFileError / LandmarkFileError included
      if strict:
        raise
      logging.warning('bad prediction, not evaluated: %s', e)
      failed.append(dict(image=item.image, reason=str(e)))
      continue
    protocol_name = result.protocol
    stats = protocols.summarize(result.distances)
    per_item.append(dict(image=item.image, subject=item.subject,
                         split=item.split, yaw_deg=item.yaw_deg,
                         scale=result.transform.scale, **stats))
    logging.info('%s: %.3f mm (%s)', item.image, stats['mean'], item.split)
    for split in {item.split, 'all'}:
      distances_by_split.setdefault(split, []).append(result.distances)
  if not per_item:
    raise ValueError(f'{predictions_dir}: no prediction could be evaluated'
                     f'{" (" + failed[0]["reason"] + ")" if failed else ""}.')
  splits = {split: protocols.aggregate(d)
            for split, d in sorted(distances_by_split.items())}
  return {'protocol': protocol_name, 'items': per_item, 'splits': splits,
          'missing': missing, 'failed': failed}


def _evaluate_prediction(scan, scan_landmarks, scan_path, pred_mesh_path,
                         pred_landmarks_path, protocol, nme_variant,
                         p2p_crop_radius_mm, p2p_direction, p2p_with_scale,
                         icp_mode, icp_max_iterations, distance_backend):
  """One prediction against its scan: the protocol's result."""
  pred = mesh_io.read_obj(pred_mesh_path)
  pred_landmarks = landmark_io.read_landmarks(pred_landmarks_path)
  names = dict(scan_name=scan_path, pred_name=pred_mesh_path)
  if protocol == 'nme':
    return protocols.nme(scan.vertices, scan_landmarks, pred.vertices,
                         pred.triangles, pred_landmarks, nme_variant,
                         distance_backend, icp_mode, icp_max_iterations,
                         **names)
  return protocols.micc_p2p(scan.vertices, scan_landmarks, pred.vertices,
                            pred.triangles, pred_landmarks, p2p_crop_radius_mm,
                            p2p_with_scale, p2p_direction, distance_backend,
                            icp_mode, icp_max_iterations, **names)


def split_statistic(split_result, aggregate='pooled'):
  """(mean, std) of a split: pooled over points, or over image means."""
  stats = split_result[aggregate]
  return stats['mean'], stats['std']


def format_rows(method, dataset, result, aggregate='pooled'):
  """Lines `method dataset split mean±std mm (protocol, n images)`."""
  lines = []
  for split, stats in result['splits'].items():
    mean, std = split_statistic(stats, aggregate)
    lines.append(f'{method}\t{dataset}\t{split}\t{mean:.3f}±{std:.3f} mm\t'
                 f'({result["protocol"]}, {stats["num_subjects"]} images, '
                 f'median {stats[aggregate]["median"]:.3f}, {aggregate})')
  return lines


def write_result(path, result, method, dataset, stage, aggregate,
                 yaw_threshold_deg, predictions, **extra):
  """Writes an evaluate_items result as the JSON file eval/tables.py reads
  (fields in eval/README.md; `extra` fields are added at the top level)."""
  result = dict(result, format_version=RESULT_FORMAT_VERSION, method=method,
                dataset=dataset, stage=stage, aggregate=aggregate,
                yaw_threshold_deg=yaw_threshold_deg,
                predictions=os.path.abspath(predictions), **extra)
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(result, f, indent=1, default=_json_default)


def main(argv):
  del argv
  for name in ('dataset', 'dataset_root', 'predictions'):
    if FLAGS[name].value is None:
      raise app.UsageError(f'--{name} is required.')
  if not os.path.isdir(FLAGS.predictions):
    return _fail(f'--predictions={FLAGS.predictions}: folder not found.')
  try:
    items = datasets.load(FLAGS.dataset, FLAGS.dataset_root,
                          FLAGS.yaw_threshold_deg)
    result = evaluate_items(
        items, FLAGS.predictions, FLAGS.protocol, FLAGS.nme_variant,
        FLAGS.p2p_crop_radius_mm, FLAGS.p2p_direction, FLAGS.p2p_with_scale,
        FLAGS.icp_mode, FLAGS.icp_max_iterations, FLAGS.distance_backend,
        FLAGS.skip_missing, FLAGS.strict, FLAGS.stage)
  except (ValueError, OSError) as e:  # DatasetError, MeshFileError, ...
    return _fail(str(e))
  for line in format_rows(FLAGS.method, FLAGS.dataset, result,
                          FLAGS.aggregate):
    print(line)
  if result['missing']:
    print(f'{len(result["missing"])} image(s) without prediction skipped.')
  if result['failed']:
    print(f'{len(result["failed"])} prediction(s) could not be evaluated '
          '(not in the rows above):')
    for failure in result['failed']:
      print(f'  {failure["reason"]}')
  if FLAGS.output:
    write_result(FLAGS.output, result, FLAGS.method, FLAGS.dataset,
                 FLAGS.stage, FLAGS.aggregate, FLAGS.yaw_threshold_deg,
                 FLAGS.predictions)
    print(f'wrote {FLAGS.output}')


def _fail(message):
  """Prints one line naming the problem; returns the exit status 1."""
  print(f'eval/evaluate.py: {message}', file=sys.stderr)
  return 1


def _json_default(value):
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f'not JSON serialisable: {type(value)}')


if __name__ == '__main__':
  eval_flags.define_flags()
  app.run(main)
