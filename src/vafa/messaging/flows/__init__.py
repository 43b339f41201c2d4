"""Lifecycle flows: triggered, per-customer message sequences (welcome, thank-you, win-back, …).

A Django app of its own (label `flows`) inside the messaging package, so its tables and
migrations evolve apart from the outbox's; see docs/decisions.md.
"""
