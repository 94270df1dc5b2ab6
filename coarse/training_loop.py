"""The training loop both stages run (coarse/train.py, detail/train.py).

A stage subclasses `TrainingLoop` and supplies only its model, data and
losses: `compute(batch)` (the forward pass and the loss terms, traced in
a tf.function), `next_batch()`, `initialise()` (the start of a fresh folder)
and, optionally, `write_images()`. The loop does the rest, the same way for
both stages:

- the step: gradients in one tf.function, a NaN/Inf guard that names the
  step and the loss term (or the gradient) BEFORE the update, every gradient
  element clipped to [-grad_clip, grad_clip], the update in a second
  tf.function (Chen20 controller.py: Adam, clipping to [-1, 1]);
- Chen20's learning-rate decay, `ChenDecay`;
- one training folder per run that never loses or lies: its config file
  (coarse_config.json / detail_config.json) is checked against the run's
  settings before anything is written; checkpoints (tf.train.
  CheckpointManager) resume the run, a corrupt newest checkpoint falls back
  to the newest intact one, Ctrl-C saves one, a run asked for fewer steps
  than the folder holds fails unless allowed;
- the progress line with an ETA, scalar and image summaries;
- devices (issue 15): `distribution()` gives the tf.distribute strategy of
  --strategy (--num_cpu_devices splits the host CPU into logical devices);
  --batch_size is the global batch, each replica's losses are weighted by its
  share of it and the gradients summed, so N devices take the step one
  device takes on the same global batch; the chief writes the folder.

Errors a user can fix are `TrainingError`s: one line naming the folder or
file, the cause and what to do; `run_main()` prints them without a
traceback and exits non-zero.
"""

import collections
import functools
import json
import os
import sys
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

import bfm
from coarse import summaries
from preprocess import face_records


class TrainingError(Exception):
  """A run that cannot start or go on; the message says what to do."""

  exit_code = 1


class NonFiniteLossError(TrainingError, FloatingPointError):
  """A loss term or the gradient became NaN or Inf (before the update)."""


class ConfigMismatchError(TrainingError, ValueError):
  """The training folder holds a run with other settings."""


class CheckpointError(TrainingError, ValueError):
  """A checkpoint does not hold this network, or none can be read."""


class CheckpointNotFoundError(TrainingError, FileNotFoundError):
  """A checkpoint the run needs is missing."""


class StepsError(TrainingError, ValueError):
  """The folder already holds more steps than the run was asked for."""


class BadRecordsError(TrainingError, ValueError):
  """A TFRecord shard of --data holds an unreadable record."""


class UsageError(TrainingError, ValueError):
  """Settings that do not go together, or data that is not there."""


class Interrupted(TrainingError):
  """Ctrl-C: the run saved a checkpoint and stopped."""

  exit_code = 130


# A stage's defaults for the training-loop flags that are None by default
# (flags/training_flags.py).
Defaults = collections.namedtuple('Defaults', [
    'steps', 'batch_size', 'lr_decay_steps', 'lr_decay_rate',
    'min_learning_rate', 'log_every', 'image_every', 'save_every'
])

# Every training-loop setting, resolved.
Settings = collections.namedtuple(
    'Settings', Defaults._fields + (
        'learning_rate', 'grad_clip', 'keep_checkpoints', 'allow_fewer_steps',
        'seed', 'strategy', 'num_cpu_devices'))


def settings_from_flags(flag_values, defaults):
  """Settings from flags/training_flags.py values; None = the stage default."""
  values = {}
  for name in Defaults._fields:
    value = getattr(flag_values, name)
    values[name] = getattr(defaults, name) if value is None else value
  for name in Settings._fields[len(Defaults._fields):]:
    values[name] = getattr(flag_values, name)
  return Settings(**values)


class ChenDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Chen20: max(lr * rate ** (step / decay_steps), min_lr) (not staircase)."""

  def __init__(self, lr, decay_steps, rate, min_lr):
    self.lr, self.decay_steps, self.rate, self.min_lr = (float(lr),
                                                         int(decay_steps),
                                                         float(rate),
                                                         float(min_lr))

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    return tf.maximum(self.lr * self.rate**(step / self.decay_steps),
                      self.min_lr)

  def get_config(self):
    return dict(lr=self.lr, decay_steps=self.decay_steps, rate=self.rate,
                min_lr=self.min_lr)


def find_checkpoint(path, flag):
  """A checkpoint prefix from a prefix or a folder (its latest checkpoint).

  Raises:
    CheckpointNotFoundError: nothing there (names `flag` and `path`).
  """
  found = path
  if path and tf.io.gfile.isdir(path):
    found = tf.train.latest_checkpoint(path)
  if not found or not tf.io.gfile.exists(found + '.index'):
    raise CheckpointNotFoundError('%s: no checkpoint at %r' % (flag, path))
  return found


def restore_network(network, path, flag, what):
  """Loads the weights of `network` (checkpoint key 'network') from `path`.

  Args:
    network: the built keras model.
    path: checkpoint prefix or folder.
    flag: the flag that named it, for messages.
    what: which checkpoint holds this network, for the mismatch message.
  Returns: the checkpoint prefix used.
  Raises:
    CheckpointNotFoundError, CheckpointError (one line each).
  """
  found = find_checkpoint(path, flag)
  try:
    tf.train.Checkpoint(network=network).restore(
        found).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise CheckpointError('%s: %r does not hold this network (%s is needed): '
                          '%s' % (flag, found, what, _first_line(e))) from e
  return found


def _first_line(error, limit=300):
  text = str(error).strip().splitlines()
  return (text[0] if text else type(error).__name__)[:limit]


def _json_value(config):
  """`config` as it reads back from JSON (tuples become lists, ...)."""
  return json.loads(json.dumps(config))


class TrainingLoop:
  """One training run in one folder; subclassed by each stage.

  Args:
    name: the script, for messages (e.g. 'coarse/train.py').
    folder: the training folder (checkpoints, config, OBJ/TensorBoard output).
    network: the built keras model that is trained (checkpoint key
      'network', which coarse_model.load / detail_reconstruction.load read).
    config: JSON-able dict written to <folder>/<config_file>: the network's
      settings (read back at inference) and those a resumed run must share.
    config_file: 'coarse_config.json' or 'detail_config.json'.
    settings: Settings.
    summary_dir: TensorBoard folder (default: folder).
    folder_flag: the flag that names the folder, for messages.
  """

  def __init__(self, name, folder, network, config, config_file, settings,
               summary_dir=None, folder_flag='--log_dir'):
    self.name = name
    self.folder = folder
    self.network = network
    self.config = _json_value(config)
    self.config_file = config_file
    self.settings = settings
    self.summary_dir = summary_dir or folder
    self.folder_flag = folder_flag
    # Built inside distribution(...).scope() by the stage, or without one.
    self.strategy = tf.distribute.get_strategy()
    self.replicas = self.strategy.num_replicas_in_sync
    self.chief = is_chief(self.strategy)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step',
                            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    s = settings
    self.optimizer = keras.optimizers.Adam(
        ChenDecay(s.learning_rate, s.lr_decay_steps, s.lr_decay_rate,
                  s.min_learning_rate),
        epsilon=1e-8)  # tf.train.AdamOptimizer defaults, as Chen20
    self.variables = network.trainable_variables
    self.optimizer.build(self.variables)  # before restoring: slots restore too
    self.checkpoint = tf.train.Checkpoint(network=network,
                                          optimizer=self.optimizer,
                                          step=self.step)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, folder, max_to_keep=s.keep_checkpoints)
    # Every worker saves (saving may need all of them); a non-chief worker
    # into a folder of its own that it deletes again.
    self._worker_folder = None
    self._saver = self.manager
    if not self.chief:
      resolver = self.strategy.extended._cluster_resolver  # pylint: disable=protected-access
      self._worker_folder = os.path.join(
          folder, '.%s_%d' % (resolver.task_type, resolver.task_id))
      self._saver = tf.train.CheckpointManager(self.checkpoint,
                                               self._worker_folder, 1)
    self._dataset = None
    self._batches = None
    self._record_files = None
    self._gradients = tf.function(
        lambda batch: self.strategy.run(self._compute_gradients, (batch,)),
        reduce_retracing=True)
    self._apply = tf.function(
        lambda grads: self.strategy.run(self._apply_gradients, (grads,)))

  def steps_done(self):
    """The step counter (steps trained so far in this folder)."""
    return int(self.step.read_value())

  # --- What a stage supplies ------------------------------------------------

  def compute(self, batch):
    """(total loss, {term: scalar}, outputs for write_images) of a batch."""
    raise NotImplementedError

  def next_batch(self):
    """The next global training batch (a tuple of tensors), for a stage
    without a tf.data pipeline (see use_dataset)."""
    raise NotImplementedError

  def use_dataset(self, dataset):
    """Takes global batches from `dataset` (a tf.data.Dataset) instead of
    next_batch(); with several replicas it is split among them
    (experimental_distribute_dataset)."""
    self._dataset = dataset

  def initialise(self):
    """Starts the network of a fresh folder (e.g. from --init_checkpoint)."""

  def prepare(self):
    """Opens the training data (after the checks, before any write): calls
    use_dataset() or readies next_batch()."""

  def write_images(self, step, batch, outputs):
    """Writes image summaries (and other visuals) of a step."""
    del step, batch, outputs

  # --- The step ---------------------------------------------------------------

  def _compute_gradients(self, batch):
    """One replica's share: its loss terms weighted by its part of the global
    batch, and the global gradient (summed over replicas), clipped."""
    with tf.GradientTape() as tape:
      total, terms, outputs = self.compute(batch)
      share = 1.0
      if self.replicas > 1:  # the losses are batch means
        share = (tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32) /
                 float(self.settings.batch_size))
        total = total * share
    grads = tape.gradient(total, self.variables)
    grads = [tf.zeros_like(v) if g is None else g
             for g, v in zip(grads, self.variables)]
    if self.replicas > 1:
      grads = tf.distribute.get_replica_context().all_reduce(
          tf.distribute.ReduceOp.SUM, grads)
    grad_norm = tf.linalg.global_norm(grads)
    clip = self.settings.grad_clip
    if clip > 0:  # Chen20: every element to [-1, 1]
      grads = [tf.clip_by_value(g, -clip, clip) for g in grads]
    terms = {k: v * share for k, v in terms.items()}
    terms = dict(terms, total=total, grad_norm=grad_norm / self.replicas)
    return terms, grads, outputs

  def _apply_gradients(self, grads):
    # Keras sums the replicas' (equal) gradients again: pass 1/N of each. The
    # division, or the identity, also makes them tensors of this replica:
    # MultiWorkerMirroredStrategy's all-reduce rejects the outputs of another
    # strategy.run as they come in.
    grads = [tf.identity(g) if self.replicas == 1 else g / self.replicas
             for g in grads]
    self.optimizer.apply_gradients(zip(grads, self.variables))
    self.step.assign_add(1)

  def _train_step(self):
    """Runs one step; returns (global terms, this worker's first replica's
    batch and outputs)."""
    batch = self._fetch()
    terms, grads, outputs = self._gradients(batch)
    terms = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
             for k, v in terms.items()}
    self._check_finite(self.steps_done() + 1, terms)
    self._apply(grads)
    local = self.strategy.experimental_local_results
    return terms, local(batch)[0], local(outputs)[0]

  def _fetch(self):
    """The next batch, split among the replicas."""
    if self._batches is None:
      if self._dataset is not None:
        dataset = self._dataset
        if self.replicas > 1:
          dataset = self.strategy.experimental_distribute_dataset(dataset)
        self._batches = iter(dataset)
      else:
        self._batches = _BatchSplitter(self.next_batch, self.strategy)
    try:
      return next(self._batches)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
      if self._record_files is None:
        raise
      data, files = self._record_files
      raise _bad_records_error(data, files, e) from None

  def record_dataset(self, data, image_size, seed, skip_bad_records,
                     first_example=None, with_shapes=False):
    """record_dataset() of --data whose unreadable records this loop names.

    first_example: global index of the first example (None: where this
    folder's run stands, steps done x --batch_size, so that a resumed run
    reads on where the uninterrupted run would be). with_shapes: batches
    also carry the records' ground-truth meshes (record_dataset).
    """
    if first_example is None:
      first_example = self.steps_done() * self.settings.batch_size
    dataset, files = record_dataset(data, image_size,
                                    self.settings.batch_size, seed,
                                    skip_bad_records, first_example,
                                    with_shapes)
    self._record_files = (data, files)
    return dataset

  def _check_finite(self, step, terms):
    for name, value in terms.items():
      if not np.isfinite(float(value)):
        what = 'gradient' if name == 'grad_norm' else 'loss term %r' % name
        raise NonFiniteLossError(
            '%s: %s is %s at step %d; stopped before the update. The last '
            'good checkpoint in %s is intact (%s).' %
            (self.name, what, float(value), step, self.folder,
             self.manager.latest_checkpoint))

  # --- The folder -------------------------------------------------------------

  def _config_path(self):
    return os.path.join(self.folder, self.config_file)

  def check_config(self):
    """Compares the folder's config with this run's; writes nothing.

    Raises:
      ConfigMismatchError: the folder holds checkpoints of a run whose
        settings differ (names the folder, the settings and what to do).
    """
    path = self._config_path()
    if not tf.io.gfile.exists(path):
      return
    with tf.io.gfile.GFile(path) as f:
      stored = json.load(f)
    # Keys an older version did not write are unknown, not different.
    differ = [k for k in sorted(stored) if k in self.config and
              stored[k] != self.config[k]]
    if not differ:
      return
    what = '; '.join('%s: folder %s, this run %s' %
                     (k, json.dumps(stored[k]), json.dumps(self.config[k]))
                     for k in differ)
    if self.manager.checkpoints:
      raise ConfigMismatchError(
          '%s: %s holds a run with other settings (%s); give the same '
          'settings to resume it, or another %s to start a new run (see %s)' %
          (self.name, self.folder, what, self.folder_flag, path))
    logging.warning('%s: %s has no checkpoint yet; its %s is replaced (%s)',
                    self.name, self.folder, self.config_file, what)

  def _write_config(self):
    tf.io.gfile.makedirs(self.folder)
    with tf.io.gfile.GFile(self._config_path(), 'w') as f:
      json.dump(self.config, f, indent=1)

  def restore(self):
    """Resumes from the newest intact checkpoint of the folder.

    Returns: the checkpoint path used, or None for a fresh folder.
    Raises:
      CheckpointError: the folder holds checkpoints, none readable.
    """
    newest_error = None
    for path in reversed(self.manager.checkpoints):
      try:
        self.checkpoint.restore(path).assert_existing_objects_matched()
      except Exception as e:  # pylint: disable=broad-except
        # A truncated or corrupt file raises OpErrors, IndexError ("Read less
        # bytes than requested"), ValueError, ...
        newest_error = newest_error or e
        logging.warning('%s: checkpoint %s is unreadable (%s); trying the '
                        'one before it.', self.name, path, _first_line(e))
        continue
      if newest_error is not None:
        logging.warning('%s: resuming from %s, the newest intact checkpoint '
                        'in %s.', self.name, path, self.folder)
      logging.info('Resumed from %s at step %d', path, self.steps_done())
      return path
    if newest_error is not None:
      raise CheckpointError(
          '%s: no checkpoint in %s can be restored (newest: %s); use another '
          '%s, or delete the folder to start afresh' %
          (self.name, self.folder, _first_line(newest_error),
           self.folder_flag))
    return None

  # --- The run ----------------------------------------------------------------

  def run(self):
    """Trains to settings.steps; returns the total loss of every step run.

    Raises:
      TrainingError: see the subclasses; nothing is written to the folder
        before the checks (config, checkpoints, steps) pass.
    """
    s = self.settings
    if s.batch_size < self.replicas:
      raise UsageError(
          '%s: --batch_size=%d is the global batch, split among %d replicas: '
          'give at least one image per replica (--batch_size >= %d)' %
          (self.name, s.batch_size, self.replicas, self.replicas))
    self.check_config()
    if self.restore() is None:
      self.initialise()
    start = self.steps_done()
    if start > s.steps:
      message = ('%s: %s already holds step %d, beyond --steps=%d' %
                 (self.name, self.folder, start, s.steps))
      if not s.allow_fewer_steps:
        raise StepsError(message + '; give --steps above %d to train on, '
                         'another %s for a new run, or --allow_fewer_steps' %
                         (start, self.folder_flag))
      logging.info('%s; nothing to do (--allow_fewer_steps).', message)
      return []
    if start == s.steps:
      logging.info('Already at step %d >= --steps=%d; nothing to do.', start,
                   s.steps)
      return []
    try:
      self.prepare()
    except TrainingError:
      raise
    except (ValueError, FileNotFoundError) as e:
      raise UsageError('%s: %s' % (self.name, _first_line(e, 500))) from e
    if self.chief:
      self._write_config()
      writer = tf.summary.create_file_writer(self.summary_dir)
    else:
      writer = tf.summary.create_noop_writer()
    history, times = [], []
    step = start
    try:
      with writer.as_default():
        for step in range(start + 1, s.steps + 1):
          t0 = time.time()
          terms, batch, outputs = self._train_step()
          times.append(time.time() - t0)
          history.append(float(terms['total']))
          self._log(step, start, terms, history, times, outputs, batch)
          if step % s.save_every == 0 or step == s.steps:
            self._save(step)
    except KeyboardInterrupt:
      raise self._interrupted() from None
    writer.flush()
    logging.info('Finished at step %d; checkpoint %s', self.steps_done(),
                 self.manager.latest_checkpoint)
    return history

  def _save(self, step):
    """Saves checkpoint `step`; returns the chief's checkpoint path."""
    path = self._saver.save(checkpoint_number=step)
    if self._worker_folder is not None:
      tf.io.gfile.rmtree(self._worker_folder)
      return os.path.join(self.folder, os.path.basename(path))
    return path

  def _interrupted(self):
    done = self.steps_done()
    saved = self.manager.latest_checkpoint
    if done and (saved is None or not saved.endswith('-%d' % done)):
      saved = self._save(done)
    return Interrupted('%s: interrupted after step %d; saved %s. Run the same '
                       'command again to resume.' % (self.name, done, saved))

  def _log(self, step, start, terms, history, times, outputs, batch):
    s = self.settings
    first, last = step == start + 1, step == s.steps
    if step % s.log_every == 0 or first or last:
      if len(times) > 1:  # the first step also traces the graph
        eta = '%.0f s' % (np.median(times[1:][-10:]) * (s.steps - step))
      else:
        eta = 'n/a (first step includes tracing)'
      recent = history[-s.log_every:]
      logging.info(
          'step %d/%d  loss %.4g (%s; mean of last %d steps %.4g)  %.2f '
          's/step  ETA %s', step, s.steps, history[-1], ', '.join(
              '%s %.4g' % (k, float(v)) for k, v in sorted(terms.items())
              if k != 'total'), len(recent), float(np.mean(recent)), times[-1],
          eta)
      for k, v in terms.items():
        summaries.scalar('loss/' + k, v, step)
      summaries.scalar('learning_rate', self.optimizer.learning_rate, step)
    if self.chief and (step % s.image_every == 0 or first or last):
      self.write_images(step, batch, outputs)


class Script:
  """A stage's training entry points: `train()` and `main(argv)`.

  Args:
    loop_class: the stage's TrainingLoop subclass, built from the face model.
    flag_values: absl FLAGS (--bfm, --seed, --strategy, --num_cpu_devices).
    name: the script, for messages.
  """

  def __init__(self, loop_class, flag_values, name):
    self.loop_class = loop_class
    self.flags = flag_values
    self.name = name

  def __call__(self):
    """Trains to --steps; returns the total loss of every step run.

    Builds loop_class(the --bfm face model) in the --strategy scope, with
    --seed seeding the network initialisation.
    """
    f = self.flags
    strategy = distribution(f.strategy, f.num_cpu_devices)
    model = bfm.load(f.bfm)
    keras.utils.set_random_seed(f.seed)
    with strategy.scope():
      return self.loop_class(model).run()

  def main(self, argv):
    """For absl.app.run: a TrainingError is one line and an exit code."""
    del argv
    run_main(self, self.name)


def run_main(train, name):
  """Runs train(); a TrainingError becomes one line on stderr and exit code.

  For the scripts' main(): no traceback for what the user can fix.
  """
  try:
    train()
  except TrainingError as e:
    print(str(e), file=sys.stderr)
    sys.exit(e.exit_code)
  except KeyboardInterrupt:
    print('%s: interrupted before training started; nothing saved.' % name,
          file=sys.stderr)
    sys.exit(Interrupted.exit_code)


# --- Devices -------------------------------------------------------------------

_STRATEGIES = {}


def distribution(strategy='default', num_cpu_devices=0):
  """The tf.distribute strategy of --strategy (one per process and setting).

  Args:
    strategy: 'default' (one device), 'mirrored' (the local GPUs, else the
      logical CPUs) or 'multi_worker' (MultiWorkerMirroredStrategy, TF_CONFIG).
    num_cpu_devices: > 0: split the host CPU into this many logical devices
      first, which TensorFlow allows only before it sets up its devices.
  Raises:
    UsageError: the CPU cannot be split any more in this process.
  """
  key = (strategy, num_cpu_devices)
  if key in _STRATEGIES:
    return _STRATEGIES[key]
  if num_cpu_devices > 0:
    cpu = tf.config.list_physical_devices('CPU')[0]
    if len(tf.config.get_logical_device_configuration(cpu) or
           [None]) != num_cpu_devices:
      try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpu_devices)
      except RuntimeError as e:
        raise UsageError('--num_cpu_devices=%d: TensorFlow has already set up '
                         'its devices in this process (%s)' %
                         (num_cpu_devices, _first_line(e))) from e
  if strategy == 'default':
    result = tf.distribute.get_strategy()
  elif strategy == 'mirrored':
    if tf.config.list_logical_devices('GPU'):
      result = tf.distribute.MirroredStrategy()
    else:
      result = tf.distribute.MirroredStrategy(
          [d.name for d in tf.config.list_logical_devices('CPU')],
          cross_device_ops=tf.distribute.ReductionToOneDevice())
  elif strategy == 'multi_worker':
    result = tf.distribute.MultiWorkerMirroredStrategy()
  else:
    raise UsageError('--strategy: expected one of default, mirrored, '
                     'multi_worker, got %r' % (strategy,))
  logging.info('--strategy=%s: %d replica(s)', strategy,
               result.num_replicas_in_sync)
  _STRATEGIES[key] = result
  return result


def is_chief(strategy):
  """Whether this worker writes the training folder (always, but for the
  non-chief workers of a multi-worker cluster)."""
  resolver = getattr(strategy.extended, '_cluster_resolver', None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  if task_type == 'chief':
    return True
  return (task_type == 'worker' and task_id == 0 and
          'chief' not in resolver.cluster_spec().as_dict())


# --- TFRecord training data ----------------------------------------------------

# Block size of the training stream's shuffle (example_stream): sets up to
# this many records (the paper trains on 1,000) are shuffled as a whole.
SHUFFLE_BUFFER = 2048


def scan_records(files, image_size=8):
  """Reads and decodes every record; returns [(file, readable, bad, why)].

  readable: how many records could be read before the shard ended or broke;
  bad: indices (< readable) of records that do not decode, plus `readable`
  itself when the shard breaks there (a truncated or corrupt record ends
  what can be read of it); why: the first error, or ''.
  """
  report = []
  for path in files:
    records = iter(tf.data.TFRecordDataset(path))
    readable, bad, why = 0, [], ''
    while True:
      try:
        record = next(records)
      except StopIteration:
        break
      except tf.errors.OpError as e:  # truncated / corrupt: the rest is lost
        bad.append(readable)
        why = why or _first_line(e)
        break
      try:
        face_records.decode(record, image_size)
      except tf.errors.OpError as e:
        bad.append(readable)
        why = why or _first_line(e)
      readable += 1
    report.append((path, readable, bad, why))
  return report


def _describe_bad(report):
  return ', '.join('%s (%d bad record%s: %s)' % (path, len(bad),
                                                  's' * (len(bad) != 1), why)
                   for path, _, bad, why in report if bad)


def _readable_records(report):
  """A TFRecordDataset of the records scan_records() found readable."""
  parts = []
  for path, readable, bad, _ in report:
    part = tf.data.TFRecordDataset(path).take(readable)
    if bad:
      skip = tf.constant(bad, tf.int64)
      part = part.enumerate().filter(
          lambda i, _, skip=skip: tf.reduce_all(tf.not_equal(i, skip)))
      part = part.map(lambda _, record: record)
    parts.append(part)
  return functools.reduce(lambda a, b: a.concatenate(b), parts)


class _BatchSplitter:
  """Iterator of the global batches of next_batch() split among replicas."""

  def __init__(self, next_batch, strategy):
    self._next_batch = next_batch
    self._strategy = strategy

  def __iter__(self):
    return self

  def __next__(self):
    batch = self._next_batch()
    n = self._strategy.num_replicas_in_sync
    if n == 1:
      return batch

    def part(context):
      i = context.replica_id_in_sync_group

      def piece(t):
        sizes = split_sizes(t.shape[0], n)
        start = sum(sizes[:i])
        return t[start:start + sizes[i]]

      return tf.nest.map_structure(piece, batch)

    return self._strategy.experimental_distribute_values_from_function(part)


def split_sizes(total, parts):
  """Sizes of `parts` consecutive pieces of `total` items that differ by at
  most one, the larger first: each replica's part of a global batch of
  next_batch() (all of it used; each replica's losses are weighted by its
  own size)."""
  size, extra = divmod(int(total), int(parts))
  return [size + (i < extra) for i in range(int(parts))]


def example_stream(examples, num_examples, seed, first_example=0,
                   shuffle_buffer=SHUFFLE_BUFFER):
  """The endless shuffled training stream of a finite dataset, resumable.

  Epoch e of the stream is `examples` cut into consecutive blocks of
  `shuffle_buffer` elements, each block permuted by stateless random draws
  of (seed, e, block): a uniform shuffle of sets up to that size, mixing
  within blocks beyond it. The stream starts at global example
  `first_example` (epoch first_example // num_examples, the first
  first_example % num_examples examples of that epoch skipped). So example
  g of the stream depends only on (seed, g), not on tf's global seed or any
  state of the process: a run resumed after n steps of batch b passes
  first_example = n * b and reads exactly what the uninterrupted run reads
  from its step n + 1 on. (A `shuffle(reshuffle_each_iteration=True).
  repeat()` restarts at epoch 0 in every process, and its order lives in
  iterator state that the checkpoints do not hold.) Skipping costs at most
  one epoch of `examples`, which should therefore be undecoded records.

  Args:
    examples: tf.data.Dataset of one epoch in a fixed order.
    num_examples: python int > 0, its length.
    seed: python int.
    first_example: python int >= 0.
    shuffle_buffer: python int > 0, the block size.
  Returns: tf.data.Dataset, endless.
  """
  num_examples, first_example = int(num_examples), int(first_example)
  if num_examples <= 0:
    raise ValueError('example_stream: no examples')
  if first_example < 0:
    raise ValueError('example_stream: first_example must be >= 0, got %d' %
                     first_example)
  first_epoch, offset = divmod(first_example, num_examples)
  seed = tf.constant(int(seed), tf.int64)

  def epoch(e):
    epoch_key = tf.random.stateless_uniform(
        [], tf.stack([seed, e]), minval=None, maxval=None, dtype=tf.int64)

    def permuted(block_index, block):
      size = tf.shape(tf.nest.flatten(block)[0])[0]
      order = tf.argsort(tf.random.stateless_uniform(
          [size], tf.stack([epoch_key, block_index])))
      return tf.data.Dataset.from_tensor_slices(
          tf.nest.map_structure(lambda t: tf.gather(t, order), block))

    return examples.batch(shuffle_buffer).enumerate().flat_map(permuted)

  return tf.data.Dataset.counter(first_epoch).flat_map(epoch).skip(offset)


def _count_records(files, data):
  """Number of records in the shards (read, not decoded).

  Raises: BadRecordsError: a shard cannot be read to its end.
  """
  try:
    return int(tf.data.TFRecordDataset(files).reduce(
        tf.constant(0, tf.int64), lambda n, _: n + 1))
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    raise _bad_records_error(data, files, e) from None


def _bad_records_error(data, files, error):
  """BadRecordsError naming the shards of --data that hold bad records."""
  return BadRecordsError(
      '--data: unreadable record in %s; rewrite or remove the shard, or '
      'pass --skip_bad_records to train on the readable records' %
      (_describe_bad(scan_records(files)) or
       '%s (%s)' % (data, _first_line(error))))


def record_dataset(data, image_size, batch_size, seed, skip_bad_records,
                   first_example=0, with_shapes=False):
  """Endless shuffled global batches (images, landmarks, masks) of --data;
  with with_shapes, (images, landmarks, masks, shapes [B,V,3] mm): the
  records' ground-truth meshes (preprocess/face_records.py 'shape').

  The records are shuffled epoch by epoch (`example_stream`: example g
  depends only on (seed, g)) and the stream starts at global example
  `first_example`. With skip_bad_records every shard is checked first and
  only the readable records are used (how many were skipped, where, is
  logged).
  Returns: (tf.data.Dataset, the shard files).
  Raises: BadRecordsError: an unreadable shard (without skip_bad_records),
    or fewer readable records than a batch.
  """
  files = face_records.list_files(data)
  logging.info('Training data: %d TFRecord shard(s) at %s', len(files), data)
  if not skip_bad_records:
    records = tf.data.TFRecordDataset(files,
                                      num_parallel_reads=tf.data.AUTOTUNE)
    kept = _count_records(files, data)
  else:
    report = scan_records(files)
    skipped = sum(len(bad) for _, _, bad, _ in report)
    kept = sum(readable for _, readable, _, _ in report) - sum(
        len([i for i in bad if i < readable]) for _, readable, bad, _ in report)
    if skipped:
      logging.warning('--skip_bad_records: skipped %d unreadable record(s), '
                      'kept %d: %s', skipped, kept, _describe_bad(report))
    records = _readable_records(report)
  if kept < batch_size:
    raise BadRecordsError('--data: only %d readable record(s) in %s, fewer '
                          'than --batch_size=%d' % (kept, data, batch_size))
  dataset = example_stream(records, kept, seed, first_example)
  dataset = dataset.map(
      lambda r: face_records.decode(r, image_size, with_shapes),
      num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size, drop_remainder=True).prefetch(2), files
