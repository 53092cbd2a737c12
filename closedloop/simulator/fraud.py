"""Simulated traffic of the ``fraud`` model (card-not-present payments, chargeback labels).

Ground truth: a latent fraud logit that is a function of the logged features plus an unobserved
part. v11's score is the calibrated probability given the features (plus a little model noise),
so its ROC AUC is ~0.9 and ~2% of payments score at or above the 0.5 threshold. v12 ranks as
well as v11; during ``fraud_v12_calibration_shift`` its logit is shifted down.

Columns use closedloop's canonical names, with the scoring service's ``latency_ms`` and the
payment's ``request_id``; there is no ``decision`` column (closedloop derives it from the
version's threshold). The week before its canary, v12 scores every payment in shadow: its rows
(same request_id, ts, features and segments as the served row) land in the ``shadow`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from closedloop.simulator import sampling as s
from closedloop.simulator.landing import ModelGenerator

MODEL = "fraud"
MODEL_INDEX = 0

# --- serving ---------------------------------------------------------------------------------
V11, V12 = "v11", "v12"
V12_SHADOW_DAY = 28  # v12 scores every payment in shadow (decisions not applied) from this day ...
V12_CANARY_DAY = 35  # ... takes a random share of traffic from this day ...
V12_CANARY_SHARE = 0.10
V12_FULL_DAY = 41  # ... and all of it from this one
PARTS_PER_DAY = 2  # files per prediction partition (two ingestion workers)

# --- dirty input (client retries, broken scores) -----------------------------------------------
DUPLICATE_RATE = 0.001  # exact duplicate rows, written to the other file of the same day
NAN_SCORE_RATE = 0.0002  # rows whose score is NaN
MISSING_RATE = 0.005  # natural null rate of the features below
MISSING_FEATURES = ("avg_amount_30d", "distance_from_home_km")

# --- serving latency of the scoring service (no incident touches it) ---------------------------
LATENCY_MEDIAN_MS = 28.0
LATENCY_SIGMA = 0.35

# --- labels (chargebacks) ----------------------------------------------------------------------
LABEL_RATE = 0.90  # share of predictions that ever get a label
LABEL_DELAY_MIN_DAYS = 3.0
LABEL_DELAY_MAX_DAYS = 45.0
LABEL_DELAY_GAMMA = (2.0, 4.5)  # shape, scale (days) of the delay beyond the minimum

# --- volume ------------------------------------------------------------------------------------
WEEKDAY_FACTORS = (0.96, 0.95, 0.97, 1.00, 1.07, 1.06, 0.99)  # Monday first
VOLUME_JITTER = 0.03
HOUR_WEIGHTS = 1.0 + 0.55 * np.cos(2 * np.pi * (np.arange(24) + 0.5 - 19.0) / 24.0)  # peak 19h

# --- categories ----------------------------------------------------------------------------------
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN")
COUNTRY_P = (0.40, 0.15, 0.13, 0.12, 0.10, 0.10)
COUNTRY_RISK = (0.0, -0.1, -0.3, -0.2, 0.4, 0.3)

CHANNELS = ("web", "app", "pos")
CHANNEL_P = (0.45, 0.40, 0.15)
CHANNEL_RISK = (0.3, 0.0, -1.0)

# The last value only appears during the fraud_new_payment_type incident.
PAYMENT_TYPES = ("card", "wallet", "bank_transfer", "gift_card", "bnpl")
PAYMENT_P = (0.72, 0.15, 0.09, 0.04, 0.0)
PAYMENT_RISK = (0.0, -0.2, -0.5, 0.8, 0.0)  # as the model knows it
BNPL_TRUE_RISK = 0.3  # the new payment type is somewhat riskier than the model assumes
BNPL_AMOUNT_FACTOR = 2.0

DEVICE_TYPES = ("desktop", "mobile_web", "ios", "android", "pos_terminal")
DEVICE_RISK = (0.1, 0.2, -0.2, 0.0, -0.3)

# name, amount scale, risk
MERCHANT_CATEGORIES = (
    ("grocery", 0.8, -0.5),
    ("restaurants", 0.7, -0.3),
    ("fuel", 0.9, -0.3),
    ("electronics", 3.0, 0.5),
    ("travel", 4.0, 0.2),
    ("airlines", 5.0, 0.3),
    ("hotels", 3.5, 0.1),
    ("fashion", 1.5, 0.1),
    ("jewelry", 4.0, 0.6),
    ("gaming", 0.8, 0.5),
    ("digital_goods", 0.5, 0.7),
    ("subscriptions", 0.4, -0.2),
    ("pharmacy", 0.7, -0.3),
    ("home_improvement", 2.0, -0.1),
    ("entertainment", 0.9, 0.0),
    ("ride_sharing", 0.5, -0.1),
    ("telecom", 1.0, 0.0),
    ("marketplace", 1.2, 0.3),
    ("gift_cards", 1.5, 0.9),
    ("utilities", 1.8, -0.6),
)
CATEGORY_P = (9, 10, 6, 5, 3, 2, 3, 8, 1, 4, 5, 7, 4, 3, 5, 6, 4, 9, 2, 4)

# --- merchants -----------------------------------------------------------------------------------
N_MERCHANTS = 5_000
MERCHANT_ZIPF_EXPONENT = 1.05
MERCHANT_ZIPF_OFFSET = 5.0
RISKY_MERCHANT_SHARE = 0.03
RISKY_MERCHANT_RISK = 1.2
MAX_DISTANCE_KM = 20_000.0

# --- ground truth -------------------------------------------------------------------------------
RISKY_SESSION_SHARE = 0.025  # latent compromised sessions: they shape the features, not the label
INTERCEPT = -2.8
HIDDEN_SD = 1.0  # unobserved part of the fraud logit
# Calibrated score ~ sigmoid(k * logit) with k from the probit approximation of E[sigmoid(x + h)].
CALIBRATION = 1.0 / np.sqrt(1.0 + np.pi * HIDDEN_SD**2 / 8.0)
MODEL_NOISE_SD = 0.25  # estimation noise of each version's logit

NUMERIC_FEATURES = (
    "amount",
    "account_age_days",
    "txn_count_24h",
    "avg_amount_30d",
    "distance_from_home_km",
    "device_risk_score",
    "ip_reputation",
    "minutes_since_last_txn",
)
CATEGORICAL_FEATURES = ("payment_type", "merchant_category", "device_type", "merchant_id")
SEGMENTS = ("country", "channel")


@dataclass(frozen=True)
class World:
    """Fixed merchant catalogue of a run (depends on the seed only)."""

    merchant_ids: tuple[str, ...]
    merchant_p: np.ndarray
    merchant_category: np.ndarray
    merchant_risk: np.ndarray

    @classmethod
    def build(cls, seed: int) -> World:
        rng = s.world_rng(seed, MODEL_INDEX)
        numbers = rng.choice(np.arange(10_000, 100_000), size=N_MERCHANTS, replace=False)
        popularity = 1.0 / (np.arange(N_MERCHANTS) + MERCHANT_ZIPF_OFFSET) ** MERCHANT_ZIPF_EXPONENT
        return cls(
            merchant_ids=tuple(f"m_{n}" for n in numbers),
            merchant_p=popularity / popularity.sum(),
            merchant_category=s.categorical(rng, N_MERCHANTS, CATEGORY_P),
            merchant_risk=np.where(rng.random(N_MERCHANTS) < RISKY_MERCHANT_SHARE, RISKY_MERCHANT_RISK, 0.0),
        )


def version_mask(rng: np.random.Generator, n: int, day: int) -> np.ndarray:
    """True where v12 serves the request."""
    if day >= V12_FULL_DAY:
        return np.ones(n, dtype=bool)
    if day >= V12_CANARY_DAY:
        return rng.random(n) < V12_CANARY_SHARE
    return np.zeros(n, dtype=bool)


def _device_types(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    u = rng.random(channel.size)
    web = np.where(u < 0.6, 0, 1)  # desktop / mobile_web
    app = np.where(u < 0.45, 2, 3)  # ios / android
    return np.select([channel == 0, channel == 1], [web, app], default=4)


def _terminal_ids(rng: np.random.Generator, n: int) -> list[str]:
    return [f"T{v:010d}" for v in rng.integers(0, 10**10, size=n)]


class FraudGenerator(ModelGenerator):
    model = MODEL
    model_index = MODEL_INDEX
    label_columns = ("prediction_id", "label", "label_ts")

    @cached_property
    def world(self) -> World:
        return World.build(self.seed)

    def simulate_day(self, day: int) -> None:
        rng = self.rng(day)
        date = self.date(day)
        n = s.daily_volume(rng, self.rows_per_day, date, WEEKDAY_FACTORS, VOLUME_JITTER)
        ts = s.diurnal_timestamps(rng, n, date, HOUR_WEIGHTS)
        world = self.world

        country = s.categorical(rng, n, COUNTRY_P)
        channel = s.categorical(rng, n, CHANNEL_P)
        payment = s.categorical(rng, n, PAYMENT_P)
        merchant = rng.choice(N_MERCHANTS, size=n, p=world.merchant_p)
        category = world.merchant_category[merchant]
        device = _device_types(rng, channel)
        risky = rng.random(n) < RISKY_SESSION_SHARE

        new_payment = self.incidents.active("fraud_new_payment_type", day)
        bnpl = np.zeros(n, dtype=bool)
        if new_payment is not None:
            bnpl = rng.random(n) < new_payment.params["share"]
            payment[bnpl] = PAYMENT_TYPES.index(new_payment.params["value"])

        # features
        amount_scale = np.array([c[1] for c in MERCHANT_CATEGORIES])[category]
        account_age = np.floor(
            np.clip(
                np.where(risky, s.lognormal(rng, 25, 1.3, n), s.lognormal(rng, 500, 1.0, n)),
                0,
                9_000,
            )
        )
        txn_count = rng.poisson(np.where(risky, 5.0, 1.5)).astype(np.float64)
        avg_amount = np.round(s.lognormal(rng, 45.0 * amount_scale, 0.7, n), 2)
        ratio = np.where(risky, s.lognormal(rng, 2.5, 0.8, n), s.lognormal(rng, 1.0, 0.5, n))
        amount = avg_amount * ratio * np.where(bnpl, BNPL_AMOUNT_FACTOR, 1.0)
        amount = np.maximum(0.5, np.round(amount, 2))
        home = np.where(channel == 2, s.lognormal(rng, 3.0, 1.0, n), s.lognormal(rng, 10.0, 1.3, n))
        distance = np.where(risky, s.lognormal(rng, 400.0, 1.2, n), home)
        distance = np.round(np.minimum(distance, MAX_DISTANCE_KM), 1)
        device_risk = np.where(risky, rng.beta(5.0, 2.0, n), rng.beta(1.2, 10.0, n))
        ip_reputation = np.where(risky, rng.beta(3.0, 4.0, n), rng.beta(9.0, 1.5, n))
        minutes = np.round(rng.exponential(np.where(risky, 20.0, 900.0)), 1)

        # ground truth and scores
        logit = (
            INTERCEPT
            + 3.0 * device_risk
            - 2.0 * ip_reputation
            - 0.45 * np.log1p(account_age / 30.0)
            + 0.9 * np.log(amount / avg_amount)
            + 0.25 * np.log1p(distance)
            + 0.12 * txn_count
            - 0.15 * np.log1p(minutes)
            + np.array([c[2] for c in MERCHANT_CATEGORIES])[category]
            + np.asarray(PAYMENT_RISK)[payment]
            + np.asarray(COUNTRY_RISK)[country]
            + np.asarray(CHANNEL_RISK)[channel]
            + np.asarray(DEVICE_RISK)[device]
            + world.merchant_risk[merchant]
        )
        true_logit = logit + np.where(bnpl, BNPL_TRUE_RISK, 0.0) + rng.normal(0.0, HIDDEN_SD, n)
        label = (rng.random(n) < s.sigmoid(true_logit)).astype(np.int8)

        v12 = version_mask(rng, n, day)
        score_logit = CALIBRATION * logit + rng.normal(0.0, MODEL_NOISE_SD, n)
        shift = self.incidents.active("fraud_v12_calibration_shift", day)
        if shift is not None:
            score_logit = np.where(v12, score_logit + shift.params["logit_shift"], score_logit)
        score = s.sigmoid(score_logit)
        score[rng.random(n) < NAN_SCORE_RATE] = np.nan
        latency_ms = np.round(s.lognormal(rng, LATENCY_MEDIAN_MS, LATENCY_SIGMA, n), 2)

        # logging artefacts
        missing = {f: rng.random(n) < MISSING_RATE for f in MISSING_FEATURES}
        missing["avg_amount_30d"] = missing["avg_amount_30d"] | bnpl
        lookup_timeouts = self.incidents.active("fraud_ip_reputation_nulls", day)
        if lookup_timeouts is not None:
            missing["ip_reputation"] = rng.random(n) < lookup_timeouts.params["share"]
        merchant_ids = s.strings(world.merchant_ids, merchant)
        explosion = self.incidents.active("fraud_merchant_id_explosion", day)
        if explosion is not None:
            raw = rng.random(n) < explosion.params["share"]
            ids = np.array(merchant_ids.to_pylist(), dtype=object)
            ids[raw] = _terminal_ids(rng, int(raw.sum()))
            merchant_ids = pa.array(ids, type=pa.string())

        prediction_ids = s.sequential_ids(MODEL, date, n)
        request_ids = s.sequential_ids("pay", date, n, sep="_")
        numeric = {
            "amount": amount,
            "account_age_days": account_age,
            "txn_count_24h": txn_count,
            "avg_amount_30d": avg_amount,
            "distance_from_home_km": distance,
            "device_risk_score": np.round(device_risk, 4),
            "ip_reputation": np.round(ip_reputation, 4),
            "minutes_since_last_txn": minutes,
        }
        table = pa.table(
            {
                "prediction_id": prediction_ids,
                "model_version": s.strings((V11, V12), v12.astype(np.int64)),
                "ts": s.timestamps(ts),
                "score": pa.array(score, type=pa.float64()),
                "latency_ms": pa.array(latency_ms, type=pa.float64()),
                **{name: s.floats(v, missing.get(name)) for name, v in numeric.items()},
                "payment_type": s.strings(PAYMENT_TYPES, payment),
                "merchant_category": s.strings([c[0] for c in MERCHANT_CATEGORIES], category),
                "device_type": s.strings(DEVICE_TYPES, device),
                "merchant_id": merchant_ids,
                "country": s.strings(COUNTRIES, country),
                "channel": s.strings(CHANNELS, channel),
                "request_id": request_ids,
            }
        )
        self.writer.write_predictions(day, _split_parts(rng, table))
        if V12_SHADOW_DAY <= day < V12_CANARY_DAY:
            self.writer.write_shadow(day, self._shadow_scores(day, table, CALIBRATION * logit))

        labelled = np.flatnonzero(rng.random(n) < LABEL_RATE)
        extra = np.minimum(
            rng.gamma(*LABEL_DELAY_GAMMA, size=labelled.size),
            LABEL_DELAY_MAX_DAYS - LABEL_DELAY_MIN_DAYS,
        )
        label_ts = ts[labelled] + s.delay_us(LABEL_DELAY_MIN_DAYS + extra)
        self.writer.add_labels(day, prediction_ids.take(pa.array(labelled)), label[labelled], label_ts)
        self.writer.end_day(day)

    def _shadow_scores(self, day: int, served: pa.Table, calibrated_logit: np.ndarray) -> pa.Table:
        """v12's scores of the day's served payments: the same model as in its canary, decisions not applied.

        Its own noise comes from the shadow stream; the calibration shift is v12's, so it shows in
        shadow whenever the run schedules that incident, before the incident's window begins.
        """
        rng = self.shadow_rng(day)
        n = served.num_rows
        logit = calibrated_logit + rng.normal(0.0, MODEL_NOISE_SD, n)
        shift = self.incidents.get("fraud_v12_calibration_shift")
        if shift is not None:
            logit = logit + shift.params["logit_shift"]
        own = {
            "prediction_id": s.sequential_ids(f"{MODEL}-shadow", self.date(day), n),
            "model_version": pa.array([V12] * n, pa.string()),
            "score": pa.array(s.sigmoid(logit), pa.float64()),
        }
        shadow = served.drop_columns(["latency_ms"])  # the shadow service logs no serving latency
        for name, values in own.items():
            shadow = shadow.set_column(shadow.schema.get_field_index(name), name, values)
        return shadow


def _split_parts(rng: np.random.Generator, table: pa.Table) -> list[pa.Table]:
    """Spread rows over the day's files; duplicates go to the file the original is not in."""
    n = table.num_rows
    part = rng.integers(0, PARTS_PER_DAY, size=n)
    duplicate = rng.random(n) < DUPLICATE_RATE
    other = (part + 1) % PARTS_PER_DAY
    parts = []
    for p in range(PARTS_PER_DAY):
        rows = np.flatnonzero((part == p) | (duplicate & (other == p)))  # ascending = ts order
        parts.append(table.take(pa.array(rows)))
    return parts
