"""Names for the identifiers that flow between stages."""

from typing import NewType

Wnid = NewType("Wnid", str)  # WordNet noun synset id, e.g. "n02084071" (ImageNet's convention)
ModelId = NewType("ModelId", str)  # hub model id: a prefix of the model's content hash
Digest = NewType("Digest", str)  # hex sha256 of an artifact's bytes
