"""A project's redaction policy: what happens to each identifier type, and
which documents are held back from annotation. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.redaction.detectors import TYPES

MASK = "mask"
SURROGATE = "surrogate"
HASH = "hash"
KEEP = "keep"
REVIEW = "review"
ACTIONS = (MASK, SURROGATE, HASH, KEEP, REVIEW)

_MAX_TERMS = 10_000


@dataclass(frozen=True)
class Policy:
    default_action: str = MASK
    actions: dict[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()
    deny: dict[str, str] = field(default_factory=dict)
    # Keep the surrogate -> original mapping (encrypted) for re-identification.
    reidentification: bool = False
    hold_duplicates: bool = False
    hold_low_quality: bool = False
    quality_threshold: float = 0.5
    near_duplicate_threshold: float = 0.8
    shingle_size: int = 5
    version: int = 0

    def action_for(self, type_: str) -> str:
        return self.actions.get(type_, self.default_action)

    @property
    def name(self) -> str:
        """A short label for reports: the default and any exceptions."""
        if not self.actions:
            return f"{self.default_action}-v{self.version}"
        return f"custom-v{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "default_action": self.default_action,
            "actions": dict(sorted(self.actions.items())),
            "allow": list(self.allow),
            "deny": dict(sorted(self.deny.items())),
            "reidentification": self.reidentification,
            "hold_duplicates": self.hold_duplicates,
            "hold_low_quality": self.hold_low_quality,
            "quality_threshold": self.quality_threshold,
            "near_duplicate_threshold": self.near_duplicate_threshold,
            "shingle_size": self.shingle_size,
            "version": self.version,
        }


def from_json(data: dict[str, Any]) -> Policy:
    """Check and build a policy.

    Raises:
        InvalidArgument: an unknown action or type, or a value out of range.
    """
    default = str(data.get("default_action", MASK))
    actions = {str(k): str(v) for k, v in dict(data.get("actions") or {}).items()}
    for action in (default, *actions.values()):
        if action not in ACTIONS:
            raise InvalidArgument(
                f"Unknown redaction action '{action}'; "
                f"use one of {', '.join(ACTIONS)}.",
                code="unknown_redaction_action",
            )
    for type_ in actions:
        if type_ not in TYPES:
            raise InvalidArgument(
                f"Unknown identifier type '{type_}'.", code="unknown_identifier_type"
            )
    allow = tuple(str(a) for a in data.get("allow") or ())
    deny = {str(k): str(v or "DENIED") for k, v in dict(data.get("deny") or {}).items()}
    if len(allow) + len(deny) > _MAX_TERMS:
        raise InvalidArgument(
            f"At most {_MAX_TERMS} allow and deny terms per project.",
            code="too_many_terms",
        )
    for type_ in deny.values():
        if type_ not in TYPES:
            raise InvalidArgument(
                f"Unknown identifier type '{type_}'.", code="unknown_identifier_type"
            )
    quality = float(data.get("quality_threshold", 0.5))
    near = float(data.get("near_duplicate_threshold", 0.8))
    shingle = int(data.get("shingle_size", 5))
    if not 0.0 <= quality <= 1.0 or not 0.1 <= near <= 1.0 or not 1 <= shingle <= 20:
        raise InvalidArgument(
            "Thresholds must lie in [0, 1] (near duplicates in [0.1, 1]) and the "
            "shingle size in [1, 20].",
            code="policy_out_of_range",
        )
    return Policy(
        default_action=default,
        actions=actions,
        allow=allow,
        deny=deny,
        reidentification=bool(data.get("reidentification", False)),
        hold_duplicates=bool(data.get("hold_duplicates", False)),
        hold_low_quality=bool(data.get("hold_low_quality", False)),
        quality_threshold=quality,
        near_duplicate_threshold=near,
        shingle_size=shingle,
        version=int(data.get("version", 0)),
    )
