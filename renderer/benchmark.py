"""Times the rasterizer op on a BFM-sized mesh, against tensorflow-graphics.

Run `python -m renderer.benchmark` (after `pip install -e .`). The mesh is a
dense grid heightfield of 189 x 189 = 35,721 vertices and 70,688 triangles
(a BFM face has 35,709 / 70,789) covering 81% of the image. Figures, each the
median wall time of several runs in milliseconds:
  ours_fwd_<size>_b<batch>: renderer.rasterize_op.rasterize (ids, perspective
    barycentrics and depth for every pixel).
  ours_fwd_bwd_<size>_b<batch>: forward and backward of a loss on
    renderer.mesh_renderer.render_clip (op, differentiable barycentrics of
    renderer/interpolate.py, colour interpolation; gradients w.r.t. vertices
    and colours), in a tf.function.
  tfg_fwd_<size>_b<batch>: tensorflow-graphics' CPU rasterizer kernel
    (rasterize_triangles_{impl,op}.cc from its wheel, the tf_mesh_renderer
    kernel Chen20 uses), compiled here into a temporary folder with the
    tf.sysconfig flags and -O3 (its shipped library does not load on TF 2.21);
    one image per call, so batch 27 is 27 calls in one tf.function.
Batch-1 forward figures of ours and tfg are measured in alternating rounds
(fair under uneven machine load). The last line is ratio_vs_tfg_224_fwd: ours_fwd_224_b1
/ tfg_fwd_224_b1.
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from renderer import mesh_renderer
from renderer import rasterize_op

GRID = 189  # 35,721 vertices, 70,688 triangles.
SIZES = (224, 512)
BATCHES = (1, 27)
# Stop repeating a measurement after this many seconds (at least 3 runs).
SECONDS_PER_FIGURE = 4.0
MAX_RUNS = 15


def grid_mesh(batch, grid=GRID, extent=0.9, seed=0):
  """A heightfield over NDC [-extent, extent]^2 in front of the camera.

  Returns:
    clip_vertices [batch, grid^2, 4] float32 (w = 1, per-image random bumps
    so that images differ), triangles [2 (grid-1)^2, 3] int32 (CCW in NDC).
  """
  rng = np.random.RandomState(seed)
  coords = np.linspace(-extent, extent, grid)
  x, y = np.meshgrid(coords, coords)
  vertices = []
  for _ in range(batch):
    fx, fy, phase = rng.uniform(1.0, 4.0, 3)
    z = 0.4 * np.sin(fx * x + phase) * np.cos(fy * y)
    vertices.append(np.stack([x, y, z, np.ones_like(x)], -1).reshape(-1, 4))
  i, j = np.meshgrid(np.arange(grid - 1), np.arange(grid - 1))
  a = (j * grid + i).ravel()
  b, c, d = a + 1, a + grid + 1, a + grid
  triangles = np.concatenate([np.stack([a, b, c], -1),
                              np.stack([a, c, d], -1)]).astype(np.int32)
  return np.stack(vertices).astype(np.float32), triangles


def median_ms(*fns):
  """Median wall times of each fn() in milliseconds.

  Several functions are timed in alternating rounds (fair when other
  processes load the machine unevenly over time); each round runs a function
  once untimed (warm caches) and then `per_round` times timed.
  """
  per_round = 3 if len(fns) > 1 else 1
  for fn in fns:
    fn()
  times = [[] for _ in fns]
  start = time.perf_counter()
  while len(times[0]) < 3 or (
      len(times[0]) < MAX_RUNS and
      time.perf_counter() - start < SECONDS_PER_FIGURE * len(fns)):
    for fn, fn_times in zip(fns, times):
      if per_round > 1:
        fn()
      for _ in range(per_round):
        t0 = time.perf_counter()
        fn()
        fn_times.append(time.perf_counter() - t0)
  medians = [1000.0 * float(np.median(t)) for t in times]
  return medians[0] if len(fns) == 1 else medians


def build_tfg_rasterizer(folder):
  """Compiles tensorflow-graphics' CPU rasterizer; returns its op function."""
  import tensorflow_graphics  # pylint: disable=g-import-not-at-top
  kernels = os.path.join(os.path.dirname(tensorflow_graphics.__file__),
                         'rendering', 'kernels')
  sources = [os.path.join(kernels, name) for name in
             ('rasterize_triangles_impl.cc', 'rasterize_triangles_op.cc')]
  library = os.path.join(folder, 'tfg_rasterizer.so')
  command = (['g++', '-shared', '-fPIC', '-O3', '-w'] +
             tf.sysconfig.get_compile_flags() + sources + ['-o', library] +
             tf.sysconfig.get_link_flags())
  subprocess.run(command, check=True)
  return tf.load_op_library(library).rasterize_triangles


def main():
  print('tensorflow %s, %d CPU cores visible' % (tf.__version__,
                                                os.cpu_count()))
  results = {}

  def report(name, ms, note=''):
    results[name] = ms
    print('%s: %.2f ms%s' % (name, ms, note), flush=True)

  clip_all, triangles = grid_mesh(max(BATCHES))
  tris = tf.constant(triangles)
  print('mesh: %d vertices, %d triangles' % (clip_all.shape[1],
                                             triangles.shape[0]))
  folder = tempfile.mkdtemp()
  try:
    tfg_rasterize = build_tfg_rasterizer(folder)
  except (subprocess.CalledProcessError, OSError, ImportError,
          tf.errors.NotFoundError) as e:
    print('tfg rasterizer could not be built: %s' % e, file=sys.stderr)
    tfg_rasterize = None

  def tfg_images(clip, size):
    return [tfg_rasterize(clip[b], tris, image_width=size, image_height=size,
                          num_layers=1, face_culling_mode=0)[2]
            for b in range(clip.shape[0])]

  # Forward.
  for size in SIZES:
    for batch in BATCHES:
      clip = tf.constant(clip_all[:batch])
      if batch == 1:
        frags = rasterize_op.rasterize(clip, tris, (size, size))
        print('coverage_%d: %.3f' % (size, float(tf.reduce_mean(
            tf.cast(frags.triangle_ids >= 0, tf.float32)))))

      def ours(clip=clip, size=size):
        return rasterize_op.rasterize(clip, tris, (size, size)).depth.numpy()

      if batch == 1 and tfg_rasterize is not None:
        # Ours and tensorflow-graphics' kernel interleaved.
        def theirs(clip=clip, size=size):
          return [z.numpy() for z in tfg_images(clip, size)]

        ms, tfg_ms = median_ms(ours, theirs)
        report('ours_fwd_%d_b1' % size, ms)
        report('tfg_fwd_%d_b1' % size, tfg_ms)
        continue
      ms = median_ms(ours)
      note = ''
      if batch > 1:
        one = results['ours_fwd_%d_b1' % size]
        note = ' (%.2f ms per image; %.1f x one image)' % (ms / batch, ms / one)
      report('ours_fwd_%d_b%d' % (size, batch), ms, note)

  if tfg_rasterize is not None:
    batch, size = max(BATCHES), SIZES[0]
    clip = tf.constant(clip_all[:batch])
    tfg_batch = tf.function(lambda: tfg_images(clip, size))
    ms = median_ms(lambda: [z.numpy() for z in tfg_batch()])
    report('tfg_fwd_%d_b%d' % (size, batch), ms,
           ' (one call per image in a tf.function; %.1f x one image)' %
           (ms / results['tfg_fwd_%d_b1' % size]))

  # Forward and backward through the differentiable renderer.
  colors = tf.constant(np.random.RandomState(1).rand(
      *clip_all.shape[:2], 3).astype(np.float32))
  for size in SIZES:
    for batch in BATCHES:
      clip = tf.Variable(clip_all[:batch])
      attrs = tf.Variable(colors[:batch])
      weights = tf.constant(np.random.RandomState(2).rand(
          batch, size, size, 3).astype(np.float32))

      @tf.function
      def forward_backward(clip=clip, attrs=attrs, weights=weights,
                           size=size):
        with tf.GradientTape() as tape:
          image = mesh_renderer.render_clip(clip, triangles, attrs,
                                            (size, size),
                                            cull_backfaces=False).image
          loss = tf.reduce_sum(image * weights)
        return tape.gradient(loss, [clip, attrs])

      ms = median_ms(lambda: [g.numpy() for g in forward_backward()])  # pylint: disable=cell-var-from-loop
      note = ''
      if batch > 1:
        one = results['ours_fwd_bwd_%d_b1' % size]
        note = ' (%.2f ms per image; %.1f x one image)' % (ms / batch, ms / one)
      report('ours_fwd_bwd_%d_b%d' % (size, batch), ms, note)

  if tfg_rasterize is None:
    print('ratio_vs_tfg_224_fwd: nan')
  else:
    print('ratio_vs_tfg_224_fwd: %.3f' %
          (results['ours_fwd_224_b1'] / results['tfg_fwd_224_b1']))


if __name__ == '__main__':
  main()
