"""What every Dagster definition of closedloop shares: partitions, day records, resources, run tags, automation.

The leaf of the Dagster layers: ``assets/`` and ``checks/`` build on it and on the domain
(``closedloop/``), ``orchestration/`` assembles them all; nothing here imports any of them.
"""
