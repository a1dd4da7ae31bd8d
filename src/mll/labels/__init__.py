"""The labelling stage: what every model does on the graph's sample images, stored once.

``label_hub(hub_dir)`` fills in what is missing; ``LabelStore`` reads published labels;
``mll.labels.summaries`` writes and reads each model's ``LabelSummary`` row in the hub database
(not imported here, so importing this stage loads neither SQLAlchemy nor the hub).
"""

from .engine import LabelReport, label_hub
from .stats import auroc
from .store import LabelStore, Outputs, read_outputs, read_stats, read_summary

__all__ = ["LabelReport", "LabelStore", "Outputs", "auroc", "label_hub",
           "read_outputs", "read_stats", "read_summary"]
