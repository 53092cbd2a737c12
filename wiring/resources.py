"""Resources: the lake, as the one place assets and checks get paths from, and the webhook."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from closedloop.control.webhook import WEBHOOK_ENVIRONMENT_VARIABLE, Delivery, post_json, webhook_url
from closedloop.core.lake import Lake
from closedloop.core.specs import AlertRoute


class LakeResource(dg.ConfigurableResource):
    """Where a model's service lands its logs and where closedloop keeps its tables."""

    root: str
    landing: str

    def get(self) -> Lake:
        return Lake(root=self.root, landing=self.landing)


class WebhookResource(dg.ConfigurableResource):
    """Where incident messages go: Slack-compatible incoming webhooks, one per alert route.

    Each route's URL is read from the environment variable the registry names for it
    (``CLOSEDLOOP_WEBHOOK_URL`` for the default route) when a run needs it, not when the code
    location loads; without it nobody on that route is messaged and the incident says so.
    ``url``, when set, takes every message whatever its route (one webhook for everything).
    """

    url: str | None = None
    timeout_seconds: float = 5.0
    retries: int = 3
    backoff_seconds: float = 0.5

    def poster(self, url_env: str = WEBHOOK_ENVIRONMENT_VARIABLE) -> Callable[[dict], Delivery] | None:
        """A function that posts one message to the webhook in ``url_env`` (with timeouts and retries),
        or None without a URL."""
        url = self.url or webhook_url(variable=url_env)
        if url is None:
            return None
        return lambda payload: post_json(
            url, payload, timeout=self.timeout_seconds, retries=self.retries, backoff=self.backoff_seconds
        )

    def route_poster(self, route: AlertRoute) -> Callable[[dict], Delivery] | None:
        """The poster of one alert route (its ``url_env``), or None when that variable is not set."""
        return self.poster(route.url_env)
