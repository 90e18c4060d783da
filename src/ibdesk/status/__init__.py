"""Guardrails for a desk left running: backups of the data root (status and alerts follow)."""
