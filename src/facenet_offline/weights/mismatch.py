"""One wording for a weights file whose tensors or layers do not fit the network, whatever its format."""

from __future__ import annotations

from collections.abc import Sequence


def mismatch_message(head: str, missing: Sequence[str], unexpected: Sequence[str], noun: str = "",
                     limit: int = 20) -> str:
    """``head``, then every missing and every unexpected name (the first ``limit`` of each, and how many more)."""
    parts = [head]
    for label, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{len(names)} {label}{' ' + noun if noun else ''}: {', '.join(names[:limit])}{more}.")
    return " ".join(parts)
