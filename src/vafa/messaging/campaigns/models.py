"""Campaigns, their variants and recipients."""
