"""The reconstruct command: photos in; meshes, maps and pictures out.

It composes the stages and holds no stage code:
  pipeline.py  photo -> face crop and landmarks (preprocess/) -> coarse
               coefficients (coarse/: network or fit) -> displacement map
               (detail/: RI2ITN or fit) -> meshes and renders, in batches;
  outputs.py   the files written per face;
  command.py   the command line (`reconstruct`, `python -m reconstruct`).
"""
