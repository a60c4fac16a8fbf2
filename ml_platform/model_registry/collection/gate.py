"""The promotion gate of collection classifiers: out-of-fold AP against the champion's AP on
the same images, plus sanity checks.

Pure functions: no MLflow calls. The protocol expected by `decide_promotion` is that both
evaluations were made on the same labelled images (same n_pos and n_neg): the champion with
`learning.evaluation.evaluate_on`, the challenger from its out-of-fold predictions
(`TrainingResult.out_of_fold`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from ml_platform.learning.evaluation import Evaluation
from ml_platform.model_registry.aliases import FLOAT_SLACK, PromotionDecision

MAX_WALK_DEPTH = 8
# The AP the gate compares: one AP over the pooled out-of-fold predictions (MLflow tag
# cv_oof_average_precision). Not the mean of the per-fold APs (cv_average_precision_mean),
# which picks the winning candidate and is usually a little higher.
OOF_AP = "out-of-fold AP"


def decide_promotion(
    champion: Evaluation | None,
    challenger: Evaluation,
    tolerance: float,
    sanity: Sequence[str],
) -> PromotionDecision:
    """Promote when sanity passes and the challenger's AP is not worse by more than tolerance.

    `sanity` is the list of problems from `sanity_check` (empty = sane).
    """
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    if sanity:
        return PromotionDecision(False, "challenger failed sanity checks: " + "; ".join(sanity))
    challenger_ap = challenger.average_precision
    if champion is None:
        return PromotionDecision(
            True, f"first champion (none to compare with); challenger {OOF_AP} {challenger_ap:.4f}"
        )
    _require_same_protocol(champion, challenger)
    gap = champion.average_precision - challenger_ap
    comparison = (
        f"challenger {OOF_AP} {challenger_ap:.4f} vs champion AP {champion.average_precision:.4f} "
        "on the same images "
        f"(tolerance {tolerance:.4f}, n_pos={challenger.n_pos}, n_neg={challenger.n_neg})"
    )
    if gap > tolerance + FLOAT_SLACK:
        return PromotionDecision(False, f"challenger is worse: {comparison}")
    return PromotionDecision(True, f"challenger is not worse: {comparison}")


def sanity_check(
    estimator: object,
    dimensionality: int,
    expected_dim: int,
    n_pos: int,
    n_neg: int,
    min_pos: int,
    min_neg: int,
) -> list[str]:
    """Problems that make a model unfit to serve; an empty list means it passed.

    Checks: every fitted numeric parameter is finite; the model's input width equals the
    embedder's dimensionality; the training data had enough positives and negatives.
    """
    problems: list[str] = []
    if dimensionality != expected_dim:
        problems.append(
            f"model dimensionality {dimensionality} != embedder dimensionality {expected_dim}"
        )
    problems.extend(parameter_problems(estimator, dimensionality))
    if n_pos < min_pos:
        problems.append(f"only {n_pos} positives (minimum {min_pos})")
    if n_neg < min_neg:
        problems.append(f"only {n_neg} negatives (minimum {min_neg})")
    return problems


def parameter_problems(estimator: object, dimensionality: int) -> list[str]:
    """Problems with a fitted estimator itself: input width and non-finite parameters."""
    problems: list[str] = []
    width = input_width(estimator)
    if width is None:
        problems.append("cannot tell the estimator's input width (no n_features_in_ or coef_)")
    elif width != dimensionality:
        problems.append(
            f"estimator input width {width} != declared dimensionality {dimensionality}"
        )
    leaves = _numeric_leaves(estimator, "model")
    non_finite = [path for path, values in leaves if not _finite(values)]
    if non_finite:
        problems.append(f"non-finite parameters in {', '.join(non_finite[:5])}")
    return problems


def input_width(estimator: object) -> int | None:
    """The number of input features a fitted scikit-learn estimator expects, if it says."""
    width = getattr(estimator, "n_features_in_", None)
    if width is not None:
        return int(width)
    coef = getattr(estimator, "coef_", None)
    if coef is not None:
        return int(np.atleast_2d(np.asarray(coef)).shape[1])
    return None


def _require_same_protocol(champion: Evaluation, challenger: Evaluation) -> None:
    if (champion.n_pos, champion.n_neg) != (challenger.n_pos, challenger.n_neg):
        raise ValueError(
            f"champion and challenger were evaluated on different data (champion n_pos="
            f"{champion.n_pos}, n_neg={champion.n_neg}; challenger n_pos={challenger.n_pos}, "
            f"n_neg={challenger.n_neg}); evaluate both on the same labelled images"
        )


def _finite(values: np.ndarray) -> bool:  # type: ignore[type-arg]
    return bool(np.isfinite(values).all())


def _numeric_leaves(obj: object, path: str, depth: int = 0) -> Iterator[tuple[str, np.ndarray]]:  # type: ignore[type-arg]
    """Float arrays and scalars inside a fitted scikit-learn object, with a readable path."""
    if depth > MAX_WALK_DEPTH:
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            yield path, obj
    elif isinstance(obj, float | np.floating):
        yield path, np.asarray(obj)
    elif isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            yield from _numeric_leaves(item, f"{path}[{index}]", depth + 1)
    elif type(obj).__module__.startswith("sklearn."):
        for key, value in vars(obj).items():
            if not key.startswith("_"):
                yield from _numeric_leaves(value, f"{path}.{key}", depth + 1)
