"""Whether the inputs and outputs still look like the baseline: mergeable daily profiles, the frozen
baseline, drift measures and the report judged on them.

Any window is a sum of daily profiles, so drift never re-reads raw predictions.
"""
