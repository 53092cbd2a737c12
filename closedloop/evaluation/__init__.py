"""How good the model is, per version, as labels arrive late: outcomes, mergeable evaluation
statistics, rolling windows, estimates before labels and recalibration.

Every metric is a function of score counts on one fixed grid, so windows add up and binning error is
stated.
"""
