"""Hand-written reference lists for the synthetic shop generator (names, places, catalogue).

Plain Python data, no logic beyond small lookups, so the generator stays free of Django and of file
reads at import time.
"""
