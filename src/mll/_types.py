"""The WordNet node id every stage exchanges, and the one rule that recognises it."""

from __future__ import annotations

import re

# "n" plus the synset's 8-digit offset in WordNet 3.0's data.noun (ImageNet's convention)
WNID = re.compile(r"^n\d{8}$")


def is_wnid(value: object) -> bool:
    """Whether ``value`` is a WordNet noun id such as ``n02084071``."""
    return isinstance(value, str) and WNID.match(value) is not None
