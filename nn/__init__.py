"""BigDL's ``bigdl.nn`` for BigDL scripts: ``ember.nn.layer`` and ``ember.nn.criterion``."""
from ember.nn import criterion, layer

__all__ = ["criterion", "layer"]
