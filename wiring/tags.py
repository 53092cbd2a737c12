"""Run tags closedloop reads back: which model a run is about, and the moment an hourly run judges."""

MODEL_TAG = "closedloop/model"  # on every run of a model's jobs, so failure reports can name the model
AS_OF_TAG = "closedloop/as_of"  # the hourly tick's time: checks judge the hour that had just ended by then
