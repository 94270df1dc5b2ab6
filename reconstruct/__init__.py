"""The reconstruct command: photos in; meshes, maps and pictures out.

It composes the stages and holds no stage code:
  pipeline.py  photo -> face crop and landmarks (preprocess/) -> coarse
               coefficients (coarse/: network or fit) -> displacement map
               (detail/: RI2ITN or fit) -> meshes and renders, in batches;
  outputs.py   the files written per face;
  command.py   the command line (`reconstruct`, `python -m reconstruct`).
"""

import os

# The coarse fit (coarse/landmark_fit.py) solves many small (~150 x 150)
# linear systems with NumPy and SciPy. OpenBLAS's worker threads gain nothing
# at these sizes and, beside TensorFlow's thread pool on a few busy cores,
# spin: on the 2-core machine (load ~8) the coarse fit took 7 s per photo
# with OpenBLAS's default threads and 0.7 s with one. Set before NumPy is
# first imported (this package is imported before reconstruct.command); an
# OPENBLAS_NUM_THREADS already in the environment wins.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
