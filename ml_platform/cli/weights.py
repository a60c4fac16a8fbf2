"""Which weights a command may use on a home: the demo's rule on a home it made offline
(`home.made_offline`), the setting's rule (ML_PLATFORM_ALLOW_RANDOM_WEIGHTS) elsewhere."""

from __future__ import annotations

import os

import click

from ml_platform.home import made_offline, random_weights_notice, with_home_rule
from ml_platform.settings import Settings


def home_rule(settings: Settings, *, say: bool = True) -> Settings:
    """On a home the demo made offline: random weights allowed, said in one line on stderr
    (unless `say` is False: the caller says it), and the local model cache only while the
    hub is unreachable. Elsewhere `settings` unchanged."""
    from ml_platform.vision.hub import hub_offline

    if not made_offline(settings.resolved_home):
        return settings
    if hub_offline():
        os.environ["HF_HUB_OFFLINE"] = "1"  # before the hub client is imported: it reads it once
    settings = with_home_rule(settings)
    if say:
        click.echo(random_weights_notice(settings), err=True)
    return settings


def start_up_line(settings: Settings, host: str, port: int) -> str:
    """What `serve` serves, where, and on which weights (/readyz says the same)."""
    weights = (
        random_weights_notice(settings)
        if settings.allow_random_weights
        else "pretrained weights only: /readyz lists a model that cannot load them"
    )
    return (
        f"serving the models of {settings.resolved_home} on http://{host}:{port} "
        f"(docs /docs, readiness /readyz). {weights}"
    )
