r"""reconstruct: photos in, coarse and detailed meshes, maps and pictures out.

  reconstruct photo.jpg --fit                       # no checkpoints needed
  reconstruct a.jpg b.png folder/ --coarse_checkpoint=results/coarse \
      --detail_checkpoint=results/detail            # trained networks
  python -m reconstruct folder/ --fit --batch_size=4 --out=out/
  python -m reconstruct folder/ --fit --benchmark

For every photo: dlib finds the largest face and its 68 landmarks
(preprocess/dlib_landmarks.py), the face is cropped, the coarse stage gives the
morphable-model coefficients (coarse network, or --fit), faces whose
estimated |yaw| exceeds --large_pose_yaw_threshold_deg take the large-pose
path (symmetric UV padding, the large-pose RI2ITN), the detail stage gives a
displacement map (RI2ITN, or --fit), and reconstruct/outputs.py
writes the files listed there. Photos that cannot be used are reported and
skipped; the exit status is non-zero only when nothing was reconstructed.
Runs on the CPU unless TensorFlow sees a GPU.
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

from flags import reconstruct_flags

reconstruct_flags.define_flags()
flags.adopt_module_key_flags(reconstruct_flags)  # listed by --helpshort
FLAGS = flags.FLAGS

EXIT_NOTHING_RECONSTRUCTED = 1
EXIT_USAGE = 2
BENCHMARK_BATCH_SIZES = (1, 16)


def _say(message):
  print(message, flush=True)


def _warn(message):
  print(message, file=sys.stderr, flush=True)


# --- Inputs -------------------------------------------------------------------
def collect_inputs(paths, extensions):
  """Expands the positional inputs into photos.

  Args:
    paths: files and/or folders (every matching file directly inside).
    extensions: lower-case extensions with the dot, for folders.
  Returns:
    (list of (photo path, output name), list of (path, reason) problems,
    whether any input was a folder).
  """
  photos = []
  problems = []
  any_folder = False
  for path in paths:
    if os.path.isdir(path):
      any_folder = True
      found = sorted(
          os.path.join(path, f) for f in os.listdir(path)
          if os.path.splitext(f)[1].lower() in extensions and
          os.path.isfile(os.path.join(path, f)))
      if not found:
        problems.append((path, '%s: folder holds no images (looked for %s)' %
                         (path, ' '.join(extensions))))
      photos.extend(found)
    elif os.path.isfile(path):
      photos.append(path)
    else:
      problems.append((path, '%s: no such file or folder' % path))
  stems = [os.path.splitext(os.path.basename(p))[0] for p in photos]
  named = []
  for photo, stem in zip(photos, stems):
    name = stem
    if stems.count(stem) > 1:  # same file name in two folders
      parent = os.path.basename(os.path.dirname(os.path.abspath(photo)))
      name = '%s_%s' % (parent, stem)
      k = 2
      while name in [n for _, n in named]:
        name = '%s_%s_%d' % (parent, stem, k)
        k += 1
    named.append((photo, name))
  return named, problems, any_folder


class ProgressBar:
  """A one-line text progress bar on stderr (a line per step off a TTY)."""

  def __init__(self, total, enabled, width=30):
    self.total = max(int(total), 1)
    self.enabled = enabled
    self.width = width
    self.start = time.time()
    self.tty = sys.stderr.isatty()

  def update(self, done, failed, label):
    if not self.enabled:
      return
    fill = int(self.width * done / self.total)
    elapsed = time.time() - self.start
    eta = elapsed / done * (self.total - done) if done else 0.0
    line = '[%s%s] %d/%d  %d failed  %.0fs elapsed, ETA %.0fs  %s' % (
        '#' * fill, '.' * (self.width - fill), done, self.total, failed,
        elapsed, eta, label)
    if self.tty:
      sys.stderr.write('\r' + line[:150].ljust(150))
      if done >= self.total:
        sys.stderr.write('\n')
    else:
      sys.stderr.write(line + '\n')
    sys.stderr.flush()


# --- Building the pipeline ----------------------------------------------------
def build_pipeline(model=None):
  """FacePipeline from the flags (imports TensorFlow and the stages).

  Args:
    model: a bfm.MorphableModel to use instead of --bfm's.
  """
  import bfm  # pylint: disable=g-import-not-at-top
  from reconstruct import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  if model is None:
    model, line = bfm.resolve_model(
        None if FLAGS.bfm == 'auto' else FLAGS.bfm)
    _say(line)
  return pipeline_lib.FacePipeline(
      model,
      image_size=FLAGS.image_size,
      fit=FLAGS.fit,
      coarse_checkpoint=FLAGS.coarse_checkpoint,
      detail_checkpoint=FLAGS.detail_checkpoint,
      fit_uv_size=FLAGS.fit_uv_size,
      fit_displacement_scale_mm=FLAGS.fit_displacement_scale_mm,
      yaw_threshold_deg=FLAGS.large_pose_yaw_threshold_deg,
      fit_steps=FLAGS.fit_steps,
      fit_photo_weight=FLAGS.fit_photo_weight,
      fit_detail_steps=FLAGS.fit_detail_steps,
      landmarks=FLAGS.landmarks,
      landmark_model=FLAGS.landmark_model)


# --- Running ------------------------------------------------------------------
def process(pipeline, photos, out_dir, batch_size, progress=None, quiet=False,
            timings=None):
  """Reconstructs `photos` [(path, name)] into out_dir in batches.

  Returns (list of (name, path) reconstructed, list of (path, reason) failed).
  `timings` (dict) accumulates seconds of 'detection', 'coarse', 'detail',
  'writing'.
  """
  from reconstruct import outputs  # pylint: disable=g-import-not-at-top
  from reconstruct import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  timings = {} if timings is None else timings
  os.makedirs(out_dir, exist_ok=True)
  done, failed = [], []
  pending = []
  light = pipeline_lib.shading_lighting(1)
  mode = 'fit' if pipeline.fit else 'checkpoint'

  def tick(label):
    if progress is not None:
      progress.update(len(done) + len(failed), len(failed), label)

  def flush():
    if not pending:
      return
    batch = list(pending)
    del pending[:]
    try:
      results = pipeline.reconstruct(batch, timings)
    except Exception as e:  # pylint: disable=broad-except
      for face in batch:
        failed.append((face.path, '%s: reconstruction failed (%s: %s)' %
                       (face.path, type(e).__name__, e)))
        tick(face.name)
      return
    for result in results:
      face = result.prepared
      t0 = time.time()
      try:
        outputs.write_face(out_dir, result, pipeline.model,
                                        pipeline.detail['small'].applier.mesh,
                                        pipeline.uv_size,
                                        pipeline.displacement_scale_mm, mode,
                                        FLAGS.texture_size, light)
      except OSError as e:
        failed.append((face.path, '%s: could not write the outputs (%s)' %
                       (face.path, e)))
        tick(face.name)
        continue
      timings['writing'] = timings.get('writing', 0.0) + time.time() - t0
      done.append((face.name, face.path))
      if not quiet:
        notes = [result.path_note]
        if face.num_faces > 1:
          notes.append('%d faces found, reconstructed the largest' %
                       face.num_faces)
        if face.detector == 'cnn':
          notes.append('found by the CNN detector')
        if face.converted_from:
          notes.append('converted from %s' % face.converted_from)
        _say('%s -> %s: %s' % (face.path, os.path.join(out_dir, face.name),
                               '; '.join(notes)))
      tick(face.name)

  for path, name in photos:
    t0 = time.time()
    try:
      pending.append(pipeline.prepare(path, name))
    except pipeline_lib.InputError as e:
      failed.append((path, str(e)))
      tick(name)
    except Exception as e:  # pylint: disable=broad-except
      failed.append((path, '%s: %s: %s' % (path, type(e).__name__, e)))
      tick(name)
    timings['detection'] = timings.get('detection', 0.0) + time.time() - t0
    if len(pending) >= batch_size:
      flush()
  flush()
  return done, failed


def summary(done, failed, out_dir, problems):
  """Prints the end-of-run summary; returns the exit status."""
  failed = list(problems) + list(failed)
  total = len(done) + len(failed)
  _say('Summary: reconstructed %d of %d input%s into %s.' %
       (len(done), total, '' if total == 1 else 's', out_dir))
  if failed:
    _warn('Failed (%d):' % len(failed))
    for _, reason in failed:
      _warn('  ' + reason)
  if not done:
    _warn('Nothing was reconstructed.')
    return EXIT_NOTHING_RECONSTRUCTED
  return 0


def benchmark(pipeline, photos):
  """Times the stages per image at batch sizes 1 and 16; prints a table."""
  count = max(int(FLAGS.benchmark_images), 1)
  rows = []
  steps = (pipeline.fit_steps, pipeline.fit_detail_steps)

  def warm_up(images, batch):
    """Loads the detector and traces the TensorFlow functions for this batch
    size (a trace does not depend on the number of fit steps: one is run)."""
    pipeline.fit_steps, pipeline.fit_detail_steps = (min(s, 1) for s in steps)
    try:
      process(pipeline, images, tmp, batch, quiet=True)
    finally:
      pipeline.fit_steps, pipeline.fit_detail_steps = steps

  with tempfile.TemporaryDirectory(prefix='reconstruct_benchmark_') as tmp:
    for batch in BENCHMARK_BATCH_SIZES:
      n = max(count, batch)
      cycled = [(photos[i % len(photos)][0], 'b%d_%d' % (batch, i))
                for i in range(n)]
      warm_up(cycled[:batch], batch)
      timings = {}
      t0 = time.time()
      done, failed = process(pipeline, cycled, tmp, batch, quiet=True,
                             timings=timings)
      wall = time.time() - t0
      if not done:
        raise RuntimeError('benchmark: no image could be reconstructed (%s)' %
                           '; '.join(r for _, r in failed[:3]))
      rows.append((batch, len(done), timings, wall))
  _say('Benchmark (%s mode, %s, crop %d px, UV %d, %s):' %
       ('fit' if pipeline.fit else 'checkpoint', pipeline.model.name,
        pipeline.image_size, pipeline.uv_size, _device()))
  _say('  batch  images  detection  coarse  detail  writing  (ms per image)'
       '  images/s')
  for batch, n, t, wall in rows:
    per = [1000.0 * t.get(k, 0.0) / n
           for k in ('detection', 'coarse', 'detail', 'writing')]
    _say('  %5d  %6d  %9.1f  %6.1f  %6.1f  %7.1f  %16s  %8.3f' %
         tuple([batch, n] + per + ['', n / wall]))
  return rows


def _device():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_physical_devices('GPU')
  return 'GPU: %s' % gpus[0].name if gpus else 'CPU'


def main(argv):
  inputs = argv[1:]
  if not inputs:
    _warn('reconstruct: give one or more photos or folders, e.g. '
          '`reconstruct photo.jpg --fit` (see --help).')
    return EXIT_USAGE
  if FLAGS.batch_size < 1:
    _warn('reconstruct: --batch_size must be >= 1, got %d' % FLAGS.batch_size)
    return EXIT_USAGE
  extensions = tuple(e.lower() if e.startswith('.') else '.' + e.lower()
                     for e in FLAGS.extensions)
  photos, problems, any_folder = collect_inputs(inputs, extensions)
  for _, reason in problems:
    _warn(reason)
  if not photos:
    return summary([], [], FLAGS.out, problems)
  try:
    pipeline = build_pipeline()
  except (ValueError, FileNotFoundError) as e:
    _warn(str(e))
    return EXIT_USAGE
  for line in pipeline.describe():
    _say(line)
  _say('device: %s' % _device())
  if FLAGS.benchmark:
    benchmark(pipeline, photos)
    return 0
  progress = ProgressBar(len(photos), any_folder or len(photos) > 1)
  done, failed = process(pipeline, photos, FLAGS.out, FLAGS.batch_size,
                         progress)
  return summary(done, failed, FLAGS.out, problems)


def run():
  """Console entry point `reconstruct` (setup.py)."""
  app.run(main)


if __name__ == '__main__':
  run()
