"""closedloop's domain: the stages of the loop as sub-packages, pure Python over Arrow, DuckDB and
pandas, no Dagster.

``core`` < ``inputs`` < ``drift`` < ``evaluation`` < ``ops`` < ``control`` < ``registry`` (loading);
``simulator`` writes landings for the demo. A stage imports ``core`` and earlier stages only
(import-linter enforces it; see ARCHITECTURE.md).
"""
