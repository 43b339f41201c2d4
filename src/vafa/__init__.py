"""Vafa: customer retention and loyalty platform for online shops.

Importing this package is cheap on purpose: the CLI, the Django project and the pure analytics
library all start here, so nothing heavy is imported at module level.
"""

__version__ = "0.1.0"
