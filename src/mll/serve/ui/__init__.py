"""The web UI of ``mll serve``: server-rendered pages (``routes``), templates and static files."""
