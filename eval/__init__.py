"""eval: NME (FG 2018) and MICC point-to-point evaluation protocols, dataset loaders, tables."""
