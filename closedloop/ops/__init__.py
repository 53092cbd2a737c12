"""Whether serving holds up: latency, errors, fallbacks and cost per hour, version and route, and the
guards on them.

Latency is kept as a mergeable histogram, so any hour or day has its quantiles.
"""
