"""Customer lifetime value: purchase models (BG/NBD, MBG/NBD, Pareto/NBD), the Gamma-Gamma spend
model, discounted CLV, and holdout comparison of models."""

from .base import CLVFitter, TransactionFitter
from .bgnbd import BetaGeoFitter, ModifiedBetaGeoFitter
from .compare import HoldoutComparison, compare_models, holdout_comparison, select_best_model
from .gamma_gamma import GammaGammaFitter
from .pareto_nbd import ParetoNBDFitter

__all__ = [
    "BetaGeoFitter",
    "CLVFitter",
    "GammaGammaFitter",
    "HoldoutComparison",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "TransactionFitter",
    "compare_models",
    "holdout_comparison",
    "select_best_model",
]
