r"""Detail-stage benchmark: RI2ITN and large-pose padding against known wrinkles.

  python eval/detail_benchmark.py                 # CPU setting (< 1 h, 2 cores)
  python eval/detail_benchmark.py --paper_scale   # paper settings (GPU)

The paper shows its detail stage only in pictures (Fig. 6-7). Here the
faces carry a known wrinkle displacement (detail/synthetic_details.py), so
the claims can be measured:

1. Training, in this process through detail/train.py's own loop (same data,
   seed, steps, batch and learning rate for every row; the coarse face is
   the synthetic ground truth, so only detail is learnt): Chen20's base
   network (RI2ITN t = 1), RI2ITN t = 2 with shared weights (the paper's
   default), t = 2 unshared, t = 3; then, from the t = 2 network, the
   large-pose training (--large_pose) with and without the symmetric
   padding (--large_pose_padding), the same steps.
2. Test sets (eval/detail_sets.py): small pose (|yaw| < 30 deg) and large
   pose (45-90 deg) faces with their own known wrinkles and the ground-truth
   coarse coefficients.
3. Scores (eval/detail_scoring.py): displacement MAE (mm) over the face,
   the same after removing the low-frequency part, and the normal-angle
   error of the detailed surface; large-pose rows separately on the visible
   and the self-occluded half. The zero-displacement row (the coarse face
   alone) is the floor to beat. Paired per-image differences with 95%
   intervals (eval/synthetic_report.paired_difference).
4. <--detail_benchmark_results_dir>/<name>.json, .md and .png (a picture
   like the paper's Fig. 7: input, coarse shading, each row's detailed
   shading, the true detail).

Training runs live in <--detail_benchmark_cache_dir>/runs/<row>-<key>/ keyed
by their settings; trained afresh unless --detail_benchmark_reuse_runs.
"""

import collections
import datetime
import hashlib
import json
import os
import shutil
import sys
import time

if __package__ in (None, ''):  # run as `python eval/detail_benchmark.py`
  sys.path.insert(0,
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging

from eval import provenance
from flags import benchmark_flags
from flags import detail_benchmark_flags

detail_benchmark_flags.define_flags()
FLAGS = flags.FLAGS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_SCALE = detail_benchmark_flags.PAPER_SCALE
TIMING_FILE = 'benchmark_timing.json'

# name: (label, split, what to train: None, (passes, shared) for a small-pose
# network, or 'large', True/False (padding)), network the row scores, pad).
Row = collections.namedtuple('Row', ['label', 'split', 'train', 'network',
                                     'pad'])
ROWS = collections.OrderedDict([
    ('zero', Row('zero displacement (coarse face alone)', 'both', None, None,
                 None)),
    ('t1', Row("Chen20's base network (RI2ITN t = 1)", 'small', (1, True),
               't1', 'never')),
    ('t2', Row('RI2ITN t = 2, shared weights (ours, default)', 'small',
               (2, True), 't2', 'never')),
    ('t2_unshared', Row('RI2ITN t = 2, unshared weights', 'small',
                        (2, False), 't2_unshared', 'never')),
    ('t3', Row('RI2ITN t = 3, shared weights', 'small', (3, True), 't3',
               'never')),
    ('large_as_is', Row('small-pose network (t = 2) as is', 'large', None,
                        't2', 'never')),
    ('large_no_padding', Row('large-pose network without symmetric padding',
                             'large', ('large', False), 'large_no_padding',
                             'never')),
    ('large_padding', Row('large-pose network with symmetric padding (ours)',
                          'large', ('large', True), 'large_padding',
                          'always')),
])
# Paired contrasts beyond "row minus zero displacement": (row, baseline).
CONTRASTS = (('t2', 't1'), ('t2_unshared', 't2'), ('t3', 't2'),
             ('large_padding', 'large_no_padding'),
             ('large_padding', 'large_as_is'),
             ('large_no_padding', 'large_as_is'))


def apply_paper_scale():
  benchmark_flags.apply_paper_scale(PAPER_SCALE)


def shortcuts():
  """Human-readable differences between this run and the paper's setting."""
  out = benchmark_flags.scale_shortcuts(PAPER_SCALE)
  out.append('training and test faces are rendered from the %r morphable '
             'model with random synthetic wrinkles and the ground-truth '
             'coarse face (paper: CelebA photos, coarse stage output)' %
             FLAGS.bfm)
  return out


def check_settings():
  """Raises ValueError naming the flag for settings that cannot work."""
  for name in ('detail_benchmark_image_size', 'detail_benchmark_uv_size',
               'detail_benchmark_train_images', 'detail_benchmark_test_images',
               'detail_benchmark_steps', 'detail_benchmark_large_steps',
               'detail_benchmark_batch_size',
               'detail_benchmark_eval_batch_size'):
    if FLAGS[name].value <= 0:
      raise ValueError('--%s must be positive, got %r' %
                       (name, FLAGS[name].value))
  if FLAGS.detail_benchmark_train_images % FLAGS.detail_benchmark_batch_size:
    raise ValueError('--detail_benchmark_train_images (%d) must be a multiple'
                     ' of --detail_benchmark_batch_size (%d)' %
                     (FLAGS.detail_benchmark_train_images,
                      FLAGS.detail_benchmark_batch_size))
  for name in ('detail_benchmark_wrinkles_mm',
               'detail_benchmark_lowpass_texels',
               'detail_benchmark_learning_rate'):
    if not FLAGS[name].value > 0:
      raise ValueError('--%s must be > 0, got %r' % (name, FLAGS[name].value))
  bad = [r for r in FLAGS.detail_benchmark_rows if r not in ROWS]
  if bad or not FLAGS.detail_benchmark_rows:
    raise ValueError('--detail_benchmark_rows: expected names among %s, got '
                     '%r' % (list(ROWS), FLAGS.detail_benchmark_rows))
  if len(FLAGS.detail_benchmark_large_yaw) != 2:
    raise ValueError('--detail_benchmark_large_yaw: expected LOW,HIGH '
                     'degrees, got %r' % (FLAGS.detail_benchmark_large_yaw,))


def large_yaw():
  try:
    return tuple(float(v) for v in FLAGS.detail_benchmark_large_yaw)
  except ValueError as e:
    raise ValueError('--detail_benchmark_large_yaw: expected two numbers, got '
                     '%r' % (FLAGS.detail_benchmark_large_yaw,)) from e


def channels():
  """--ri2itn_channels of every row: None (Chen20's) or a list."""
  value = list(FLAGS.detail_benchmark_channels)
  if value == ['chen20']:
    return None
  try:
    [int(c) for c in value]
  except ValueError as e:
    raise ValueError('--detail_benchmark_channels: expected "chen20" or '
                     'integers, got %r' % (value,)) from e
  return value


def runs_needed(rows):
  """Names of the trained networks the rows need, in training order."""
  need = set(ROWS[r].network for r in rows if ROWS[r].network)
  if need & {'large_no_padding', 'large_padding'}:
    need.add('t2')
  return [n for n in ROWS if n in need]


def _common_training():
  return {
      'bfm': FLAGS.bfm,
      'seed': FLAGS.detail_benchmark_seed,
      'detail_image_size': FLAGS.detail_benchmark_image_size,
      'detail_uv_size': FLAGS.detail_benchmark_uv_size,
      'num_images': FLAGS.detail_benchmark_train_images,
      'batch_size': FLAGS.detail_benchmark_batch_size,
      'learning_rate': FLAGS.detail_benchmark_learning_rate,
      'detail_synthetic_wrinkles_mm': FLAGS.detail_benchmark_wrinkles_mm,
      'ri2itn_channels': channels(),
      'ri2itn_stem_channels': FLAGS.ri2itn_stem_channels,
      'ri2itn_feedback_chains': FLAGS.ri2itn_feedback_chains,
      'ri2itn_input_mode': FLAGS.ri2itn_input_mode,
      'ri2itn_shading_input': FLAGS.ri2itn_shading_input,
      'detail_displacement_scale_mm': FLAGS.detail_displacement_scale_mm,
      'detail_photo_skin_mask': FLAGS.detail_photo_skin_mask,
      'weights': {n: FLAGS[n].value for n in FLAGS
                  if n.startswith('detail_') and n.endswith('_weight')},
  }


def run_folder(name):
  """<cache>/runs/<name>-<key of the settings it depends on>."""
  settings = dict(_common_training(), name=name,
                  steps=FLAGS.detail_benchmark_steps)
  if name.startswith('large'):
    settings['large_steps'] = FLAGS.detail_benchmark_large_steps
  key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode(
      'utf-8')).hexdigest()[:12]
  return os.path.join(FLAGS.detail_benchmark_cache_dir, 'runs',
                      '%s-%s' % (name, key))


def training_flags(name, folder):
  """The detail/train.py flag values of run `name` (every one it reads)."""
  spec = ROWS[name].train
  values = dict(_common_training())
  values.pop('weights')
  values.update(detail_dir=folder, data=None, coarse_checkpoint=None,
                init_checkpoint=None, strategy='default', num_cpu_devices=0,
                lr_decay_steps=5000, lr_decay_rate=0.99,
                min_learning_rate=1e-7, grad_clip=1.0, allow_fewer_steps=False,
                skip_bad_records=False,
                image_every=10**9, save_every=10**9)
  if spec[0] == 'large':
    values.update(large_pose=True, large_pose_padding=spec[1],
                  ri2itn_passes=2, ri2itn_share_weights=True,
                  steps=FLAGS.detail_benchmark_large_steps,
                  init_checkpoint=os.path.join(run_folder('t2'),
                                               'small_pose'))
  else:
    values.update(large_pose=False, large_pose_padding=True,
                  ri2itn_passes=spec[0], ri2itn_share_weights=spec[1],
                  steps=FLAGS.detail_benchmark_steps)
  values['log_every'] = max(1, values['steps'] // 10)
  return values


def stage_folder(name):
  return os.path.join(run_folder(name), 'large_pose'
                      if ROWS[name].train[0] == 'large' else 'small_pose')


def train(name, log=print):
  """Trains run `name` with detail/train.py's loop (or reuses it).

  Returns (wall seconds, whether reused).
  """
  from absl.testing import flagsaver
  from detail import train as detail_train
  folder = run_folder(name)
  timing_path = os.path.join(folder, TIMING_FILE)
  if FLAGS.detail_benchmark_reuse_runs and os.path.exists(timing_path):
    with open(timing_path) as f:
      wall = json.load(f)['wall_s']
    log('[%s] reusing %s (trained in %.0f s)' % (name, folder, wall))
    return wall, True
  if os.path.exists(folder):
    shutil.rmtree(folder)
  os.makedirs(folder)
  values = training_flags(name, folder)
  log('[%s] training %d steps into %s' % (name, values['steps'], folder))
  start = time.time()
  with flagsaver.flagsaver(**values):
    history = detail_train.train()
  wall = time.time() - start
  with open(timing_path, 'w') as f:
    json.dump({'wall_s': wall, 'flags': values,
               'loss_first_last': [float(history[0]), float(history[-1])]},
              f, indent=1, default=str)
  log('[%s] trained in %.0f s; loss %.3f -> %.3f' %
      (name, wall, history[0], history[-1]))
  return wall, False


def predict(recon, test_set, pad):
  """(displacement [N,M,1] mm on the dense mesh, displacement maps
  [N,S,S,1]) of a DetailReconstructor on a test set, in eval batches."""
  import numpy as np
  import tensorflow as tf
  from coarse import coefficients as coefficients_lib
  disp, maps = [], []
  n = len(test_set['images'])
  size = FLAGS.detail_benchmark_eval_batch_size
  for i in range(0, n, size):
    coeffs = coefficients_lib.Coefficients.from_vector(
        recon.model, tf.constant(test_set['coefficients'][i:i + size]))
    out = recon(tf.constant(test_set['images'][i:i + size]), coeffs,
                pad=pad)
    disp.append(out.detailed.displacement.numpy())
    maps.append(out.displacement_uv.numpy())
  return np.concatenate(disp), np.concatenate(maps)


def regions(split):
  return ('all',) if split == 'small' else ('visible', 'occluded')


def score_set(recon, test_set, split, displacement):
  """{region: {metric: [N] per-image values}} of a predicted displacement."""
  import numpy as np
  import tensorflow as tf
  from eval import detail_scoring
  truth = detail_scoring.truth(recon.applier, test_set['vertices'],
                               test_set['maps'],
                               FLAGS.detail_benchmark_wrinkles_mm)
  yaw = tf.constant(np.deg2rad(test_set['yaw_deg']), tf.float32)
  sigma = (FLAGS.detail_benchmark_lowpass_texels *
           FLAGS.detail_benchmark_uv_size / 64.0)
  out = {}
  for region in regions(split):
    weights = detail_scoring.region_weights(recon.applier,
                                            recon.padding.sides, yaw, region)
    out[region] = detail_scoring.score(recon.applier, truth, displacement,
                                       weights, sigma)
  return out


def run_benchmark(argv0='eval/detail_benchmark.py', log=print):
  """The whole benchmark with the current FLAGS; returns (result dict,
  figure columns) for eval/detail_report.py."""
  import numpy as np
  import bfm
  from detail import detail_reconstruction
  from eval import detail_report
  from eval import detail_sets

  check_settings()
  total_start = time.time()
  rows_asked = list(FLAGS.detail_benchmark_rows)
  model = bfm.load(FLAGS.bfm)
  trained = {}
  for name in runs_needed(rows_asked):
    if ROWS[name].train is not None:
      trained[name] = train(name, log)
  train_wall = time.time() - total_start

  # The zero row's reconstructor: any network, its output is not used.
  base = detail_reconstruction.DetailReconstructor(
      model, FLAGS.detail_benchmark_uv_size,
      displacement_scale_mm=FLAGS.detail_displacement_scale_mm)
  start = time.time()
  low, high = large_yaw()
  seed = FLAGS.detail_benchmark_seed
  splits = {
      'small': detail_sets.make_set(
          model, base.applier, seed + 1001, FLAGS.detail_benchmark_test_images,
          FLAGS.detail_benchmark_image_size, 0.0,
          FLAGS.detail_benchmark_small_max_yaw,
          FLAGS.detail_benchmark_wrinkles_mm),
      'large': detail_sets.make_set(
          model, base.applier, seed + 1002, FLAGS.detail_benchmark_test_images,
          FLAGS.detail_benchmark_image_size, low, high,
          FLAGS.detail_benchmark_wrinkles_mm),
  }
  sets_wall = time.time() - start
  log('Test sets: %d small-pose and %d large-pose faces (%.0f s)' %
      (len(splits['small']['images']), len(splits['large']['images']),
       sets_wall))

  networks = {}
  for name in runs_needed(rows_asked):
    recon, _ = detail_reconstruction.load(stage_folder(name), model)
    networks[name] = recon

  rows = []
  figure = detail_report.FigureColumns(splits, FLAGS.detail_benchmark_figure_faces)
  for name in rows_asked:
    row = ROWS[name]
    for split in (('small', 'large') if row.split == 'both' else
                  (row.split,)):
      data = splits[split]
      if row.network is None:
        recon = base
        disp = np.zeros([len(data['images']), base.applier.mesh.num_vertices,
                         1], np.float32)
        maps = np.zeros([len(data['images']), base.uv_size, base.uv_size, 1],
                        np.float32)
        params = 0
        wall = 0.0
      else:
        recon = networks[row.network]
        disp, maps = predict(recon, data, row.pad)
        params = int(recon.network.count_params())
        wall = trained[row.network][0] if row.train is not None else 0.0
      log('Scoring %s on %s pose' % (name, split))
      scores = score_set(recon, data, split, disp)
      figure.add(split, row.label, recon, maps)
      for region, per_image in scores.items():
        rows.append(dict(
            {m: float(np.mean(v)) for m, v in per_image.items()},
            name=name, label=row.label, split=split, region=region,
            train_s=float(wall), params=params,
            reused=bool(row.train is not None and trained[row.network][1]),
            per_image={m: [float(x) for x in v]
                       for m, v in per_image.items()}))
  figure.add_truth(base, FLAGS.detail_benchmark_wrinkles_mm)

  settings = {}
  for name in detail_benchmark_flags.names():
    value = FLAGS[name].value
    settings[name] = list(value) if isinstance(value, tuple) else value
  result = {
      'benchmark': 'detail_stage',
      'command': ' '.join(['python', argv0] + sys.argv[1:]),
      'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
      'git_commit': provenance.git_commit(),
      'cpu_count': os.cpu_count(),
      'load_average': list(os.getloadavg()),
      'settings': settings,
      'paper_settings': {k: v[0] for k, v in PAPER_SCALE.items()},
      'shortcuts': shortcuts(),
      'test_yaw_ranges': {'small': [0.0,
                                    FLAGS.detail_benchmark_small_max_yaw],
                          'large': [low, high]},
      'rows': rows,
      'paired': detail_report.paired(rows, CONTRASTS),
      'wall_s': {'training': train_wall, 'sets': sets_wall,
                 'total': time.time() - total_start},
  }
  return result, figure


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  if FLAGS.paper_scale:
    apply_paper_scale()
  logging.set_verbosity(logging.INFO)
  from eval import detail_report
  result, figure = run_benchmark()
  folder = FLAGS.detail_benchmark_results_dir
  if not os.path.isabs(folder):
    folder = os.path.join(REPO_ROOT, folder)
  paths = detail_report.write(result, figure, folder,
                              FLAGS.detail_benchmark_name)
  print('\n' + detail_report.markdown(result))
  print('Wrote %s' % ', '.join(paths))


if __name__ == '__main__':
  app.run(main)
