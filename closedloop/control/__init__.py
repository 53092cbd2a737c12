"""Closing the loop: the metric catalog, SLOs and their record, incidents, the runbook's actions on the
serving file, the webhook and the demo's scorecard.

What the other stages compute is judged here and turned into an incident and an action.
"""
