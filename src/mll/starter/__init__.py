"""The starter hub: a seeded, cached hub of real experts and VLMs, labelled and ready to select from.

``build_starter(hub_dir, quick=False)`` builds what is missing and returns a ``StarterReport``;
``mll starter`` is its command line. See docs/starter.md.
"""

from .build import ModelEntry, StarterReport, build_starter
from .plan import StarterPlan, full_plan, quick_plan, starter_plan

__all__ = ["ModelEntry", "StarterPlan", "StarterReport", "build_starter", "full_plan",
           "quick_plan", "starter_plan"]
