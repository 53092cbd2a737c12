"""What every Dagster definition of closedloop shares: partitions, resources, run tags and automation conditions.

The leaf of the Dagster layers: ``assets/`` and ``checks/`` build on it and on the domain
(``closedloop/``), ``orchestration/`` assembles them all; nothing here imports any of them.
"""
