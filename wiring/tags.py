"""Run tags closedloop reads back or the instance's run queue limits on.

The run queue's limits (``deploy/dagster.yaml``, and the local instance closedloop writes) are keyed
on these tags, so a job that should be limited must carry them; ``tests/test_deploy_config.py``
checks that every limited tag is one closedloop's runs carry.
"""

MODEL_TAG = "closedloop/model"  # on every run of a model's jobs, so failure reports can name the model
AS_OF_TAG = "closedloop/as_of"  # the hourly tick's time: checks judge the hour that had just ended by then
# On every incident and reminder run, ``<model>.<slo>``: one SLO's runs must run in the order they were
# requested (an opening before its closing), so the run queue starts one per value at a time.
SLO_TAG = "closedloop/slo"
# On every run that materializes a model's partitions (its pipeline, hourly refresh and report jobs), the
# model's name: the run queue starts one such run per model at a time, because a day's SLO states, drift
# and rolling windows read the days before it, so two runs of one model would judge a day on a neighbour
# another run is rewriting.
PARTITION_WRITER_TAG = "closedloop/writes_partitions_of"
