"""The benchmark stage: the papers' claims measured on the corpus ``eval`` role."""

from .report import write_results
from .runner import BenchConfig, run_bench
from .tasks import EvalTask, standard_tasks

__all__ = ["BenchConfig", "EvalTask", "run_bench", "standard_tasks", "write_results"]
