"""``bigdl.nn.criterion``: BigDL's criteria as ember losses (see ``ember.zoo.bigdl.criterion``)."""
from ember.zoo.bigdl.criterion import BCECriterion, ClassNLLCriterion, CrossEntropyCriterion, MSECriterion

__all__ = ["BCECriterion", "ClassNLLCriterion", "CrossEntropyCriterion", "MSECriterion"]
