"""Migrations of the serve stage: its tables in the hub database (collected by the hub store)."""
