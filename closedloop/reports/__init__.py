"""Reports a model owner opens every morning: one page per model and day, a calendar, a summary."""
