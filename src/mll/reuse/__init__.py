"""The reuse stage: the selected models combined into one predictor for the task."""

from .predictor import TaskPredictor, load_predictor
from .solve import SolveResult, solve

__all__ = ["SolveResult", "TaskPredictor", "load_predictor", "solve"]
