"""The model factory: one model's assets from its registry entry. Adding a model = editing YAML."""

from __future__ import annotations

import dagster as dg

from assets.drift import build_drift_asset
from assets.eval_stats import build_eval_stats_asset
from assets.labels import build_labels_asset
from assets.ops_stats import build_ops_stats_asset
from assets.outcomes import build_outcomes_asset
from assets.predictions import build_predictions_asset, build_shadow_asset
from assets.profiles import build_profiles_asset
from assets.rolling_eval import build_rolling_eval_asset
from closedloop.core.specs import ModelSpec


def build_model_assets(model: ModelSpec) -> list[dg.AssetsDefinition]:
    # Shadow scores pair with the served ones on the request key; without one there is nothing to pair.
    shadow = [build_shadow_asset(model)] if model.pairing_key else []
    return shadow + [
        build_predictions_asset(model),
        build_labels_asset(model),
        build_ops_stats_asset(model),
        build_profiles_asset(model),
        build_drift_asset(model),
        build_outcomes_asset(model),
        build_eval_stats_asset(model),
        build_rolling_eval_asset(model),
    ]
