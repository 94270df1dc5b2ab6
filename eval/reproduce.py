r"""From an evaluation set to the paper's table rows in one command.

  python eval/reproduce.py --dataset=micc --dataset_root=/data/MICC --fit
  python eval/reproduce.py --dataset=now --dataset_root=/data/NoW \
      --coarse_checkpoint=results/coarse --detail_checkpoint=results/detail

It composes the project's own steps and holds none of their code:
  1. eval/datasets.py lists the images the paper evaluates and their scans
     (layout problems: one line naming the path and the expected layout,
     exit 1); every listed photo must be there.
  2. The reconstruct command's code (reconstruct/command.py build_pipeline
     and process: detection, crop, coarse and detail stages, the output
     files) reconstructs them into --reproduce_out/predictions/<image path
     minus extension>_coarse.obj, _detail.obj, _landmarks.txt, ... : the
     layout eval/evaluate.py reads (it reads NAME_landmarks.txt's X Y Z
     columns through eval/landmark_io.py). All reconstruct flags apply
     (--fit or the checkpoints, --bfm, --landmarks, --batch_size, --resume,
     --overwrite, ...).
  3. Each of the paper's tables with a column for the dataset (--tables;
     eval/tables.py TABLES) fixes a protocol and a stage (table_evaluations):
     Tables 1 and 4, FG 2018 NME of the coarse meshes; Table 2, Chen20's MICC
     point-to-point error of the detailed meshes; Table 3, NME of the detailed
     meshes. eval/evaluate.py evaluate_items scores the predictions with it
     (settings: the eval flags, e.g. --nme_variant, --aggregate), and the
     face model's mean face on the same images as a reference.
  4. Prints, per table, the paper's published rows for the dataset's columns
     (eval/tables.py) beside this run's row and the mean face's, and writes
     to --reproduce_out: <dataset>_<protocol>_<stage>.json (eval/evaluate.py's
     result format: eval/tables.py collects it), .csv (one row per image:
     split, yaw, error, the mean face's error, or why it has none) and
     tables.md (what was printed).

Images whose face is not found are reported and left out of the rows (the
rows say "n of N images"). Exit status: 0 when rows were printed; 1 for a
dataset problem or when no image could be evaluated; 2 for a usage problem
(no checkpoints and no --fit, an unwritable --reproduce_out, outputs of an
earlier run there without --resume or --overwrite); 130 when interrupted.
"""

import collections
import csv
import os
import sys

try:  # as the reconstruct command: Ctrl-C while TensorFlow loads
  from absl import app
  from absl import flags

  from flags import common_flags
  from flags import reproduce_flags
except KeyboardInterrupt:
  print('Interrupted while starting; nothing was written.', file=sys.stderr)
  sys.exit(130)

reproduce_flags.define_flags()
# Every flag is defined through common_flags.define_once, which absl records
# as the defining module: --helpshort lists them all.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np

from eval import datasets
from eval import evaluate
from eval import landmark_io
from eval import tables
from bfm import mesh_io
from reconstruct import command
from reconstruct import outputs
# pylint: enable=g-import-not-at-top,wrong-import-position

EXIT_DATASET = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Stage of each table whose eval/tables.py selector leaves it open: Table 2
# is "detailed reconstruction, same topology" (Chen20's MICC protocol on the
# detailed meshes).
_OPEN_STAGES = {'2': 'detail'}
# Reconstruct flags this command does not read, and what to use instead.
_UNUSED_RECONSTRUCT_FLAGS = {
    'out': '--reproduce_out (the predictions go to its predictions/)',
    'shard': 'nothing (the dataset is reconstructed in one run; --resume '
             'finishes a stopped one)',
    'extensions': 'nothing (the dataset lists its photos)',
    'benchmark': 'the reconstruct command', 'benchmark_images':
        'the reconstruct command'}
CSV_COLUMNS = ('image', 'subject', 'split', 'yaw_deg', 'reconstructed_yaw_deg',
               'status', 'mean_mm', 'median_mm', 'std_mm', 'num_points',
               'scale', 'mean_face_mean_mm', 'reason')


def _say(message):
  print(message, flush=True)


def _warn(message):
  print(message, file=sys.stderr, flush=True)


def table_evaluations(dataset, table_names):
  """The paper's evaluations of `dataset` in the given tables.

  Args:
    dataset: one of datasets.DATASETS.
    table_names: keys of tables.TABLES ('1'..'4').

  Returns:
    list of (protocol, stage, [table names]) in table order, one entry per
    distinct (protocol, stage): Tables 1 and 4 share the coarse NME.

  Raises:
    ValueError: an unknown table name (names --tables).
  """
  found = collections.OrderedDict()
  for name in table_names:
    if name not in tables.TABLES:
      raise ValueError('--tables: unknown table %r (one of %s)' %
                       (name, ', '.join(tables.TABLES)))
    _, columns, _, (protocol, stage), _ = tables.TABLES[name]
    if all(d != dataset for d, _ in columns):
      continue
    stage = stage or _OPEN_STAGES[name]
    found.setdefault((protocol, stage), []).append(name)
  return [(p, s, names) for (p, s), names in found.items()]


def dataset_items(name, root, yaw_threshold_deg, max_images=None):
  """The dataset's evaluation items whose photos are all present.

  Returns:
    (items to reconstruct, number of items the dataset lists).
  Raises:
    datasets.DatasetError: a layout problem, a missing photo or two images
      with one prediction name; the message names the path and the layout.
  """
  try:
    items = datasets.load(name, root, yaw_threshold_deg)
  except datasets.DatasetError as e:
    if datasets.expected_layout(name) in str(e):
      raise
    raise datasets.DatasetError('%s (expected the %s layout: %s)' %
                                (e, name, datasets.expected_layout(name)))
  listed = len(items)
  if max_images:
    items = items[:max_images]
  missing = [datasets.image_path(i, root) for i in items
             if not os.path.isfile(datasets.image_path(i, root))]
  if missing:
    raise datasets.DatasetError(
        '%s: input photo not found%s (expected the %s layout: %s)' %
        (missing[0], ' (and %d more listed photos)' % (len(missing) - 1)
         if len(missing) > 1 else '', name, datasets.expected_layout(name)))
  seen = {}
  for item in items:
    if item.key in seen:
      raise datasets.DatasetError(
          '%s and %s: two images with one prediction name %s' %
          (seen[item.key], item.image, item.key))
    seen[item.key] = item.image
  return items, listed


def reconstruction_jobs(items, root, predictions_dir):
  """[(output folder, [(photo path, output name)])]: the reconstruct
  command's outputs of image a/b/c.jpg are predictions_dir/a/b/c_*."""
  jobs = collections.OrderedDict()
  for item in items:
    folder, name = os.path.split(item.key)
    jobs.setdefault(os.path.join(predictions_dir, folder), []).append(
        (datasets.image_path(item, root), name))
  return list(jobs.items())


def earlier_outputs(jobs):
  """Output files of these faces already present (an earlier run)."""
  found = []
  for out_dir, photos in jobs:
    for _, name in photos:
      found += outputs.existing_outputs(out_dir, name)
  return found


def reconstruct(pipeline, jobs):
  """Runs the reconstruct command's `process` on every folder of `jobs`.

  Returns:
    (done [(name, photo)], failed [(photo, reason)], skipped [(name, photo)]).
  Raises:
    command.Interrupted: Ctrl-C; what was done so far is in it.
  """
  done, failed, skipped = [], [], []
  run_id = command.new_run_id()
  for out_dir, photos in jobs:
    os.makedirs(out_dir, exist_ok=True)
    try:
      d, f, s = command.process(pipeline, photos, out_dir, FLAGS.batch_size,
                                overwrite=FLAGS.overwrite, run_id=run_id,
                                resume=FLAGS.resume,
                                input_workers=FLAGS.input_workers)
    except command.Interrupted as e:
      raise command.Interrupted(done + e.done, failed + e.failed,
                                skipped + e.skipped) from None
    done += d
    failed += f
    skipped += s
  return done, failed, skipped


def write_mean_face(model, folder):
  """The model's mean face as a prediction: (mesh .obj, landmark file) with
  its 68 landmark vertices (the jaw's fixed points; the protocols use the
  7 keypoints and the nose tip only)."""
  os.makedirs(folder, exist_ok=True)
  mesh = os.path.join(folder, '%s_mean_face.obj' % model.name)
  landmarks = os.path.join(folder, '%s_mean_face_landmarks.txt' % model.name)
  mesh_io.write_obj(mesh, model.mean_shape, model.triangles, precision=6)
  landmark_io.write_landmarks(
      landmarks, np.asarray(model.mean_shape)[np.asarray(model.landmarks68)])
  return mesh, landmarks


def evaluate_protocol(items, predictions_dir, protocol, stage,
                      find_prediction=None):
  """evaluate.evaluate_items with the eval flags' settings; images without
  a prediction are skipped (listed in 'missing')."""
  return evaluate.evaluate_items(
      items, predictions_dir, protocol, FLAGS.nme_variant,
      FLAGS.p2p_crop_radius_mm, FLAGS.p2p_direction, FLAGS.p2p_with_scale,
      FLAGS.icp_mode, FLAGS.icp_max_iterations, FLAGS.distance_backend,
      skip_missing=True, strict=FLAGS.strict, stage=stage,
      find_prediction=find_prediction)


def reconstructed_yaw(item, predictions_dir):
  """The yaw (degrees) the reconstruction estimated, from its
  NAME_coefficients.npz, or None."""
  folder, name = os.path.split(item.key)
  path = outputs.output_paths(os.path.join(predictions_dir, folder),
                              name)['_coefficients.npz']
  try:
    with np.load(path) as data:
      return float(data['yaw_deg'])
  except (OSError, KeyError, ValueError):
    return None


def per_image_rows(items, root, result, mean_result, predictions_dir, failed):
  """CSV rows (dicts with CSV_COLUMNS) of every item, in dataset order.

  Args:
    items: the dataset items; root: the dataset folder.
    result, mean_result: evaluate_items results of the run and the mean face.
    predictions_dir: the run's predictions.
    failed: {photo path: why it was not reconstructed}.
  """
  measured = {r['image']: r for r in result['items']}
  mean_face = {r['image']: r['mean'] for r in mean_result['items']
               } if mean_result else {}
  bad = {f['image']: f['reason'] for f in result['failed']}
  rows = []
  for item in items:
    row = dict(image=item.image, subject=item.subject, split=item.split,
               yaw_deg=item.yaw_deg,
               reconstructed_yaw_deg=reconstructed_yaw(item, predictions_dir))
    if item.image in measured:
      r = measured[item.image]
      row.update(status='evaluated', mean_mm=r['mean'], median_mm=r['median'],
                 std_mm=r['std'], num_points=r['num_points'], scale=r['scale'],
                 mean_face_mean_mm=mean_face.get(item.image))
    elif item.image in bad:
      row.update(status='bad prediction', reason=bad[item.image])
    else:
      row.update(status='not reconstructed',
                 reason=failed.get(datasets.image_path(item, root),
                                   'no prediction'))
    rows.append(row)
  return rows


def write_csv(path, rows):
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: '' if row.get(k) is None else row[k]
                       for k in CSV_COLUMNS})


def dataset_table(name, dataset, results):
  """The columns of table `name` for `dataset`: the paper's rows and the
  given results' rows (eval/tables.py build_table).

  Args:
    results: result dicts (evaluate_items output plus 'method', 'dataset',
      'stage', '_file'); each becomes a row named '<method> [<protocol>]'.
  Returns:
    Markdown text.
  """
  title, header, rows = tables.build_table(name, results, paper_rows=True)
  columns = tables.TABLES[name][1]
  keep = [i for i, (d, _) in enumerate(columns) if d == dataset]
  return tables.format_table(
      '%s, %s columns' % (title, dataset),
      [header[i] for i in keep], [(m, [c[i] for i in keep]) for m, c in rows])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('eval/reproduce.py takes no positional arguments '
                         '(got %s); the dataset gives the photos.' %
                         ' '.join(argv[1:]))
  try:
    return _main()
  except KeyboardInterrupt:
    _warn('Interrupted.')
    return EXIT_INTERRUPTED


def _main():
  for name, instead in _UNUSED_RECONSTRUCT_FLAGS.items():
    if FLAGS[name].present:
      _warn('eval/reproduce.py: --%s is a reconstruct flag this command does '
            'not read; use %s.' % (name, instead))
      return EXIT_USAGE
  for name in ('dataset', 'dataset_root'):
    if FLAGS[name].value is None:
      _warn('eval/reproduce.py: --%s is required.' % name)
      return EXIT_USAGE
  try:
    evaluations = table_evaluations(FLAGS.dataset, FLAGS.tables)
  except ValueError as e:
    _warn('eval/reproduce.py: %s' % e)
    return EXIT_USAGE
  if not evaluations:
    _warn('eval/reproduce.py: --tables=%s has no column for --dataset=%s.' %
          (','.join(FLAGS.tables), FLAGS.dataset))
    return EXIT_USAGE
  try:
    items, listed = dataset_items(FLAGS.dataset, FLAGS.dataset_root,
                                  FLAGS.yaw_threshold_deg,
                                  FLAGS.reproduce_max_images)
  except datasets.DatasetError as e:
    _warn('eval/reproduce.py: %s' % e)
    return EXIT_DATASET
  out = FLAGS.reproduce_out or 'reproduce_%s' % FLAGS.dataset
  reason = command.check_output_folder(out)
  if reason:
    _warn('eval/reproduce.py: %s' % reason.replace('--out=',
                                                   '--reproduce_out='))
    return EXIT_USAGE
  predictions = os.path.join(out, 'predictions')
  jobs = reconstruction_jobs(items, FLAGS.dataset_root, predictions)
  found = earlier_outputs(jobs)
  if found and not (FLAGS.resume or FLAGS.overwrite):
    _warn('eval/reproduce.py: %s: outputs of an earlier run are there (%s%s); '
          'pass --resume to keep the complete faces and reconstruct the rest, '
          'or --overwrite to reconstruct every image again.' %
          (predictions, found[0], ' and %d more files' % (len(found) - 1)
           if len(found) > 1 else ''))
    return EXIT_USAGE
  _say('%s: %d%s images in %s; tables %s.' % (
      FLAGS.dataset, len(items), ' of %d' % listed if len(items) < listed
      else '', FLAGS.dataset_root,
      ', '.join(n for _, _, names in evaluations for n in names)))
  try:
    pipeline = command.build_pipeline()
  except (ValueError, FileNotFoundError) as e:
    _warn(str(e))
    return EXIT_USAGE
  for line in pipeline.describe():
    _say(line)
  try:
    done, failed, skipped = reconstruct(pipeline, jobs)
  except command.Interrupted as e:
    _warn('Interrupted after %d of %d images; nothing was evaluated (rerun '
          'with --resume to go on).' % (len(e.done) + len(e.skipped),
                                        len(items)))
    return EXIT_INTERRUPTED
  _say('Reconstructed %d of %d images into %s%s.' % (
      len(done), len(items), predictions,
      '; %d complete from an earlier run (--resume)' % len(skipped)
      if skipped else ''))
  for _, why in failed:
    _warn('  not reconstructed: %s' % why)
  return _evaluate_and_report(items, listed, evaluations, pipeline, out,
                              predictions, dict(failed))


def _evaluate_and_report(items, listed, evaluations, pipeline, out,
                         predictions, failed):
  """Step 3 and 4 of the module docstring; returns the exit status."""
  model = pipeline.model
  mean_files = write_mean_face(model, os.path.join(out, 'mean_face'))
  mode = ('--fit' if pipeline.fit else 'checkpoints %s, %s' % (
      pipeline.coarse_checkpoint, pipeline.detail_checkpoints['small']))
  printed = []
  for protocol, stage, names in evaluations:
    try:
      result = evaluate_protocol(items, predictions, protocol, stage)
    except (ValueError, OSError) as e:  # DatasetError, MeshFileError, none
      _warn('eval/reproduce.py: %s' % e)
      return EXIT_DATASET
    evaluated = [i for i in items
                 if i.image in {r['image'] for r in result['items']}]
    mean_result = evaluate_protocol(
        evaluated, os.path.dirname(mean_files[0]), protocol, stage,
        find_prediction=lambda item, folder, stage: mean_files)
    stem = os.path.join(out, '%s_%s_%s' % (FLAGS.dataset, result['protocol'],
                                           stage))
    evaluate.write_result(
        stem + '.json', result, FLAGS.method, FLAGS.dataset, stage,
        FLAGS.aggregate, FLAGS.yaw_threshold_deg, predictions,
        reproduce={
            'command': ' '.join(['python eval/reproduce.py'] + sys.argv[1:]),
            'tables': names, 'mode': mode, 'model': model.name,
            'landmarks': FLAGS.landmarks, 'images_listed': listed,
            'images_used': len(items),
            'images_evaluated': len(result['items']),
            'not_reconstructed': [{'photo': p, 'reason': r}
                                  for p, r in failed.items()]},
        mean_face={'model': model.name, 'splits': mean_result['splits'],
                   'items': mean_result['items']})
    write_csv(stem + '.csv', per_image_rows(items, FLAGS.dataset_root, result,
                                            mean_result, predictions, failed))
    note = '%d of %d images%s' % (len(result['items']), listed,
                                  '' if len(items) == listed else
                                  ', --reproduce_max_images')
    rows = [dict(result, method='%s (this run: %s, %s, %s)' % (
        FLAGS.method, mode, model.name, note), dataset=FLAGS.dataset,
                 stage=stage, _file=stem + '.json'),
            dict(mean_result, method='mean face of %s (reference)' %
                 model.name, dataset=FLAGS.dataset, stage=stage,
                 _file=stem + '.json')]
    lines = []
    for name in names:
      lines += [dataset_table(name, FLAGS.dataset, rows), '']
    lines += ['Per split (%s, %s meshes):' % (result['protocol'], stage)]
    lines += ['  ' + l for l in evaluate.format_rows(
        FLAGS.method, FLAGS.dataset, result, FLAGS.aggregate)]
    lines += ['  ' + l for l in evaluate.format_rows(
        'mean face', FLAGS.dataset, mean_result, FLAGS.aggregate)]
    lines += ['Per image: %s.csv; result: %s.json' % (stem, stem), '']
    _say('\n'.join(lines))
    printed += lines
  with open(os.path.join(out, 'tables.md'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(printed) + '\n')
  return 0


if __name__ == '__main__':
  app.run(main)
