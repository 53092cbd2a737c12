"""What every stage of the loop stands on: the registry's schema, the lake, names and periods, bounds,
metric definitions, SQL and plotting.

Nothing here knows a stage; every stage may use it.
"""
