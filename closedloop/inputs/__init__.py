"""The prediction and label logs a model's service lands, made trustworthy: the input contract, its
Great Expectations suites, ingest and quarantine.

Nothing the service logged is lost: a row is accepted, quarantined with a reason, or dropped as an
exact duplicate.
"""
