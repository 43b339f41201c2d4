"""Benchmark: fit BG/NBD and Pareto/NBD on a million synthetic customers, ours against lifetimes.

    .venv/bin/python benchmarks/clv_bench.py [--customers 1000000] [--seed 7]
        [--lifetimes-python /tmp/lt-venv/bin/python] [--lifetimes-customers N]
        [--lifetimes-models bgnbd,pareto] [--lifetimes-cache benchmarks/out/lifetimes.json]

Data: customers join on whole days spread over two years before the end of observation, buy as a
Poisson process while active (λ ~ Gamma(r=0.25, α=30 days)) and drop out after each repeat
purchase with probability p ~ Beta(0.8, 2.4) — CDNOW's BG/NBD estimates in days. Purchase times
are rounded down to days and purchases on one day merged, as in a shop's daily summary, so many
customers share the same (frequency, recency, T) row: exactly what our fitters exploit by fitting
on weighted unique rows.

lifetimes 0.11.3 is not a dependency of this project and this script installs nothing. If it
cannot be imported here, pass ``--lifetimes-python`` with an interpreter that has it (it needs
older numpy/pandas: e.g. ``python3 -m venv /tmp/lt-venv && /tmp/lt-venv/bin/pip install
lifetimes==0.11.3 "numpy<2" "scipy<1.12" "pandas<2.1"``); the script then runs lifetimes in that
interpreter as a subprocess on the same data. lifetimes gets the raw customer rows, as its
documentation uses it. Times are CPU seconds of the fitting process (``time.process_time``), so
other work on a shared machine does not distort them; "their LL" is our log-likelihood evaluated at lifetimes' parameters (its
own reported value is on a rescaled time axis), so the two LL columns are directly comparable.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vafa.analytics.clv import BetaGeoFitter, ParetoNBDFitter, TransactionFitter

MODELS: dict[str, type[TransactionFitter]] = {"bgnbd": BetaGeoFitter, "pareto": ParetoNBDFitter}
LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD"}


def simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency, T) in whole days for ``n`` BG/NBD customers."""
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 731, size=n).astype(np.float64)  # joined 1..730 days before the end
    rate = rng.gamma(shape=0.25, scale=1.0 / 30.0, size=n)  # purchases per day
    drop = rng.beta(0.8, 2.4, size=n)
    frequency = np.zeros(n)
    last_day = np.zeros(n)  # the first purchase is on day 0 of each customer's life
    clock = np.zeros(n)
    active = np.arange(n)
    while active.size:
        clock[active] += rng.exponential(1.0, size=active.size) / rate[active]
        bought = clock[active] <= age[active]
        active = active[bought]
        # purchases on a day that already has one merge into it, as in a shop's daily summary
        day = np.floor(clock[active])
        new_day = day > last_day[active]
        frequency[active] += new_day
        last_day[active] = day
        survives = rng.random(active.size) >= drop[active]
        active = active[survives]
    return frequency, last_day, age


def fit_ours(
    name: str, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> tuple[float, dict[str, float], float]:
    """CPU seconds (this process, all threads), parameters and log-likelihood of our fit."""
    started = time.process_time()
    model = MODELS[name]().fit(frequency, recency, age)
    return time.process_time() - started, model.params_, model.log_likelihood_


_LIFETIMES_RUNNER = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter, ParetoNBDFitter
data = np.load(sys.argv[1])
out = {}
for name in sys.argv[2].split(","):
    fitter = {"bgnbd": BetaGeoFitter, "pareto": ParetoNBDFitter}[name]()
    started = time.process_time()
    try:
        fitter.fit(data["frequency"], data["recency"], data["T"])
        out[name] = {"seconds": time.process_time() - started,
                     "params": {k: float(v) for k, v in fitter.params_.items()}}
    except Exception as error:  # report, do not hide: the table shows it
        out[name] = {"seconds": time.process_time() - started, "error": repr(error)[:200]}
print(json.dumps(out))
"""


def run_lifetimes(
    python: str | None,
    names: list[str],
    frequency: np.ndarray,
    recency: np.ndarray,
    age: np.ndarray,
    cache: Path | None = None,
) -> dict[str, Any] | str:
    """lifetimes' timings and parameters, or a sentence saying why there are none.

    With ``cache``, results saved by an earlier run on the same data are reused (lifetimes'
    Pareto/NBD fit on a million customers takes many minutes); new results are saved there.
    """
    fingerprint = f"{len(frequency)}:{frequency.sum():.0f}:{recency.sum():.6g}:{age.sum():.6g}"
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("data") == fingerprint and all(n in saved for n in names):
            print(f"lifetimes results reused from {cache}")
            return {n: saved[n] for n in names}
    result = _run_lifetimes(python, names, frequency, recency, age)
    if cache is not None and isinstance(result, dict):
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"data": fingerprint, **result}))
    return result


def _run_lifetimes(
    python: str | None,
    names: list[str],
    frequency: np.ndarray,
    recency: np.ndarray,
    age: np.ndarray,
) -> dict[str, Any] | str:
    interpreter = python
    if interpreter is None:
        try:
            import lifetimes  # noqa: F401
        except ImportError:
            return "lifetimes not installed: pip install lifetimes==0.11.3 into a separate venv"
        interpreter = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summary.npz"
        np.savez(path, frequency=frequency, recency=recency, T=age)
        completed = subprocess.run(
            [interpreter, "-c", _LIFETIMES_RUNNER, str(path), ",".join(names)],
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        return f"lifetimes run failed: {completed.stderr.strip()[-500:]}"
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lifetimes-python", default=None, help="interpreter with lifetimes")
    parser.add_argument(
        "--lifetimes-customers",
        type=int,
        default=None,
        help="fit lifetimes on the first N customers only (ours is then timed on the same N too)",
    )
    parser.add_argument("--lifetimes-models", default="bgnbd,pareto")
    parser.add_argument(
        "--lifetimes-cache", type=Path, default=None, help="JSON file to reuse lifetimes' results"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    frequency, recency, age = simulate(args.customers, args.seed)
    rows = len(
        np.unique(np.stack([frequency, recency, age], axis=1), axis=0)
        if args.customers <= 2_000_000
        else frequency
    )
    print(
        f"simulated {args.customers:,} customers in {time.perf_counter() - started:.1f}s: "
        f"{np.mean(frequency > 0):.1%} repeat buyers, {rows:,} distinct (x, t_x, T) rows"
    )

    ours = {name: fit_ours(name, frequency, recency, age) for name in MODELS}
    names = [n for n in args.lifetimes_models.split(",") if n in MODELS]
    n_lt = args.lifetimes_customers or args.customers
    subset = slice(0, n_lt)
    ours_subset = (
        ours
        if n_lt == args.customers
        else {n: fit_ours(n, frequency[subset], recency[subset], age[subset]) for n in names}
    )
    theirs = run_lifetimes(
        args.lifetimes_python,
        names,
        frequency[subset],
        recency[subset],
        age[subset],
        args.lifetimes_cache,
    )

    header = (
        f"{'model':<11} {'customers':>10} {'ours (cpu s)':>12} {'lifetimes (cpu s)':>17} {'speed-up':>9} "
        f"{'our LL':>16} {'their LL':>16} {'rel. LL diff':>13}"
    )
    print(header)
    print("-" * len(header))
    for name in MODELS:
        seconds, _, ll = ours[name]
        line = f"{LABELS[name]:<11} {args.customers:>10,} {seconds:>12.2f}"
        if isinstance(theirs, str) or name not in theirs:
            print(f"{line} {'-':>17} {'-':>9} {ll:>16.2f} {'-':>16} {'-':>13}")
            continue
        if n_lt != args.customers:
            seconds, _, ll = ours_subset[name]
            print(f"{line}  (all customers)")
            line = f"{LABELS[name]:<11} {n_lt:>10,} {seconds:>12.2f}"
        result = theirs[name]
        if "error" in result:
            print(f"{line} {result['seconds']:>17.2f} {'failed':>9}  {result['error']}")
            continue
        their_ll = (
            MODELS[name]
            .from_params(result["params"])
            .log_likelihood(frequency[subset], recency[subset], age[subset])
        )
        speed_up = result["seconds"] / seconds
        relative = (ll - their_ll) / abs(their_ll)
        print(
            f"{line} {result['seconds']:>17.2f} {speed_up:>8.1f}x {ll:>16.4f} "
            f"{their_ll:>16.4f} {relative:>13.2e}"
        )
    if isinstance(theirs, str):
        print(theirs)
    for name in MODELS:
        shown = ", ".join(f"{k}={v:.5g}" for k, v in ours[name][1].items())
        print(f"ours  {LABELS[name]:<11} {shown}")
        if isinstance(theirs, dict) and "params" in theirs.get(name, {}):
            shown = ", ".join(f"{k}={v:.5g}" for k, v in theirs[name]["params"].items())
            print(f"theirs {LABELS[name]:<10} {shown}")


if __name__ == "__main__":
    main()
