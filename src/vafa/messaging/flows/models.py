"""Flow definitions, steps and per-customer enrolments."""
