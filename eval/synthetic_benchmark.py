r"""Synthetic full-pose benchmark: the paper's Table 4 ablation, known meshes.

  python eval/synthetic_benchmark.py                 # CPU setting (< 1 h)
  python eval/synthetic_benchmark.py --paper_scale   # paper settings (GPU)

1. Sets (eval/synthetic_sets.py, cached under --benchmark_cache_dir): a
   CelebA-like training set (yaw distribution --benchmark_train_yaw, its
   histogram printed) and two test sets, small pose (|yaw| < 30 deg) and
   large pose (45 <= |yaw| <= 90 deg), with ground-truth meshes, landmarks
   and lighting. Fixed seeds. Face model: --bfm, or without it the first of
   benchmark_flags.DEFAULT_MODELS in the shared data (else the built-in
   'synthetic' model); faces: --benchmark_faces (photo-like renders with
   real skin by default). The result records both.
2. Training, always through `python coarse/train.py` subprocesses: one shared
   no-SAM (Chen20) pre-training (plus a supervised loss on the training
   faces' ground-truth meshes, --benchmark_pretrain_vertex_weight, a listed
   shortcut: without it the network learns no identity at this scale),
   then the w/o SAM run and, for every
   --benchmark_sam_reduce reduction, each other --benchmark_sam_configs run
   (our, our_star) from that checkpoint with the same steps, batch size,
   learning rate and data order (the paper's setting: SAM fine-tunes a
   Chen20-trained network for 250 steps at batch 6).
3. Evaluation (eval/synthetic_scoring.py): one plain pass of each trained
   network on both test sets, SAM off as in the paper's inference (the
   result's "scoring" field says so), eval/protocols.py's FG 2018 NME with
   the ground-truth mesh as the scan.
4. Table in the paper's Table 4 layout with the training wall times and every
   shortcut versus the paper, printed and written to
   <--benchmark_results_dir>/<--benchmark_name>.{json,md} for the first
   reduction and <--benchmark_name>_sam_<reduction>.{json,md} for each other
   (each with the shared w/o SAM row and references).

Training runs live in <cache_dir>/runs/<key>/ keyed by their settings; they
are trained afresh each time unless --benchmark_reuse_runs.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

if __package__ in (None, ''):  # run as `python eval/synthetic_benchmark.py`
  sys.path.insert(0,
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from eval import provenance
from flags import benchmark_flags
from flags import coarse_flags

benchmark_flags.define_flags()
FLAGS = flags.FLAGS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(REPO_ROOT, 'coarse', 'train.py')
SAM_CONFIGS = coarse_flags.SAM_CONFIGS

# The paper's settings (appendix C and D.0.1), set by --paper_scale: flag ->
# (value, what the paper says).
PAPER_SCALE = benchmark_flags.PAPER_SCALE


def apply_paper_scale():
  """Sets the PAPER_SCALE values of flags not given on the command line."""
  benchmark_flags.apply_paper_scale(PAPER_SCALE)


def shortcuts():
  """Human-readable differences between this run and the paper's method."""
  out = benchmark_flags.scale_shortcuts(PAPER_SCALE)
  if not FLAGS.benchmark_vgg_weights:
    out.append('no VGG-16 weights: backbone from random initialisation '
               '(paper: ImageNet-pretrained VGG-16) and the perceptual '
               'identity loss (Eq. 17) is off')
  out.append('training and test faces are rendered from the %r morphable '
             'model (%s faces; paper: CelebA photos; MICC, NoW, 3dMDLab, '
             'ESRC scans)' % (FLAGS.bfm, resolve_faces()))
  out.append('exact 68 landmarks of the rendered meshes for training '
             '(paper: detected ones)')
  if resolve_faces() == 'textured':
    out.append('faces rendered with a perspective camera at %.0f mm; the '
               'network models Chen20\'s scaled orthographic camera' %
               textured_faces_distance())
  import bfm  # pylint: disable=g-import-not-at-top
  if not bfm.load(FLAGS.bfm).num_tex:
    out.append('the %r model has no texture basis: the network\'s renders '
               'use its mean albedo, and the photometric loss compares that '
               'one colour with the faces\' skin (paper: BFM\'s texture '
               'basis)' % FLAGS.bfm)
  return out


def textured_faces_distance():
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  return textured_faces.CAMERA_DISTANCE_MM


def resolve_model():
  """Sets --bfm, when not given, to the first of DEFAULT_MODELS in the
  shared data, else 'synthetic'; returns the name used."""
  if not FLAGS['bfm'].present:
    from bfm import loader  # pylint: disable=g-import-not-at-top
    found = [m for m in benchmark_flags.DEFAULT_MODELS if loader.find_model(m)]
    FLAGS.bfm = found[0] if found else 'synthetic'
  return FLAGS.bfm


def resolve_faces():
  """'textured' or 'model' (--benchmark_faces; 'auto' = textured when the
  shared sample photos are found)."""
  if FLAGS.benchmark_faces != 'auto':
    return FLAGS.benchmark_faces
  from eval import textured_faces  # pylint: disable=g-import-not-at-top
  try:
    textured_faces.sample_photos()
  except FileNotFoundError:
    return 'model'
  return 'textured'


def check_settings():
  """Raises ValueError naming the flag for settings that cannot work."""
  positive = ('benchmark_image_size', 'benchmark_train_images',
              'benchmark_test_images', 'benchmark_steps',
              'benchmark_batch_size', 'benchmark_eval_batch_size')
  for name in positive:
    if FLAGS[name].value <= 0:
      raise ValueError('--%s must be positive, got %r' %
                       (name, FLAGS[name].value))
  if FLAGS.benchmark_pretrain_steps < 0:
    raise ValueError('--benchmark_pretrain_steps must be >= 0')
  if FLAGS.benchmark_train_images < FLAGS.benchmark_batch_size:
    raise ValueError('--benchmark_train_images (%d) must be >= '
                     '--benchmark_batch_size (%d)' %
                     (FLAGS.benchmark_train_images, FLAGS.benchmark_batch_size))
  bad = [c for c in FLAGS.benchmark_sam_configs if c not in SAM_CONFIGS]
  if bad or not FLAGS.benchmark_sam_configs:
    raise ValueError('--benchmark_sam_configs: expected names among %s, got %r'
                     % (SAM_CONFIGS, FLAGS.benchmark_sam_configs))
  reduces = FLAGS.benchmark_sam_reduce
  if (not reduces or len(set(reduces)) != len(reduces) or
      any(r not in coarse_flags.SAM_REDUCE for r in reduces)):
    raise ValueError('--benchmark_sam_reduce: expected distinct names among '
                     '%s, got %r' % (', '.join(coarse_flags.SAM_REDUCE),
                                     reduces))
  if len(FLAGS.benchmark_large_yaw) != 2:
    raise ValueError('--benchmark_large_yaw: expected LOW,HIGH degrees, got %r'
                     % (FLAGS.benchmark_large_yaw,))
  if FLAGS.benchmark_vgg_weights and not os.path.isfile(
      FLAGS.benchmark_vgg_weights):
    raise FileNotFoundError('--benchmark_vgg_weights: no file %r' %
                            (FLAGS.benchmark_vgg_weights,))


def set_spec():
  from eval import synthetic_sets
  try:
    large = tuple(float(v) for v in FLAGS.benchmark_large_yaw)
  except ValueError as e:
    raise ValueError('--benchmark_large_yaw: expected two numbers, got %r' %
                     (FLAGS.benchmark_large_yaw,)) from e
  synthetic_sets.symmetric_yaw(*large)  # validates the range
  synthetic_sets.symmetric_yaw(0.0, FLAGS.benchmark_small_max_yaw)
  synthetic_sets.parse_yaw_distribution(FLAGS.benchmark_train_yaw)
  return synthetic_sets.SetSpec(
      model=FLAGS.bfm, seed=FLAGS.benchmark_seed,
      image_size=FLAGS.benchmark_image_size,
      train_images=FLAGS.benchmark_train_images,
      test_images=FLAGS.benchmark_test_images,
      train_yaw=FLAGS.benchmark_train_yaw,
      small_max_yaw=float(FLAGS.benchmark_small_max_yaw), large_yaw=large,
      faces=resolve_faces())


@dataclasses.dataclass
class Run:
  """One coarse/train.py run."""
  name: str
  sam_config: str
  steps: int
  learning_rate: float
  log_dir: str
  sam_reduce: str = 'sum'  # irrelevant without SAM
  init_checkpoint: str = None
  vgg_weights: str = None
  # coarse/train.py --lr_decay_steps / --lr_decay_rate; None: its defaults.
  lr_decay_steps: int = None
  lr_decay_rate: float = None
  # coarse/train.py --coarse_vertex_weight (0: off, the paper's losses).
  vertex_weight: float = 0.0
  wall_s: float = None
  reused: bool = False


def _key(settings):
  text = json.dumps(settings, sort_keys=True)
  return hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]


def plan_runs(sets_folder, spec):
  """The shared pre-training and the compared runs: w/o SAM once, each
  other config once per --benchmark_sam_reduce reduction."""
  runs_root = os.path.join(FLAGS.benchmark_cache_dir, 'runs')
  common = {'sets': spec.key(), 'batch_size': FLAGS.benchmark_batch_size,
            'vgg_width': FLAGS.benchmark_vgg_width,
            'seed': FLAGS.benchmark_seed,
            'contour_landmark_weight': FLAGS.benchmark_contour_landmark_weight}
  pre_settings = dict(common, steps=FLAGS.benchmark_pretrain_steps,
                      lr=FLAGS.benchmark_pretrain_learning_rate,
                      decay=(FLAGS.benchmark_pretrain_lr_decay_steps,
                             FLAGS.benchmark_pretrain_lr_decay_rate),
                      vertex_weight=FLAGS.benchmark_pretrain_vertex_weight,
                      vgg_weights=FLAGS.benchmark_vgg_weights)
  pre_key = _key(pre_settings)
  pretrain = Run('pretrain', 'none', FLAGS.benchmark_pretrain_steps,
                 FLAGS.benchmark_pretrain_learning_rate,
                 os.path.join(runs_root, 'pretrain-' + pre_key),
                 vgg_weights=FLAGS.benchmark_vgg_weights,
                 lr_decay_steps=FLAGS.benchmark_pretrain_lr_decay_steps,
                 lr_decay_rate=FLAGS.benchmark_pretrain_lr_decay_rate,
                 vertex_weight=FLAGS.benchmark_pretrain_vertex_weight)
  del sets_folder
  runs = []
  for config in FLAGS.benchmark_sam_configs:
    reduces = (['sum'] if config == 'none' else
               list(FLAGS.benchmark_sam_reduce))
    for reduce in reduces:
      settings = dict(common, init=pre_key, config=config,
                      steps=FLAGS.benchmark_steps,
                      lr=FLAGS.benchmark_learning_rate)
      name = config
      if config != 'none':
        settings.update(reduce=reduce,
                        render_gradients=FLAGS.benchmark_sam_render_gradients,
                        translation=FLAGS.benchmark_sam_translation)
        name = '%s (%s)' % (config, reduce)
      runs.append(Run(name, config, FLAGS.benchmark_steps,
                      FLAGS.benchmark_learning_rate,
                      os.path.join(runs_root, '%s-%s' % (config,
                                                         _key(settings))),
                      sam_reduce=reduce, init_checkpoint=pretrain.log_dir))
  return pretrain, runs


def train_command(run, data):
  """argv of the coarse/train.py subprocess of `run`."""
  argv = [
      sys.executable, TRAIN_SCRIPT,
      '--data=' + data,
      '--bfm=' + FLAGS.bfm,
      '--sam_config=' + run.sam_config,
      '--steps=%d' % run.steps,
      '--batch_size=%d' % FLAGS.benchmark_batch_size,
      '--image_size=%d' % FLAGS.benchmark_image_size,
      '--vgg_width=%r' % FLAGS.benchmark_vgg_width,
      '--learning_rate=%r' % run.learning_rate,
      '--seed=%d' % FLAGS.benchmark_seed,
      '--sam_reduce=' + run.sam_reduce,
      '--%ssam_render_gradients' % (
          '' if FLAGS.benchmark_sam_render_gradients else 'no'),
      '--sam_translation=' + FLAGS.benchmark_sam_translation,
      '--coarse_contour_landmark_weight=%r' %
      FLAGS.benchmark_contour_landmark_weight,
      '--log_dir=' + run.log_dir,
      '--log_every=%d' % max(1, run.steps // 10),
      '--save_every=%d' % max(1, run.steps),
      '--image_every=%d' % max(1, run.steps),
  ]
  if run.lr_decay_steps is not None:
    argv.append('--lr_decay_steps=%d' % run.lr_decay_steps)
  if run.lr_decay_rate is not None:
    argv.append('--lr_decay_rate=%r' % run.lr_decay_rate)
  if run.vertex_weight:
    argv.append('--coarse_vertex_weight=%r' % run.vertex_weight)
  if run.init_checkpoint:
    argv.append('--init_checkpoint=' + run.init_checkpoint)
  if run.vgg_weights:
    argv.append('--vgg_weights=' + run.vgg_weights)
  else:
    argv.append('--coarse_id_weight=0')  # no weights: Eq. 17 is off (see shortcuts)
  return argv


TIMING_FILE = 'benchmark_timing.json'


def _init_stamp(run):
  """Identifies the training run that `run` starts from (None: no init).

  The modification time of the init run's timing record, written when that
  run finished: a reused run must have started from this very training, not
  from an earlier one of the same settings (retrained after a code change).
  """
  if not run.init_checkpoint:
    return None
  path = os.path.join(run.init_checkpoint, TIMING_FILE)
  return os.path.getmtime(path) if os.path.exists(path) else None


def train(run, data, log=print):
  """Runs coarse/train.py for `run` (or reuses it); sets run.wall_s."""
  timing_path = os.path.join(run.log_dir, TIMING_FILE)
  init = _init_stamp(run)
  if FLAGS.benchmark_reuse_runs and os.path.exists(timing_path):
    with open(timing_path) as f:
      record = json.load(f)
    if record.get('init_stamp') == init:
      run.wall_s = record['wall_s']
      run.reused = True
      log('[%s] reusing %s (trained in %.0f s)' % (run.name, run.log_dir,
                                                   run.wall_s))
      return
    log('[%s] not reusing %s: it started from another training of %s' %
        (run.name, run.log_dir, run.init_checkpoint))
  if os.path.exists(run.log_dir):
    shutil.rmtree(run.log_dir)
  os.makedirs(run.log_dir)
  argv = train_command(run, data)
  log_path = os.path.join(run.log_dir, 'train.log')
  log('[%s] %s' % (run.name, ' '.join(argv[1:])))
  start = time.time()
  with open(log_path, 'w') as out:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    for line in proc.stdout:
      out.write(line)
      if 'train.py' in line and (' step ' in line or 'Error' in line):
        log('[%s] %s' % (run.name, line.split('] ', 1)[-1].rstrip()[:160]))
    code = proc.wait()
  run.wall_s = time.time() - start
  if code != 0:
    with open(log_path) as f:
      tail = f.read()[-3000:]
    raise RuntimeError('coarse/train.py failed for the %s run (exit %d); log %s'
                       ' ends:\n%s' % (run.name, code, log_path, tail))
  with open(timing_path, 'w') as f:
    json.dump({'wall_s': run.wall_s, 'argv': argv[1:], 'init_stamp': init},
              f, indent=1)
  log('[%s] trained %d steps in %.0f s' % (run.name, run.steps, run.wall_s))


def evaluate(model, test_sets, net):
  """{split: aggregate} of one network (or None = the mean face), scored with
  one network pass per image (synthetic_scoring.SCORING)."""
  from eval import synthetic_scoring
  out = {}
  for split, data in test_sets.items():
    if net is None:
      pred = synthetic_scoring.mean_face_vertices(model, len(data['images']))
    else:
      pred = synthetic_scoring.predict_vertices(
          model, net, data['images'], FLAGS.benchmark_eval_batch_size)
    aggregate, per_image = synthetic_scoring.score(
        model, data, pred, FLAGS.benchmark_nme_variant)
    aggregate['per_image_mean'] = [float(v) for v in per_image]
    aggregate['yaw_deg'] = [float(v) for v in data['yaw_deg']]
    out[split] = aggregate
  return out


def run_benchmark(argv0='eval/synthetic_benchmark.py', log=print):
  """The whole benchmark with the current FLAGS.

  Returns:
    {reduction: result dict} for every --benchmark_sam_reduce reduction, in
    order: each with the w/o SAM row, that reduction's SAM rows and the
    shared references, all from the same sets, pre-training and seeds.
  """
  import bfm
  from coarse import coarse_model
  from eval import synthetic_report
  from eval import synthetic_scoring
  from eval import synthetic_sets

  resolve_model()
  check_settings()
  total_start = time.time()
  spec = set_spec()
  model = bfm.load(FLAGS.bfm)
  start = time.time()
  folder = synthetic_sets.ensure_sets(model, spec, FLAGS.benchmark_cache_dir,
                                      log)
  sets_wall = time.time() - start
  train_yaw = synthetic_sets.load_train_yaw(folder)
  histogram = synthetic_sets.format_histogram(train_yaw)
  log('Training set: %d images, yaw distribution %r:\n%s' %
      (len(train_yaw), FLAGS.benchmark_train_yaw, histogram))
  ranges = synthetic_sets.test_yaw_ranges(spec)
  test_sets = {s: synthetic_sets.load_test_set(folder, s)
               for s in synthetic_sets.SPLITS}
  for s in synthetic_sets.SPLITS:
    log('Test set %s: %d images, |yaw| uniform in [%g, %g) deg' %
        (s, len(test_sets[s]['images']), ranges[s][0], ranges[s][1]))

  data = synthetic_sets.train_data(folder)
  pretrain, runs = plan_runs(folder, spec)
  if pretrain.steps:
    train(pretrain, data, log)
  else:
    pretrain.wall_s = 0.0
  for run in runs:
    if not pretrain.steps:
      run.init_checkpoint = None
    train(run, data, log)

  rows, references = [], []
  log('Evaluating the mean face')
  references.append({'label': 'mean face (all coefficients 0, no network)',
                     'splits': evaluate(model, test_sets, None)})
  if pretrain.steps:
    log('Evaluating the shared pre-trained network')
    net = coarse_model.load(pretrain.log_dir, model)
    references.append({
        'label': 'shared pre-trained network (%d no-SAM steps%s; start of '
                 'every row)' % (pretrain.steps, (
                     ', supervised vertex loss weight %g' %
                     pretrain.vertex_weight) if pretrain.vertex_weight else
                                 ''),
        'splits': evaluate(model, test_sets, net),
        'train_wall_s': pretrain.wall_s, 'reused': pretrain.reused,
        'log_dir': pretrain.log_dir})
  for run in runs:
    log('Evaluating %s' % run.name)
    net = coarse_model.load(run.log_dir, model)
    rows.append({'config': run.sam_config,
                 'sam_reduce': None if run.sam_config == 'none' else
                               run.sam_reduce,
                 'label': synthetic_report.row_label(run.sam_config),
                 'splits': evaluate(model, test_sets, net),
                 'train_wall_s': run.wall_s, 'reused': run.reused,
                 'steps': run.steps, 'log_dir': run.log_dir})

  settings = {}
  for name in benchmark_flags.names():
    value = FLAGS[name].value
    settings[name] = list(value) if isinstance(value, tuple) else value
  # What was used, whichever way it was chosen (--bfm given or not,
  # --benchmark_faces=auto).
  settings['benchmark_model'] = FLAGS.bfm
  settings['benchmark_faces_used'] = spec.faces
  sets_record = synthetic_sets.load_settings(folder)
  common = {
      'benchmark': 'synthetic_full_pose',
      'command': ' '.join(['python', argv0] + sys.argv[1:]),
      'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
      'git_commit': provenance.git_commit(),
      'cpu_count': os.cpu_count(),
      'protocol': 'nme_' + FLAGS.benchmark_nme_variant,
      'scoring': synthetic_scoring.SCORING,
      'settings': settings,
      'paper_settings': {k: v[0] for k, v in PAPER_SCALE.items()},
      'shortcuts': shortcuts(),
      'sets_folder': folder,
      'test_yaw_ranges': ranges,
      'splits': list(synthetic_sets.SPLITS),
      'train_yaw_histogram': synthetic_sets.yaw_histogram(train_yaw),
      'train_yaw_histogram_text': histogram,
      'skins': sets_record.get('skins'),
      'references': references,
      'wall_s': {'sets': sets_wall, 'total': time.time() - total_start},
  }
  out = {}
  for reduce in FLAGS.benchmark_sam_reduce:
    out[reduce] = dict(common, sam_reduce=reduce, rows=[
        r for r in rows if r['sam_reduce'] in (None, reduce)])
  return out


def result_name(base, reduce, index):
  """File base name of a reduction's result: `base` for the first listed
  reduction, `base`_sam_<reduce> for the others."""
  return base if index == 0 else '%s_sam_%s' % (base, reduce)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  if FLAGS.paper_scale:
    apply_paper_scale()
  from eval import synthetic_report
  results = run_benchmark()
  folder = FLAGS.benchmark_results_dir
  if not os.path.isabs(folder):
    folder = os.path.join(REPO_ROOT, folder)
  for index, (reduce, result) in enumerate(results.items()):
    text = synthetic_report.markdown(result)
    print('\n' + text)
    paths = synthetic_report.write(
        result, folder, result_name(FLAGS.benchmark_name, reduce, index))
    print('Wrote %s and %s' % paths)


if __name__ == '__main__':
  app.run(main)
