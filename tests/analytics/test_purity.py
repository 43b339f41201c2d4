"""The analytics library stays pure: importing all of it loads no web framework."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
import vafa.analytics as package
names = [package.__name__] + [
    module.name for module in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in ("django", "ninja", "huey") if m in sys.modules)
print(json.dumps({"modules": names, "loaded": loaded}))
"""


def test_importing_every_analytics_module_loads_no_django() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    # the probe really walked the package, sub-packages (clv) included
    assert {"vafa.analytics.io", "vafa.analytics.metrics", "vafa.analytics.clv"} <= set(
        report["modules"]
    )
    assert report["loaded"] == [], f"vafa.analytics imported {report['loaded']}"
