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
marker is in place. Ctrl-C (or SIGTERM) stops the run once the batch being
fitted is written (a second one stops at once): nothing half-written is
left, and the summary lists what was completed (exit 130).

Large folders: the photos are checked, read, detected and cropped by a
tf.data pipeline (PreparedFaces: --input_workers at once, in input order,
the next batch prepared while the current one is fitted). --shard=I/N
takes every N-th photo of the input list from the I-th, so that N machines
split one folder without overlap and write the files one run would;
--resume skips faces whose outputs are complete (outputs.complete_marker),
so a stopped run, or a shard, is finished by running it again.
"""

import collections
import contextlib
import os
import signal
import sys
import tempfile
import threading
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
                  'fit_photo_weight', 'fit_objective',
                  'fit_silhouette_yaw_deg', 'fit_detail_steps',
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
  """Ctrl-C during `process`; carries what was done, failed and skipped so
  far."""

  def __init__(self, done, failed, skipped=()):
    super().__init__('interrupted')
    self.done = done
    self.failed = failed
    self.skipped = list(skipped)


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


def parse_shard(text):
  """(index, count) of a --shard value 'I/N' with 0 <= I < N.

  Raises:
    ValueError: anything else; the message names the flag and the value.
  """
  parts = str(text).split('/')
  try:
    index, count = (int(p) for p in parts)  # ValueError unless two ints
    if count < 1 or not 0 <= index < count:
      raise ValueError()
  except ValueError:
    raise ValueError('--shard must be I/N with 0 <= I < N (e.g. --shard=0/4 '
                     'for the first of 4 machines), got %r' % (text,)
                    ) from None
  return index, count


def shard_inputs(photos, index, count):
  """The photos of shard `index` of `count`: those at positions index,
  index + count, ... of `photos` (the collect_inputs list, names kept)."""
  return photos[index::count]


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


# --- The input pipeline -------------------------------------------------------
Prepared = collections.namedtuple('Prepared',
                                  ['path', 'name', 'face', 'skipped', 'reason'])
Prepared.__doc__ = """What the input pipeline made of one photo.

  path, name: the photo and its output name.
  face: the pipeline's PreparedFace, or None.
  skipped: the outputs are complete and --resume skips them (face None).
  reason: why the photo failed (face None), or ''.
"""


class PreparedFaces:
  """The photos, prepared ahead of the fit by a tf.data pipeline.

  Iterating gives one `Prepared` per photo, in the order of `photos`. A
  tf.data map with `workers` parallel calls (tf.numpy_function) does, per
  photo: check the face in out_dir (outputs.claim, released at once: a face
  whose outputs exist, unless `overwrite`, that another run is writing, or,
  with `resume`, whose outputs are complete, is never read), read and decode
  the photo, detect the face and its landmarks (one photo at a time: the
  detectors are not thread-safe), crop. Deterministic order, and up to
  `prefetch` prepared photos buffered, so that the next batch is ready when
  a fit ends. The caller claims each face again, and keeps the lock, before
  it fits it (process()). The PreparedFaces stay Python objects (kept here
  by photo index; the dataset carries the index): their fields depend on
  the landmark source.

  An iteration that ends, also by an exception in the caller's loop,
  deletes its dataset iterator, which waits for the photos in flight.

  Args:
    pipeline: reconstruct.pipeline.FacePipeline (prepare()).
    photos: [(path, output name)].
    out_dir: the output folder (exists).
    overwrite, resume: outputs.claim's overwrite and skip_complete.
    workers: parallel calls of the map (>= 1).
    prefetch: prepared photos buffered after the map (>= 1).
    timings: dict; 'detection' accumulates seconds spent preparing (summed
      over the workers, so it overlaps the other stages).
  """

  def __init__(self, pipeline, photos, out_dir, overwrite=False, resume=False,
               workers=2, prefetch=1, timings=None):
    self.pipeline = pipeline
    self.photos = list(photos)
    self.out_dir = out_dir
    self.overwrite = bool(overwrite)
    self.resume = bool(resume)
    self.workers = max(int(workers), 1)
    self.prefetch = max(int(prefetch), 1)
    self.timings = {} if timings is None else timings
    self._mutex = threading.Lock()
    self._results = {}  # photo index -> Prepared

  def _prepare(self, index):
    """The map's work for photo `index` (a worker thread); returns index."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    from reconstruct import outputs  # pylint: disable=g-import-not-at-top
    from reconstruct import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
    index = int(index)
    path, name = self.photos[index]
    t0 = time.time()
    try:
      outputs.claim(self.out_dir, name, self.overwrite, self.resume).release()
      result = Prepared(path, name, self.pipeline.prepare(path, name), False,
                        '')
    except outputs.AlreadyComplete:
      result = Prepared(path, name, None, True, '')
    except outputs.OutputCollision as e:
      result = Prepared(path, name, None, False, '%s: %s' % (path, e))
    except pipeline_lib.InputError as e:
      result = Prepared(path, name, None, False, str(e))
    except Exception as e:  # pylint: disable=broad-except (reported)
      result = Prepared(path, name, None, False,
                        '%s: %s: %s' % (path, type(e).__name__, e))
    with self._mutex:
      self._results[index] = result
      self.timings['detection'] = (self.timings.get('detection', 0.0) +
                                   time.time() - t0)
    return np.int64(index)

  def dataset(self):
    """tf.data.Dataset of photo indices, each after its photo's work."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    indices = tf.data.Dataset.range(len(self.photos))
    prepared = indices.map(
        lambda i: tf.numpy_function(self._prepare, [i], tf.int64,
                                    stateful=True),
        num_parallel_calls=self.workers, deterministic=True)
    options = tf.data.Options()
    # tf.data's own pool has one thread per core: `workers` photos may wait
    # on their files, so it gets a thread for each (and one to prefetch).
    options.threading.private_threadpool_size = self.workers + 1
    return prepared.prefetch(self.prefetch).with_options(options)

  def __iter__(self):
    iterator = iter(self.dataset())
    try:
      for index in iterator:
        with self._mutex:
          result = self._results.pop(int(index))
        yield result
    finally:
      del iterator  # waits for the photos in flight


# --- Running ------------------------------------------------------------------
@contextlib.contextmanager
def _interrupts_between_batches():
  """Holds back Ctrl-C and SIGTERM while the block runs TensorFlow.

  A KeyboardInterrupt raised while TensorFlow's eager code calls back into
  Python can crash the process (seen: a segmentation fault in
  convert_to_eager_tensor), so the first signal is only noted, with one
  line on stderr, and the block raises KeyboardInterrupt where it is safe
  (between batches: `stop_requested()`); a second one raises at once.
  Yields `stop_requested`, a function; outside the main thread signals are
  not ours and it always returns False.
  """
  if threading.current_thread() is not threading.main_thread():
    yield lambda: False
    return
  received = []

  def note(signum, frame):
    del frame
    if received:
      raise KeyboardInterrupt()
    received.append(signum)
    try:  # os.write: no buffered stream the interrupted code may be using
      os.write(sys.stderr.fileno(), (
          '\nInterrupted: finishing the faces being fitted, then stopping '
          '(Ctrl-C again to stop at once).\n').encode())
    except (OSError, ValueError, AttributeError):  # stderr is not a file
      pass

  held = (signal.SIGINT, signal.SIGTERM)
  previous = [signal.signal(s, note) for s in held]
  try:
    yield lambda: bool(received)
  finally:
    for s, handler in zip(held, previous):
      signal.signal(s, handler)


def process(pipeline, photos, out_dir, batch_size, progress=None, quiet=False,
            timings=None, overwrite=False, run_id=None, resume=False,
            input_workers=2):
  """Reconstructs `photos` [(path, name)] into out_dir in batches.

  The photos are prepared ahead of the fit by PreparedFaces (a tf.data
  pipeline, `input_workers` at once), which checks each face in out_dir
  before it reads the photo; each face is then claimed (outputs.claim, the
  lock kept until its files are written) before it is fitted. Faces whose
  outputs exist (unless `overwrite`) or that another run is writing are
  failed without being fitted; with `resume`, faces whose outputs are
  complete are skipped.

  Returns (list of (name, path) reconstructed, list of (path, reason)
  failed, list of (name, path) skipped as complete).
  `timings` (dict) accumulates seconds of 'detection' (summed over the input
  workers, overlapping the rest), 'coarse', 'detail', 'writing'.
  Raises:
    Interrupted: on Ctrl-C or SIGTERM, with the lists so far: the batch
      being fitted is finished and written first (a second signal stops at
      once); no face is left half-written; held locks are released.
  """
  from reconstruct import outputs  # pylint: disable=g-import-not-at-top
  from reconstruct import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  timings = {} if timings is None else timings
  if run_id is None:
    run_id = new_run_id()
  os.makedirs(out_dir, exist_ok=True)
  done, failed, skipped = [], [], []
  pending = []
  light = pipeline_lib.shading_lighting(1)
  mode = 'fit' if pipeline.fit else 'checkpoint'
  locks = {}

  def unlock(name):
    lock = locks.pop(name, None)
    if lock is not None:
      lock.release()

  def tick(label):
    if progress is not None:
      progress.update(len(done) + len(failed) + len(skipped), len(failed),
                      label)

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

  def claim(item):
    """Locks a prepared face for its fit; False (reported) when refused."""
    try:
      locks[item.name] = outputs.claim(out_dir, item.name, overwrite, resume)
      return True
    except outputs.AlreadyComplete:  # completed since it was checked
      skipped.append((item.name, item.path))
    except outputs.OutputCollision as e:
      failed.append((item.path, '%s: %s' % (item.path, e)))
    except Exception as e:  # pylint: disable=broad-except (reported)
      failed.append((item.path, '%s: %s: %s' % (item.path,
                                                type(e).__name__, e)))
    tick(item.name)
    return False

  inputs = PreparedFaces(pipeline, photos, out_dir, overwrite, resume,
                         input_workers, batch_size, timings)
  try:
    with _interrupts_between_batches() as stop_requested:
      for item in inputs:
        if stop_requested():
          raise KeyboardInterrupt()
        if item.face is not None:
          if claim(item):
            pending.append(item.face)
        elif item.skipped:
          skipped.append((item.name, item.path))
          tick(item.name)
        else:
          failed.append((item.path, item.reason))
          tick(item.name)
        if len(pending) >= batch_size:
          flush()
      if not stop_requested():
        flush()
      if stop_requested():
        raise KeyboardInterrupt()
  except KeyboardInterrupt:
    raise Interrupted(done, failed, skipped)  # pylint: disable=raise-missing-from
  finally:
    for name in list(locks):
      unlock(name)
  return done, failed, skipped


def new_run_id():
  """An id naming this run in the completion markers."""
  return '%s-pid%d-%s' % (time.strftime('%Y%m%dT%H%M%S'), os.getpid(),
                          os.urandom(3).hex())


def summary(done, failed, out_dir, problems, not_reached=0, skipped=()):
  """Prints the end-of-run summary; returns the exit status.

  not_reached: photos an interruption left unprocessed (exit 130 then).
  skipped: faces --resume skipped as complete; they count as success for the
    exit status (a rerun of a finished run exits 0).
  """
  failed = list(problems) + list(failed)
  total = len(done) + len(failed) + len(skipped) + not_reached
  _say('Summary: reconstructed %d of %d input%s into %s%s.' %
       (len(done), total, '' if total == 1 else 's', out_dir,
        '; %d already complete there, skipped (--resume)' % len(skipped)
        if skipped else ''))
  if not_reached:
    _warn('Interrupted: %d input%s not processed (nothing half-written is '
          'left).' % (not_reached, '' if not_reached == 1 else 's'))
    return EXIT_INTERRUPTED
  if failed:
    _warn('Failed (%d):' % len(failed))
    for _, reason in failed:
      _warn('  ' + reason)
  if not done and not skipped:
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
      process(pipeline, images, tmp, batch, quiet=True, overwrite=True,
              input_workers=FLAGS.input_workers)
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
      done, failed, _ = process(pipeline, cycled, tmp, batch, quiet=True,
                                timings=timings, overwrite=True,
                                input_workers=FLAGS.input_workers)
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
  if FLAGS.input_workers < 1:
    _warn('reconstruct: --input_workers must be >= 1, got %d' %
          FLAGS.input_workers)
    return EXIT_USAGE
  shard = None
  if FLAGS.shard is not None:
    try:
      shard = parse_shard(FLAGS.shard)
    except ValueError as e:
      _warn('reconstruct: %s' % e)
      return EXIT_USAGE
  extensions = tuple(e.lower() if e.startswith('.') else '.' + e.lower()
                     for e in FLAGS.extensions)
  photos, problems, any_folder = collect_inputs(inputs, extensions)
  for _, reason in problems:
    _warn(reason)
  if not photos:
    return summary([], [], FLAGS.out, problems)
  if shard is not None:
    all_photos = len(photos)
    photos = shard_inputs(photos, *shard)
    _say('--shard=%d/%d: %d of %d input photos (positions %d, %d, ... of '
         'the input list)' % (shard + (len(photos), all_photos, shard[0],
                                       shard[0] + shard[1])))
    if not photos:
      _say('Nothing to do in this shard.')
      return 0
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
    done, failed, skipped = process(
        pipeline, photos, FLAGS.out, FLAGS.batch_size, progress,
        overwrite=FLAGS.overwrite, resume=FLAGS.resume,
        input_workers=FLAGS.input_workers)
  except Interrupted as e:
    if progress.tty:
      sys.stderr.write('\n')
    return summary(e.done, e.failed, FLAGS.out, problems,
                   not_reached=len(photos) - len(e.done) - len(e.failed) -
                   len(e.skipped), skipped=e.skipped)
  return summary(done, failed, FLAGS.out, problems, skipped=skipped)


def run():
  """Console entry point `reconstruct` (setup.py)."""
  app.run(main)


if __name__ == '__main__':
  run()
