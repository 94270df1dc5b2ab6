"""reconstruct over a large folder (issue 15): --shard, --resume, tf.data input.

In-process: --shard's parsing and split, outputs.claim's --resume check
(skip_complete) beside --overwrite, and command.PreparedFaces, the tf.data
input pipeline, with a stand-in FacePipeline whose prepare() sleeps (order,
parallelism, refusals and skipping before a photo is read, failures, an
early stop).

As a user runs it (`python -m reconstruct`, tiny settings as in
test_reconstruct_reliability.py, batch size 1): three synthetic renders and
a photo without a face, reconstructed by one run and by --shard=0/2 and
--shard=1/2 started together into another folder: the same files with the
same contents (every file's SHA-256 in the markers). Then a --resume rerun
after one face's set was deleted and another's altered: the complete face is
skipped untouched, the deleted one is reconstructed again (same contents),
the altered one is refused (no --overwrite).
"""

import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import types

from absl.testing import flagsaver
from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow as tf

import bfm
from preprocess import synthetic_data
from reconstruct import command
from reconstruct import outputs
from reconstruct import pipeline as pipeline_lib
from tests import test_utils

TINY = ['--fit', '--bfm=synthetic', '--landmarks=dlib', '--fit_steps=5',
        '--fit_detail_steps=2', '--fit_uv_size=32', '--texture_size=64',
        '--image_size=128', '--batch_size=1']
TIMEOUT_S = 900
# Renders of the synthetic model (seed 1, |yaw| <= 30 deg) that dlib's HOG
# detector finds.
RENDER_SEED = 1
FACES = ('face_a', 'face_b', 'face_c')
NO_FACE = 'gradient'


def _tempdir(test):
  folder = tempfile.TemporaryDirectory(prefix='test_large_folders_')
  test.addCleanup(folder.cleanup)
  return folder.name


_start = test_utils.start_reconstruct


def _finish(proc):
  out, err = proc.communicate(timeout=TIMEOUT_S)
  return proc.returncode, out, err


def _reported(out, out_dir):
  """Names a run reported as reconstructed ('PHOTO -> OUT/NAME: ...')."""
  prefix = ' -> %s%s' % (out_dir, os.sep)
  return sorted(line.split(prefix, 1)[1].split(':', 1)[0]
                for line in out.splitlines() if prefix in line)


def _file_digests(out_dir, name):
  """{file: SHA-256} of NAME's set as its marker records it (None: none)."""
  marker = outputs.read_marker(out_dir, name, verify=True)
  return marker and {k: v['sha256'] for k, v in marker['files'].items()}


def _held(out_dir, name):
  """Whether face `name`'s lock in out_dir is taken (by another claim)."""
  try:
    outputs.claim(out_dir, name, overwrite=True).release()
  except outputs.OutputCollision:
    return True
  return False


def _mtimes(out_dir, name):
  return {p: os.stat(p).st_mtime_ns for p in
          outputs.existing_outputs(out_dir, name)}


# --- --shard -------------------------------------------------------------------
class ShardTest(test_utils.FlagsTestCase, parameterized.TestCase):

  @parameterized.parameters('0/1', '0/2', '1/2', '3/4', ' 2/3')
  def test_valid_values(self, text):
    index, count = command.parse_shard(text)
    self.assertEqual('%d/%d' % (index, count), text.strip())

  @parameterized.parameters('2/2', '-1/2', '1/0', '1', '1/2/3', 'a/b', '',
                            '0.5/2', None)
  def test_invalid_values_name_the_flag(self, text):
    with self.assertRaisesRegex(ValueError,
                                r'--shard must be I/N with 0 <= I < N.*got'):
      command.parse_shard(text)

  @parameterized.parameters(1, 2, 3, 7, 12)
  def test_shards_split_the_list_without_overlap(self, count):
    photos = [('p%d.jpg' % i, 'name%d' % i) for i in range(10)]
    shards = [command.shard_inputs(photos, i, count) for i in range(count)]
    together = [p for shard in shards for p in shard]
    self.assertCountEqual(together, photos)  # each photo in exactly one
    self.assertLessEqual(max(map(len, shards)) - min(map(len, shards)), 1)
    for i, shard in enumerate(shards):  # input order, names kept
      self.assertEqual(shard, [photos[j] for j in range(i, 10, count)])

  def test_a_bad_value_stops_before_anything_is_read(self):
    folder = _tempdir(self)
    out = os.path.join(folder, 'out')
    Image.new('RGB', (64, 64)).save(os.path.join(folder, 'x.png'))
    err = io.StringIO()
    # batch_size given: in a whole-suite process a training module may have
    # defined --batch_size first, with its own default.
    with flagsaver.flagsaver(shard='2/2', out=out, batch_size=8):
      with contextlib.redirect_stderr(err):
        code = command._main(['reconstruct', folder])  # pylint: disable=protected-access
    self.assertEqual(code, command.EXIT_USAGE)
    self.assertEqual(err.getvalue().strip(),
                     "reconstruct: --shard must be I/N with 0 <= I < N (e.g. "
                     "--shard=0/4 for the first of 4 machines), got '2/2'")
    self.assertFalse(os.path.exists(out))


# --- --resume: outputs.claim(skip_complete=True) ------------------------------
class _Face:
  """The parts of a FaceResult that write_face needs around _write_files."""

  def __init__(self, name):
    self.prepared = types.SimpleNamespace(name=name, path=name + '.jpg')


class ResumeClaimTest(tf.test.TestCase, parameterized.TestCase):
  """The --resume check with the face's lock held, beside --overwrite."""

  def setUp(self):
    super().setUp()
    self.out = _tempdir(self)

    def write(paths, final, *unused_args):  # every file, small
      del final, unused_args
      for path in paths.values():
        with open(path, 'w') as f:
          f.write('content of %s' % os.path.basename(path))

    original = outputs._write_files  # pylint: disable=protected-access
    self.addCleanup(setattr, outputs, '_write_files', original)
    outputs._write_files = write  # pylint: disable=protected-access

  def _write(self, name, run_id='first'):
    outputs.write_face(self.out, _Face(name), None, None, 32, 1.0, 'fit', 64,
                       None, run_id=run_id)

  @parameterized.parameters(False, True)
  def test_a_complete_set_is_skipped_with_or_without_overwrite(self, overwrite):
    self._write('a')
    with self.assertRaisesRegex(outputs.AlreadyComplete,
                                r'a: outputs in .* are complete \(written by '
                                r'run first\); skipped') as caught:
      outputs.claim(self.out, 'a', overwrite=overwrite, skip_complete=True)
    self.assertEqual(caught.exception.marker['run_id'], 'first')
    self.assertFalse(_held(self.out, 'a'))  # released again
    self.assertFalse([n for n in os.listdir(self.out) if n.startswith('.')])

  def test_an_altered_set_is_refused_unless_overwrite(self):
    self._write('a')
    with open(os.path.join(self.out, 'a_vis.png'), 'w') as f:
      f.write('changed since')
    with self.assertRaisesRegex(outputs.OutputCollision,
                                r'a: outputs already in .*pass --overwrite '
                                r'to replace them, or --resume'):
      outputs.claim(self.out, 'a', skip_complete=True)
    self.assertFalse(_held(self.out, 'a'))
    lock = outputs.claim(self.out, 'a', overwrite=True, skip_complete=True)
    self.assertTrue(_held(self.out, 'a'))  # claimed, to be replaced
    lock.release()

  def test_a_new_face_is_claimed(self):
    lock = outputs.claim(self.out, 'new', skip_complete=True)
    self.assertTrue(_held(self.out, 'new'))
    lock.release()
    self.assertFalse(_held(self.out, 'new'))

  def test_complete_marker_needs_every_file_and_a_sane_marker(self):
    self._write('a')
    self.assertEqual(outputs.complete_marker(self.out, 'a')['run_id'], 'first')
    path = outputs.marker_path(self.out, 'a')
    with open(path) as f:
      marker = json.load(f)
    # A marker that does not list a file this version writes (another
    # version's set) is not complete, though its own files match.
    del marker['files']['a_vis.png']
    with open(path, 'w') as f:
      json.dump(marker, f)
    self.assertIsNotNone(outputs.read_marker(self.out, 'a'))
    self.assertIsNone(outputs.complete_marker(self.out, 'a'))
    for text in ('[1, 2]', '{"files": {"a.mtl": 3}}', '{"files": []}', '{'):
      with open(path, 'w') as f:
        f.write(text)
      self.assertIsNone(outputs.complete_marker(self.out, 'a'), text)


# --- The tf.data input pipeline --------------------------------------------------
class _SlowPipeline:
  """Stands in for FacePipeline.prepare: sleeps, records what ran at once."""

  def __init__(self, seconds, no_face=()):
    self.seconds = seconds
    self.no_face = set(no_face)
    self.calls = []
    self.most_at_once = 0
    self._running = 0
    self._mutex = threading.Lock()

  def prepare(self, path, name):
    with self._mutex:
      self.calls.append(name)
      self._running += 1
      self.most_at_once = max(self.most_at_once, self._running)
    time.sleep(self.seconds[name])
    with self._mutex:
      self._running -= 1
    if name in self.no_face:
      raise pipeline_lib.InputError('%s: no face found' % path)
    return types.SimpleNamespace(name=name, path=path)


class PreparedFacesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.out = _tempdir(self)
    self.names = ['p%d' % i for i in range(8)]
    self.photos = [(n + '.jpg', n) for n in self.names]
    # Later photos finish first: the order must still be the input order.
    self.seconds = {n: 0.05 * (8 - i) for i, n in enumerate(self.names)}

  def test_order_parallelism_and_refusals(self):
    stand_in = _SlowPipeline(self.seconds, no_face=['p3'])
    timings = {}
    other_run = outputs.claim(self.out, 'p5')  # another run writes p5
    faces = command.PreparedFaces(stand_in, self.photos, self.out, workers=3,
                                  prefetch=2, timings=timings)
    got = []
    for item in faces:
      got.append(item)
      # The caller locks a face to fit it; checking it left no lock.
      self.assertEqual(_held(self.out, item.name), item.name == 'p5')
    other_run.release()
    self.assertEqual([g.name for g in got], self.names)
    self.assertEqual([g.path for g in got], [p for p, _ in self.photos])
    self.assertEqual([g.name for g in got if g.face is None], ['p3', 'p5'])
    self.assertEqual(got[3].reason, 'p3.jpg: no face found')
    self.assertRegex(got[5].reason, r'^p5.jpg: p5: another reconstruct run is '
                     r'writing this face\'s outputs')
    self.assertEqual([g.face.name for g in got if g.face is not None],
                     [n for n in self.names if n not in ('p3', 'p5')])
    self.assertFalse(any(g.skipped for g in got))
    self.assertEqual(stand_in.most_at_once, 3)
    self.assertCountEqual(stand_in.calls,
                          [n for n in self.names if n != 'p5'])  # not read
    self.assertGreater(timings['detection'],
                       sum(self.seconds.values()) - self.seconds['p5'] - 0.1)
    self.assertEqual(os.listdir(self.out), [])

  def test_complete_faces_are_skipped_before_they_are_read(self):
    done = self.names[1::2]
    for name in done:
      _write_fake_set(self.out, name)
    with open(os.path.join(self.out, 'p2_coarse.obj'), 'w') as f:
      f.write('a file of another run')  # no marker: not complete
    stand_in = _SlowPipeline(self.seconds)
    got = list(command.PreparedFaces(stand_in, self.photos, self.out,
                                     resume=True))
    self.assertEqual([g.name for g in got if g.skipped], done)
    self.assertRegex([g for g in got if g.name == 'p2'][0].reason,
                     r'^p2.jpg: p2: outputs already in .*--overwrite')
    ready = [g.name for g in got if g.face is not None]
    self.assertEqual(ready, ['p0', 'p4', 'p6'])
    self.assertCountEqual(stand_in.calls, ready)  # nothing else was read
    # With --overwrite too the set of p2 is read to be replaced; complete
    # sets are still skipped.
    stand_in = _SlowPipeline(self.seconds)
    got = list(command.PreparedFaces(stand_in, self.photos, self.out,
                                     resume=True, overwrite=True))
    self.assertEqual([g.name for g in got if g.skipped], done)
    self.assertCountEqual(stand_in.calls, ['p0', 'p2', 'p4', 'p6'])
    # Without --resume every existing set is refused unread.
    stand_in = _SlowPipeline(self.seconds)
    got = list(command.PreparedFaces(stand_in, self.photos, self.out))
    self.assertEqual([g.name for g in got if g.face is not None],
                     ['p0', 'p4', 'p6'])
    self.assertCountEqual(stand_in.calls, ['p0', 'p4', 'p6'])

  def test_an_early_stop_ends_the_work(self):
    stand_in = _SlowPipeline(self.seconds)
    for item in command.PreparedFaces(stand_in, self.photos, self.out,
                                      workers=3, prefetch=2):
      self.assertEqual(item.name, 'p0')
      break  # as Ctrl-C in the caller's loop
    # The photos in flight were finished; nothing more is started.
    started = len(stand_in.calls)
    time.sleep(0.5)
    self.assertEqual(len(stand_in.calls), started)
    self.assertLess(started, len(self.names))
    self.assertEqual(os.listdir(self.out), [])


def _write_fake_set(out_dir, name):
  """A complete set of NAME (write_face with every file small)."""
  original = outputs._write_files  # pylint: disable=protected-access

  def write(paths, final, *unused_args):
    del final, unused_args
    for path in paths.values():
      with open(path, 'w') as f:
        f.write(name)

  outputs._write_files = write  # pylint: disable=protected-access
  try:
    outputs.write_face(out_dir, _Face(name), None, None, 32, 1.0, 'fit', 64,
                       None, run_id='earlier')
  finally:
    outputs._write_files = original  # pylint: disable=protected-access


# --- Ctrl-C during the fit --------------------------------------------------------
class InterruptsBetweenBatchesTest(tf.test.TestCase):
  """The first Ctrl-C / SIGTERM is held for a safe point, a second is not."""

  def test_first_signal_noted_second_raises_handlers_restored(self):
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with command._interrupts_between_batches() as stop_requested:  # pylint: disable=protected-access
      self.assertFalse(stop_requested())
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(0.01)  # (handlers run between bytecodes of this thread)
      self.assertTrue(stop_requested())  # noted, nothing raised
      with self.assertRaises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    self.assertEqual([signal.getsignal(s)
                      for s in (signal.SIGINT, signal.SIGTERM)], before)

  def test_other_threads_leave_signals_alone(self):
    seen = []

    def run():
      with command._interrupts_between_batches() as stop_requested:  # pylint: disable=protected-access
        seen.append(stop_requested())

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    self.assertEqual(seen, [False])
    self.assertIs(signal.getsignal(signal.SIGINT), before)


# --- The command ----------------------------------------------------------------
class ShardAndResumeCommandTest(tf.test.TestCase):
  """Sharded runs write what one run writes; --resume finishes a folder."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='test_large_folders_')
    cls.inputs = os.path.join(cls.tmp, 'photos')
    os.makedirs(cls.inputs)
    batch = synthetic_data.sample_batch(
        bfm.load('synthetic'), len(FACES), 256,
        np.random.RandomState(RENDER_SEED), yaw_distribution=(-30, 30))
    for name, image in zip(FACES, batch.images):
      Image.fromarray(np.round(image * 255).astype(np.uint8)).save(
          os.path.join(cls.inputs, name + '.png'))
    yy, xx = np.mgrid[0:120, 0:160]
    no_face = np.stack([xx / 160.0, yy / 120.0, 0.5 + 0 * xx], -1)
    Image.fromarray((no_face * 255).astype(np.uint8)).save(
        os.path.join(cls.inputs, NO_FACE + '.png'))
    cls.one = os.path.join(cls.tmp, 'one_run')
    cls.sharded = os.path.join(cls.tmp, 'sharded')
    # The unsharded run and both shards, all at once (as on 3 machines).
    procs = [_start([cls.inputs, '--out=' + cls.one] + TINY)]
    procs += [_start([cls.inputs, '--out=' + cls.sharded,
                      '--shard=%d/2' % i] + TINY) for i in range(2)]
    cls.runs = [_finish(p) for p in procs]

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_shards_together_write_what_one_run_writes(self):
    (code, out, err), shard0, shard1 = self.runs
    self.assertEqual(code, 0, out + err)
    self.assertEqual(_reported(out, self.one), sorted(FACES))
    self.assertIn('%s.png: no face found' % NO_FACE, err)
    # Inputs sorted: face_a, face_b, face_c, gradient; shard 0 takes the
    # 1st and 3rd, shard 1 the 2nd and 4th.
    expected = ({'face_a', 'face_c'}, {'face_b'})
    for (code, out, err), i, names in zip((shard0, shard1), (0, 1), expected):
      self.assertEqual(code, 0, out + err)
      self.assertIn('--shard=%d/2: 2 of 4 input photos' % i, out)
      self.assertEqual(set(_reported(out, self.sharded)), names)
      self.assertEqual('%s.png: no face found' % NO_FACE in err, i == 1, err)
      self.assertIn('Summary: reconstructed %d of 2 inputs' % len(names), out)
    self.assertEqual(sorted(os.listdir(self.sharded)),
                     sorted(os.listdir(self.one)))
    for name in FACES:
      digests = _file_digests(self.one, name)
      self.assertLen(digests, len(outputs.SUFFIXES), name)
      self.assertEqual(_file_digests(self.sharded, name), digests, name)

  def test_resume_skips_complete_faces_and_finishes_the_rest(self):
    folder = os.path.join(self.tmp, 'resumed')
    shutil.copytree(self.sharded, folder)
    kept, deleted, altered = FACES
    for path in outputs.existing_outputs(folder, deleted):
      os.unlink(path)
    with open(os.path.join(folder, altered + '_vis.png'), 'ab') as f:
      f.write(b'changed')
    before = {n: _mtimes(folder, n) for n in (kept, altered)}
    code, out, err = _finish(_start([self.inputs, '--out=' + folder,
                                     '--resume'] + TINY))
    self.assertEqual(code, 0, out + err)
    self.assertEqual(_reported(out, folder), [deleted])
    self.assertIn('Summary: reconstructed 1 of 4 inputs into %s; 1 already '
                  'complete there, skipped (--resume).' % folder, out)
    self.assertRegex(err, r'%s: outputs already in .*pass --overwrite' %
                     altered)
    self.assertIn('%s.png: no face found' % NO_FACE, err)
    for name in (kept, altered):  # not rewritten
      self.assertEqual(_mtimes(folder, name), before[name], name)
    self.assertEqual(_file_digests(folder, deleted),
                     _file_digests(self.one, deleted))
    self.assertFalse([n for n in os.listdir(folder) if n.startswith('.')])


if __name__ == '__main__':
  tf.test.main()
