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

Reliability: --out is created and checked for writing before anything is
fitted (exit 2 with one line otherwise). Each face is claimed (a lock in
--out) before it is detected and fitted: a face whose outputs already exist
is refused unless --overwrite, a face another run is writing is refused,
and its files are written atomically with a completion marker last
(reconstruct/outputs.py). A face is reported as reconstructed only once its
marker is in place. Ctrl-C (or SIGTERM) stops the run: nothing half-written
is left, and the summary lists what was completed (exit 130).
"""

import os
import signal
import sys
import tempfile
import time

try:  # Ctrl-C while TensorFlow loads: one line, no traceback
  from absl import app
  from absl import flags

  from flags import reconstruct_flags
except KeyboardInterrupt:
  print('Interrupted while starting; nothing was written.', file=sys.stderr)
  sys.exit(130)
except ImportError as e:  # e.g. renderer/camera.py: the install command
  print('reconstruct: %s' % e, file=sys.stderr)
  sys.exit(2)

reconstruct_flags.define_flags()
flags.adopt_module_key_flags(reconstruct_flags)  # listed by --helpshort
FLAGS = flags.FLAGS

PIPELINE_FLAGS = ('image_size', 'fit', 'coarse_checkpoint', 'detail_checkpoint',
                  'fit_uv_size', 'fit_displacement_scale_mm', 'fit_steps',
                  'fit_photo_weight', 'fit_objective', 'fit_detail_steps',
                  'fit_detail_learning_rate', 'fit_detail_tolerance',
                  'landmarks', 'landmark_model')
EXIT_NOTHING_RECONSTRUCTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
BENCHMARK_BATCH_SIZES = (1, 16)


def _say(message):
  print(message, flush=True)


def _warn(message):
  print(message, file=sys.stderr, flush=True)


class Interrupted(Exception):
  """Ctrl-C during `process`; carries what was done and failed so far."""

  def __init__(self, done, failed):
    super().__init__('interrupted')
    self.done = done
    self.failed = failed


# --- Inputs -------------------------------------------------------------------
def check_output_folder(out_dir):
  """Creates out_dir and checks a file can be created there.

  Returns None, or a one-line reason naming the folder when it cannot be
  used (it is a file, a parent is a file, it is read-only, ...).
  """
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    return '--out=%s: is a file, not a folder' % out_dir
  try:
    os.makedirs(out_dir, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix='.write_check_', dir=out_dir)
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    return '--out=%s: cannot write there (%s)' % (
        out_dir, e.strerror or e)
  return None


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
  # FacePipeline's settings that have a flag of the same name.
  same_name = {name: getattr(FLAGS, name) for name in PIPELINE_FLAGS}
  return pipeline_lib.FacePipeline(
      model, yaw_threshold_deg=FLAGS.large_pose_yaw_threshold_deg,
      **same_name)


# --- Running ------------------------------------------------------------------
def process(pipeline, photos, out_dir, batch_size, progress=None, quiet=False,
            timings=None, overwrite=False, run_id=None):
  """Reconstructs `photos` [(path, name)] into out_dir in batches.

  Each face is claimed (outputs.claim) before its detection: faces whose
  outputs exist (unless `overwrite`) or that another run is writing are
  failed without being fitted.

  Returns (list of (name, path) reconstructed, list of (path, reason) failed).
  `timings` (dict) accumulates seconds of 'detection', 'coarse', 'detail',
  'writing'.
  Raises:
    Interrupted: on KeyboardInterrupt, with the lists so far (no face is
      left half-written; held locks are released).
  """
  from reconstruct import outputs  # pylint: disable=g-import-not-at-top
  from reconstruct import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  timings = {} if timings is None else timings
  if run_id is None:
    run_id = new_run_id()
  os.makedirs(out_dir, exist_ok=True)
  done, failed = [], []
  pending = []
  locks = {}
  light = pipeline_lib.shading_lighting(1)
  mode = 'fit' if pipeline.fit else 'checkpoint'

  def unlock(name):
    lock = locks.pop(name, None)
    if lock is not None:
      lock.release()

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
        unlock(face.name)
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
                                        FLAGS.texture_size, light,
                                        run_id=run_id)
      except Exception as e:  # pylint: disable=broad-except (reported)
        failed.append((face.path, '%s: could not write the outputs, nothing '
                       'written (%s: %s)' % (face.path, type(e).__name__, e)))
        tick(face.name)
        continue
      finally:
        unlock(face.name)
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

  try:
    for path, name in photos:
      t0 = time.time()
      try:
        locks[name] = outputs.claim(out_dir, name, overwrite)
        pending.append(pipeline.prepare(path, name))
      except outputs.OutputCollision as e:
        failed.append((path, '%s: %s' % (path, e)))
        tick(name)
      except pipeline_lib.InputError as e:
        unlock(name)
        failed.append((path, str(e)))
        tick(name)
      except Exception as e:  # pylint: disable=broad-except
        unlock(name)
        failed.append((path, '%s: %s: %s' % (path, type(e).__name__, e)))
        tick(name)
      timings['detection'] = timings.get('detection', 0.0) + time.time() - t0
      if len(pending) >= batch_size:
        flush()
    flush()
  except KeyboardInterrupt:
    raise Interrupted(done, failed)  # pylint: disable=raise-missing-from
  finally:
    for name in list(locks):
      unlock(name)
  return done, failed


def new_run_id():
  """An id naming this run in the completion markers."""
  return '%s-pid%d-%s' % (time.strftime('%Y%m%dT%H%M%S'), os.getpid(),
                          os.urandom(3).hex())


def summary(done, failed, out_dir, problems, not_reached=0):
  """Prints the end-of-run summary; returns the exit status.

  not_reached: photos an interruption left unprocessed (exit 130 then).
  """
  failed = list(problems) + list(failed)
  total = len(done) + len(failed) + not_reached
  _say('Summary: reconstructed %d of %d input%s into %s.' %
       (len(done), total, '' if total == 1 else 's', out_dir))
  if not_reached:
    _warn('Interrupted: %d input%s not processed (nothing half-written is '
          'left).' % (not_reached, '' if not_reached == 1 else 's'))
    return EXIT_INTERRUPTED
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
      process(pipeline, images, tmp, batch, quiet=True, overwrite=True)
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
                             timings=timings, overwrite=True)
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
  # Steady state: the largest batch size's wall time per photo (TensorFlow
  # start-up, model loading and tracing are in the warm-up, not here).
  batch, n, _, wall = rows[-1]
  _say('seconds_per_photo: %.3f' % (wall / n))
  return rows


def _device():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_physical_devices('GPU')
  return 'GPU: %s' % gpus[0].name if gpus else 'CPU'


def _raise_keyboard_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt()


def main(argv):
  signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # as Ctrl-C
  try:
    return _main(argv)
  except KeyboardInterrupt:  # before or between the photos
    _warn('Interrupted before any photo was processed.')
    return EXIT_INTERRUPTED


def _main(argv):
  inputs = argv[1:]
  if not inputs:
    _warn('reconstruct: give one or more photos or folders, e.g. '
          '`reconstruct photo.jpg --fit` (see --help).')
    return EXIT_USAGE
  if FLAGS.batch_size < 1:
    _warn('reconstruct: --batch_size must be >= 1, got %d' % FLAGS.batch_size)
    return EXIT_USAGE
  if FLAGS.texture_size < 1:
    _warn('reconstruct: --texture_size must be >= 1, got %d' %
          FLAGS.texture_size)
    return EXIT_USAGE
  extensions = tuple(e.lower() if e.startswith('.') else '.' + e.lower()
                     for e in FLAGS.extensions)
  photos, problems, any_folder = collect_inputs(inputs, extensions)
  for _, reason in problems:
    _warn(reason)
  if not photos:
    return summary([], [], FLAGS.out, problems)
  if not FLAGS.benchmark:
    reason = check_output_folder(FLAGS.out)
    if reason:
      _warn('reconstruct: ' + reason)
      return EXIT_USAGE
  try:
    pipeline = build_pipeline()
  except (ValueError, FileNotFoundError) as e:
    _warn(str(e))
    return EXIT_USAGE
  except KeyboardInterrupt:
    return summary([], [], FLAGS.out, problems, not_reached=len(photos))
  for line in pipeline.describe():
    _say(line)
  _say('device: %s' % _device())
  if FLAGS.benchmark:
    benchmark(pipeline, photos)
    return 0
  progress = ProgressBar(len(photos), any_folder or len(photos) > 1)
  try:
    done, failed = process(pipeline, photos, FLAGS.out, FLAGS.batch_size,
                           progress, overwrite=FLAGS.overwrite)
  except Interrupted as e:
    if progress.tty:
      sys.stderr.write('\n')
    return summary(e.done, e.failed, FLAGS.out, problems,
                   not_reached=len(photos) - len(e.done) - len(e.failed))
  return summary(done, failed, FLAGS.out, problems)


def run():
  """Console entry point `reconstruct` (setup.py)."""
  app.run(main)


if __name__ == '__main__':
  run()
