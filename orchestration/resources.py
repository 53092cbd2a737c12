"""Resources: the lake, as the one place assets and checks get paths from."""

from __future__ import annotations

import dagster as dg

from closedloop.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """Where a model's service lands its logs and where closedloop keeps its tables."""

    root: str
    landing: str

    def get(self) -> Lake:
        return Lake(root=self.root, landing=self.landing)
