"""Pure customer-base analytics: summaries, KPIs, RFM, cohorts and CLV models.

This package never imports Django (an import-linter contract and a test enforce it). It takes a
transactions table (pandas, Arrow or a CSV path) and returns plain tables and numbers.
"""
