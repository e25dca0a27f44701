"""Optimization: update rules, learning-rate schedules, triggers, validation methods, checkpoints,
summaries and the training loop (BigDL names)."""
from ember.optim.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ember.optim.clipping import clip_by_global_norm, clip_by_value
from ember.optim.dataset import ArrayDataset
from ember.optim.loop import TrainingDivergedError, TrainingLoop, predict_arrays
from ember.optim.methods import (
    LBFGS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    OptimMethod,
    RMSprop,
    adadelta_update,
    adagrad_update,
    adam_update,
    adamax_update,
    lbfgs_optimize,
    rmsprop_update,
    sgd_update,
)
from ember.optim.optimizer import DistriOptimizer, LocalOptimizer, Optimizer
from ember.optim.schedules import (
    Cosine,
    Default,
    Exponential,
    LearningRateSchedule,
    MultiStep,
    Plateau,
    Poly,
    SequentialSchedule,
    Step,
    Warmup,
)
from ember.optim.summary import TrainSummary, ValidationSummary
from ember.optim.triggers import (
    EveryEpoch,
    MaxEpoch,
    MaxIteration,
    MaxScore,
    MinLoss,
    SeveralIteration,
    Trigger,
    TriggerAnd,
    TriggerOr,
)
from ember.optim.validation import AUC, MAE, MSE, Loss, Top1Accuracy, Top5Accuracy, ValidationMethod

__all__ = [
    "AUC", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "ArrayDataset", "Cosine", "Default", "DistriOptimizer",
    "EveryEpoch", "Exponential", "LBFGS", "LearningRateSchedule", "LocalOptimizer", "Loss", "MAE", "MSE", "MaxEpoch",
    "MaxIteration", "MaxScore", "MinLoss", "MultiStep", "OptimMethod", "Optimizer", "Plateau", "Poly", "RMSprop",
    "SGD", "SequentialSchedule", "SeveralIteration", "Step", "Top1Accuracy", "Top5Accuracy", "TrainSummary",
    "TrainingDivergedError", "TrainingLoop", "Trigger", "TriggerAnd", "TriggerOr", "ValidationMethod",
    "ValidationSummary", "Warmup", "adadelta_update", "adagrad_update", "adam_update", "adamax_update",
    "clip_by_global_norm", "clip_by_value", "latest_checkpoint", "lbfgs_optimize", "load_checkpoint",
    "predict_arrays", "rmsprop_update", "save_checkpoint", "sgd_update",
]
