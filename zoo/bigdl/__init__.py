"""BigDL's Python surface (``bigdl.nn.layer``, ``bigdl.nn.criterion``, ``bigdl.util.common``) as thin
wrappers over ember's layers, losses and optimizers; reached as ``ember.nn`` and ``ember.util``."""
