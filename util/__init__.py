"""BigDL's ``bigdl.util`` for BigDL scripts: ``ember.util.common``."""
from ember.util import common

__all__ = ["common"]
