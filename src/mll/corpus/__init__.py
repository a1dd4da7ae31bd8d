"""The corpus stage: real images attached to graph nodes, in three disjoint roles.

``build(hub_dir, CorpusConfig())`` renders the installed sources into ``<hub>/corpus``;
``Corpus.open(hub_dir)`` reads it; ``import_folder`` adds a user's ImageNet-style folder tree.
"""

from .builder import BuildReport, build
from .config import CorpusConfig
from .corpus import Corpus, SourceSummary
from .records import ROLES, ImageRecord

__all__ = ["ROLES", "BuildReport", "Corpus", "CorpusConfig", "ImageRecord", "SourceSummary",
           "build"]
