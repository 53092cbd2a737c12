"""Simulated traffic of the ``ticket_triage`` model (LLM urgency classifier with a rules fallback).

The service logs under its own column names (``request_id``, ``created_at``, ``p_urgent``,
``is_urgent``, ``reviewed_at``); the registry's ``columns:`` maps them to closedloop's names.

Ground truth: an urgency logit made of the logged features plus a "text urgency" the LLM reads
from the ticket (not logged) and an unobserved part. ``p_urgent`` is the LLM's calibrated
estimate (noisier for the small model); the rules fallback sees the logged features only and
decides by rule. During ``triage_concept_drift`` the truth rotates away from what the model
learned (variance preserved, so the urgent rate stays put while ROC AUC ramps down).

Two changes are no fault (``CLEAN_SCENARIOS``): weekends bring fewer tickets and another mix of
products and plans (``triage_weekly_seasonality``), and from day 21 v4, the same scores decided at
its own threshold, serves a random share of tickets (``triage_v4_canary``), drawn from the day's
split stream so every other draw of the day stays as it was.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from closedloop.simulator import sampling as s
from closedloop.simulator.landing import ModelGenerator

MODEL = "ticket_triage"
MODEL_INDEX = 1
VERSION, CANARY_VERSION = "v3", "v4"
THRESHOLD = 0.6

# --- volume ------------------------------------------------------------------------------------
WEEKDAY_FACTORS = (1.10, 1.10, 1.08, 1.05, 1.00, 0.55, 0.50)  # Monday first
VOLUME_JITTER = 0.04
HOUR_WEIGHTS = 0.08 + np.exp(-0.5 * ((np.arange(24) + 0.5 - 13.5) / 3.0) ** 2)  # business hours

# --- categories: (value, share, urgency offset) -----------------------------------------------
PRODUCTS = (
    ("billing", 0.22, 0.3),
    ("login", 0.15, 0.5),
    ("outage", 0.06, 1.8),
    ("api", 0.12, 0.6),
    ("integrations", 0.10, 0.0),
    ("mobile_app", 0.12, -0.2),
    ("data_export", 0.08, -0.3),
    ("account", 0.15, -0.6),
)
LANGUAGES = (
    ("en", 0.55, 0.0),
    ("es", 0.12, 0.0),
    ("de", 0.10, 0.1),
    ("fr", 0.09, 0.0),
    ("pt", 0.08, -0.1),
    ("ja", 0.06, 0.1),
)
PLAN_TIERS = (("free", 0.60, -0.5), ("pro", 0.30, 0.2), ("enterprise", 0.10, 1.0))
CHANNELS = (("email", 0.50, -0.3), ("chat", 0.35, 0.1), ("phone", 0.15, 0.8))

# --- routing, latency, cost ---------------------------------------------------------------------
ROUTES = ("llm_large", "llm_small", "rules")
LARGE_SHARE = 0.73  # of calls not falling back
FALLBACK_RATE = 0.02  # calls sent to the rules fallback without an error
RATE_LIMITED_RATE = 0.002  # calls failing fast with "rate_limited" (served by the fallback)
TIMEOUT_RATE = 0.003  # calls timing out at TIMEOUT_MS (served by the fallback)
TIMEOUT_MS = 15_000.0
LATENCY = {"llm_large": (1_200.0, 0.446), "llm_small": (450.0, 0.45), "rules": (5.0, 0.3)}
RATE_LIMIT_LATENCY = (40.0, 0.3)  # (median ms, sigma) before falling back
QUEUE_SIGMA = 0.2  # spread of the queueing factor during a traffic spike
SYSTEM_PROMPT_TOKENS = 600
OUTPUT_TOKENS = (50, 40)  # fixed + Poisson mean
PRICE_PER_MTOK = {"llm_large": (3.0, 15.0), "llm_small": (0.6, 2.4)}  # $ per 1M (input, output)

# --- ground truth -------------------------------------------------------------------------------
INTERCEPT = -3.7
TEXT_WEIGHT = 2.3  # weight of the text urgency the LLM reads
HIDDEN_SD = 0.6
CALIBRATION = 1.0 / np.sqrt(1.0 + np.pi * HIDDEN_SD**2 / 8.0)
SCORE_NOISE_SD = {"llm_large": 0.25, "llm_small": 0.6}
# Mean and spread of the model-visible logit (without intercept), used to rotate the truth
# during concept drift without changing its variance.
VISIBLE_MEAN = 0.2
VISIBLE_SD = 2.5

# --- labels (human review) ----------------------------------------------------------------------
REVIEW_RATE = 0.85
REVIEW_DELAY_DAYS = (1.0, 3.0)  # min, max; skewed towards the minimum
REVIEW_DELAY_BETA = (1.5, 3.0)
BACKLOG_HOURS = (6, 10)  # the backlog of a label outage lands between these UTC hours

NUMERIC_FEATURES = ("ticket_tokens", "customer_tenure_days", "prior_tickets_30d")
CATEGORICAL_FEATURES = ("product", "language")
SEGMENTS = ("plan_tier", "channel")


def _values(table: tuple) -> list[str]:
    return [row[0] for row in table]


def _shares(table: tuple, shares: tuple[float, ...]) -> tuple:
    """A (value, share, offset) table with other shares: the same values, as often as ``shares`` say."""
    return tuple((value, share, offset) for (value, _, offset), share in zip(table, shares, strict=True))


def _draw(rng: np.random.Generator, n: int, table: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Indices drawn from a (value, share, offset) table, and their offsets."""
    idx = s.categorical(rng, n, [row[1] for row in table])
    return idx, np.array([row[2] for row in table])[idx]


class TicketTriageGenerator(ModelGenerator):
    model = MODEL
    model_index = MODEL_INDEX
    label_columns = ("request_id", "is_urgent", "reviewed_at")

    def simulate_day(self, day: int) -> None:
        rng = self.rng(day)
        date = self.date(day)
        n_base = s.daily_volume(rng, self.rows_per_day, date, WEEKDAY_FACTORS, VOLUME_JITTER)

        spike = self.incidents.active("triage_traffic_spike", day)
        weights = HOUR_WEIGHTS.copy()
        if spike is not None:
            assert spike.hours is not None  # the traffic spike is scheduled by the hour
            h0, h1 = spike.hours
            weights[h0:h1] *= spike.params["traffic_factor"]
        n = round(n_base * weights.sum() / HOUR_WEIGHTS.sum())
        ts = s.diurnal_timestamps(rng, n, date, weights)
        in_spike = np.zeros(n, dtype=bool)
        if spike is not None:
            hour = s.hour_of(ts)
            in_spike = (hour >= h0) & (hour < h1)

        # features
        weekly = self.incidents.clean("triage_weekly_seasonality", day)
        products, plans = PRODUCTS, PLAN_TIERS
        if weekly is not None and date.weekday() in weekly.params["weekend_days"]:
            products = _shares(PRODUCTS, weekly.params["product_shares"])
            plans = _shares(PLAN_TIERS, weekly.params["plan_shares"])
        product, product_off = _draw(rng, n, products)
        language, language_off = _draw(rng, n, LANGUAGES)
        plan, plan_off = _draw(rng, n, plans)
        channel, channel_off = _draw(rng, n, CHANNELS)
        tokens = np.clip(np.round(s.lognormal(rng, 350.0, 0.6, n)), 15, 8_000)
        tenure = np.clip(np.floor(s.lognormal(rng, 300.0, 1.1, n)), 0, 5_000)
        prior = rng.poisson(0.6 + 1.2 * (plan == 2) + 0.5 * (plan == 1)).astype(np.float64)
        text = rng.normal(0.0, 1.0, n)

        # ground truth
        structured = (
            product_off
            + language_off
            + plan_off
            + channel_off
            + 0.3 * prior
            + 0.3 * np.log(tokens / 350.0)
            - 0.15 * np.log1p(tenure / 365.0)
        )
        visible = structured + TEXT_WEIGHT * text
        drift = self.incidents.active("triage_concept_drift", day)
        # The truth rotates away from what the model learned, by an angle growing linearly over
        # the window; the new direction is independent of everything the model sees.
        angle = drift.params["max_angle"] * drift.progress(day) if drift is not None else 0.0
        new_concept = VISIBLE_SD * rng.normal(0.0, 1.0, n)
        shifted = np.cos(angle) * (visible - VISIBLE_MEAN) + np.sin(angle) * new_concept
        true_logit = INTERCEPT + VISIBLE_MEAN + shifted + rng.normal(0.0, HIDDEN_SD, n)
        label = (rng.random(n) < s.sigmoid(true_logit)).astype(np.int8)

        # serving
        fallback_rate = spike.params["fallback_rate"] if spike is not None else FALLBACK_RATE
        limited_rate = spike.params["rate_limited_rate"] if spike is not None else RATE_LIMITED_RATE
        large = rng.random(n) < LARGE_SHARE
        queue = np.ones(n)
        if spike is not None:
            factor = s.lognormal(rng, spike.params["queue_latency_factor"], QUEUE_SIGMA, n)
            queue = np.where(in_spike, factor, 1.0)
        llm_latency = queue * np.where(
            large,
            s.lognormal(rng, LATENCY["llm_large"][0], LATENCY["llm_large"][1], n),
            s.lognormal(rng, LATENCY["llm_small"][0], LATENCY["llm_small"][1], n),
        )
        rules_latency = s.lognormal(rng, LATENCY["rules"][0], LATENCY["rules"][1], n)
        rate_limited = rng.random(n) < np.where(in_spike, limited_rate, RATE_LIMITED_RATE)
        timeout = ~rate_limited & ((llm_latency > TIMEOUT_MS) | (rng.random(n) < TIMEOUT_RATE))
        plain_fallback = rng.random(n) < np.where(in_spike, fallback_rate, FALLBACK_RATE)
        error = rate_limited | timeout
        fallback = error | plain_fallback
        route = np.where(fallback, 2, np.where(large, 0, 1))

        latency = np.select(
            [rate_limited, timeout, plain_fallback],
            [
                s.lognormal(rng, *RATE_LIMIT_LATENCY, n) + rules_latency,
                TIMEOUT_MS + rules_latency,
                rules_latency,
            ],
            default=llm_latency,
        )

        attempts = np.ones(n)
        prompt_factor = np.ones(n)
        if spike is not None:
            attempts = np.where(in_spike, 1 + rng.poisson(spike.params["mean_retries"], n), 1)
            prompt_factor = np.where(in_spike, spike.params["prompt_factor"], 1.0)
        tokens_in = (SYSTEM_PROMPT_TOKENS + tokens) * prompt_factor
        tokens_out = OUTPUT_TOKENS[0] + rng.poisson(OUTPUT_TOKENS[1], n)
        price_in = np.where(large, PRICE_PER_MTOK["llm_large"][0], PRICE_PER_MTOK["llm_small"][0])
        price_out = np.where(large, PRICE_PER_MTOK["llm_large"][1], PRICE_PER_MTOK["llm_small"][1])
        input_cost = attempts * tokens_in * price_in / 1e6
        cost = np.select(
            [rate_limited, timeout, plain_fallback],
            [0.0, input_cost, 0.0],  # a timed-out call still pays for its prompt
            default=input_cost + attempts * tokens_out * price_out / 1e6,
        )

        # scores and decisions
        noise_sd = np.where(large, SCORE_NOISE_SD["llm_large"], SCORE_NOISE_SD["llm_small"])
        llm_p = s.sigmoid(CALIBRATION * (INTERCEPT + visible) + rng.normal(0.0, 1.0, n) * noise_sd)
        rules_p = s.sigmoid(CALIBRATION * (INTERCEPT + structured))
        rule = (product == 2) | ((plan == 2) & (channel == 2)) | (prior >= 4)
        p_urgent = np.where(fallback, rules_p, llm_p)
        canary = self.incidents.clean("triage_v4_canary", day)
        on_canary = np.zeros(n, dtype=bool)
        threshold = np.full(n, THRESHOLD)
        if canary is not None:
            on_canary = self.split_rng(day).random(n) < canary.params["share"]
            threshold[on_canary] = canary.params["threshold"]
        decision = np.where(fallback, rule, p_urgent >= threshold)

        error_idx = np.where(rate_limited, 1, 0)
        request_ids = s.sequential_ids("req", date, n)
        table = pa.table(
            {
                "request_id": request_ids,
                "model_version": s.strings((VERSION, CANARY_VERSION), on_canary.astype(np.int64)),
                "created_at": s.timestamps(ts),
                "p_urgent": pa.array(p_urgent, type=pa.float64()),
                "decision": pa.array(decision.astype(np.int8), type=pa.int8()),
                "route": s.strings(ROUTES, route),
                "latency_ms": pa.array(np.round(latency, 1), type=pa.float64()),
                "cost_usd": pa.array(np.round(cost, 7), type=pa.float64()),
                "is_fallback": pa.array(fallback, type=pa.bool_()),
                "error": pa.array(
                    np.array(["timeout", "rate_limited"], dtype=object)[error_idx],
                    type=pa.string(),
                    mask=~error,
                ),
                "ticket_tokens": s.floats(tokens),
                "customer_tenure_days": s.floats(tenure),
                "prior_tickets_30d": s.floats(prior),
                "product": s.strings(_values(PRODUCTS), product),
                "language": s.strings(_values(LANGUAGES), language),
                "plan_tier": s.strings(_values(PLAN_TIERS), plan),
                "channel": s.strings(_values(CHANNELS), channel),
            }
        )
        self.writer.write_predictions(day, [table])

        reviewed = np.flatnonzero(rng.random(n) < REVIEW_RATE)
        lo, hi = REVIEW_DELAY_DAYS
        delay = lo + (hi - lo) * rng.beta(*REVIEW_DELAY_BETA, size=reviewed.size)
        reviewed_at = ts[reviewed] + s.delay_us(delay)
        reviewed_at = self._apply_label_outage(rng, reviewed_at)
        reviewed_ids = request_ids.take(pa.array(reviewed))
        self.writer.add_labels(day, reviewed_ids, label[reviewed], reviewed_at)
        self.writer.end_day(day)

    def _apply_label_outage(self, rng: np.random.Generator, label_ts: np.ndarray) -> np.ndarray:
        """Labels due during the outage arrive as a backlog the day after it ends."""
        outage = self.incidents.get("triage_label_outage")
        if outage is None:
            return label_ts
        start_us = s.day_start_us(self.start)
        arrival = (label_ts - start_us) // s.US_PER_DAY
        late = (arrival >= outage.start_day) & (arrival <= outage.end_day)
        backlog_day = outage.end_day + outage.params["backlog_delay_days"]
        h0, h1 = BACKLOG_HOURS
        landed = (
            start_us
            + backlog_day * s.US_PER_DAY
            + h0 * s.US_PER_HOUR
            + rng.integers(0, (h1 - h0) * s.US_PER_HOUR, size=label_ts.size)
        )
        return np.where(late, landed, label_ts)
