"""Campaigns: one-off or scheduled sends to a saved segment, with A/B variants.

A Django app of its own (label `campaigns`) inside the messaging package, so its tables and
migrations evolve apart from the outbox's; see docs/decisions.md.
"""
