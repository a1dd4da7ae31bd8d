"""Selection methods, one module per family; importing registers them."""

from . import baselines, chco, modelgpt, p2  # noqa: F401
