"""bfm: the 3D morphable face model (shape, expression, albedo bases, topology,
landmarks, UVs, masks).

    import bfm
    model = bfm.load('synthetic')   # or 'sfm', 'ict', or a converted .npz
    verts = model.vertices(id_coeff, exp_coeff)   # [B, N, 3] mm
    model, line = bfm.resolve_model(None)   # best model present + a line

`python -m bfm.fetch sfm` fetches the Surrey Face Model (bfm/fetch.py).

See bfm/README.md for the model file format and the converters
(`python -m bfm.convert`), and bfm/morphable_model.py for the attributes.
The built-in 'synthetic' model is procedural, not a statistical face prior.
"""

from bfm.loader import default_data_dir
from bfm.loader import load
from bfm.loader import models_dir
from bfm.loader import resolve_model
from bfm.morphable_model import ModelFormatError
from bfm.morphable_model import MorphableModel
