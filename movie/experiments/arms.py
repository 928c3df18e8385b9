"""Who sees which model: an experiment's arms, checked, and the arm of a visitor.

`arm_for(visitor, experiment)` hashes (experiment name, visitor id) with SHA-256 onto [0, 1)
and picks the arm whose slice of the cumulative weights holds the point. Stable for a visitor
(no state is stored), independent between experiments (the name is hashed too), and it survives
sign-up because the new account adopts the session's visitor id (`movie.tracking.accounts`).
With no experiment running every visitor gets DEFAULT_ARM (`selectors.visitor_arm`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from movie.experiments.models import Experiment

# What a visitor gets when no experiment runs: the model the home row showed before
# experiments existed.
DEFAULT_ARM = "lightgcn"


@dataclass(frozen=True)
class Arm:
    model: str
    weight: float


def arms_validate(raw) -> list[Arm]:
    """An experiment's `arms` JSON as Arms; ValidationError with a sentence an editor can act on."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError('Arms must be a non-empty list like [{"model": "lightgcn", "weight": 1}].')
    arms: list[Arm] = []
    for number, arm in enumerate(raw, start=1):
        if not isinstance(arm, dict) or set(arm) != {"model", "weight"}:
            raise ValidationError(f'Arm {number} must be an object with exactly "model" and "weight".')
        model, weight = arm["model"], arm["weight"]
        if model not in settings.RECOMMENDATION_MODELS:
            raise ValidationError(
                f"Arm {number}: unknown model {model!r}; "
                f"choose from {', '.join(settings.RECOMMENDATION_MODELS)}."
            )
        if any(a.model == model for a in arms):
            raise ValidationError(
                f"Arm {number}: model {model!r} is already an arm; each model may appear once."
            )
        if (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
                or weight <= 0):
            raise ValidationError(f"Arm {number} ({model}): the weight must be a positive number.")
        arms.append(Arm(model, float(weight)))
    return arms



def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) fixed by `parts`: SHA-256, the same in every process and
    Python version (the built-in hash() is salted per process)."""
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2**53  # 53 bits: every value a float holds exactly


def arm_for(visitor_id: str, experiment: Experiment | None) -> str:
    """The model `visitor_id` is shown in `experiment` (DEFAULT_ARM when there is none).
    Arms take slices of [0, 1) in their listed order, each as wide as its share of the weights."""
    if experiment is None:
        return DEFAULT_ARM
    arms = arms_validate(experiment.arms)
    point = unit_hash(experiment.name, visitor_id) * sum(arm.weight for arm in arms)
    for arm in arms:
        point -= arm.weight
        if point < 0:
            return arm.model
    return arms[-1].model  # float rounding at the very top of the range
