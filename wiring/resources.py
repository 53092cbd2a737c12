"""Resources: the lake, as the one place assets and checks get paths from, and the webhook."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from closedloop.control.webhook import Delivery, post_json, webhook_url
from closedloop.core.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """Where a model's service lands its logs and where closedloop keeps its tables."""

    root: str
    landing: str

    def get(self) -> Lake:
        return Lake(root=self.root, landing=self.landing)


class WebhookResource(dg.ConfigurableResource):
    """Where incident messages go: a Slack-compatible incoming webhook.

    ``url`` names it explicitly; left unset, ``CLOSEDLOOP_WEBHOOK_URL`` is read when a run
    needs it (not when the code location loads), and without either nobody is messaged and
    the incident says so.
    """

    url: str | None = None
    timeout_seconds: float = 5.0
    retries: int = 3
    backoff_seconds: float = 0.5

    def poster(self) -> Callable[[dict], Delivery] | None:
        """A function that posts one message (with timeouts and retries), or None without a URL."""
        url = self.url or webhook_url()
        if url is None:
            return None
        return lambda payload: post_json(
            url, payload, timeout=self.timeout_seconds, retries=self.retries, backoff=self.backoff_seconds
        )
