"""The registry's aliases as the contract for changing a model: ``champion`` serves, ``challenger`` is being tried.

A model's life is a move of aliases, each recorded in the registry itself so
that anyone (or any pipeline) can tell what serves and what it replaced:

- training registers a version; it becomes the champion if the model has
  none, else the challenger (``assign_new_version``);
- a promotion moves ``champion`` to the challenger's version, tags that
  version with the one it replaced, and drops ``challenger``;
- a rollback moves ``champion`` back to the version the current champion's
  tag names, and tags the version it leaves as rolled back.

Each is planned first (``plan_promotion``, ``plan_rollback``), deployed, and
only then applied (``apply``): a deployment that fails leaves the aliases
saying what still serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from model_service.errors import PromotionRefused

CHAMPION = "champion"
CHALLENGER = "challenger"
REPLACED_TAG = "replaced_champion"
"""On a champion's version: the version it replaced, which ``rollback`` returns to."""
SHADOW_SUFFIX = "-shadow"
"""A challenger's shadow consumer is its champion's consumer name + this (``duration-shadow``), in its event_ids."""
ROLLED_BACK_TAG = "rolled_back"
"""On a version ``rollback`` took ``champion`` from: ``true``."""


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: on which model, from which version (None: it had none) to which, and why."""

    model: str
    alias: str
    version: str
    previous: str | None
    kind: Literal["new version", "promotion", "rollback"]


def _client(tracking_uri: str | None) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def alias_version(client: Any, model: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None when the model has no such alias."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def assign_new_version(model: str, version: str, tracking_uri: str | None = None) -> AliasMove:
    """A freshly registered version: the champion of a model that has none, else its challenger."""
    client = _client(tracking_uri)
    champion = alias_version(client, model, CHAMPION)
    alias = CHAMPION if champion is None else CHALLENGER
    previous = champion if alias == CHAMPION else alias_version(client, model, CHALLENGER)
    client.set_registered_model_alias(model, alias, version)
    return AliasMove(model, alias, version, previous, "new version")


def plan_promotion(model: str, tracking_uri: str | None = None) -> AliasMove:
    """``champion`` to the challenger's version: what ``apply`` will do, checked, nothing moved yet."""
    client = _client(tracking_uri)
    challenger = alias_version(client, model, CHALLENGER)
    if challenger is None:
        raise PromotionRefused(f"{model} has no {CHALLENGER}: nothing to promote (train one, or set the alias)")
    return AliasMove(model, CHAMPION, challenger, alias_version(client, model, CHAMPION), "promotion")


def plan_rollback(model: str, tracking_uri: str | None = None) -> AliasMove:
    """``champion`` back to the version the current champion replaced, as a promotion recorded it."""
    client = _client(tracking_uri)
    champion = alias_version(client, model, CHAMPION)
    if champion is None:
        raise PromotionRefused(f"{model} has no {CHAMPION}: nothing to roll back")
    replaced = client.get_model_version(model, champion).tags.get(REPLACED_TAG)
    if not replaced:
        raise PromotionRefused(
            f"{model}'s {CHAMPION} (version {champion}) replaced no version: a promotion records what it"
            f" replaces, and this version was not promoted"
        )
    return AliasMove(model, CHAMPION, replaced, champion, "rollback")


def apply(move: AliasMove, tracking_uri: str | None = None) -> None:
    """Make a planned move, once what it names is deployed.

    A promotion tags the new champion with the version it replaces and drops
    ``challenger``; a rollback tags the version it leaves as rolled back.
    """
    client = _client(tracking_uri)
    if move.kind == "promotion":
        if move.previous is not None:
            client.set_model_version_tag(move.model, move.version, REPLACED_TAG, move.previous)
        client.delete_registered_model_alias(move.model, CHALLENGER)
    elif move.kind == "rollback" and move.previous is not None:
        client.set_model_version_tag(move.model, move.previous, ROLLED_BACK_TAG, "true")
    client.set_registered_model_alias(move.model, move.alias, move.version)
