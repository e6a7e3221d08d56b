"""Who may do what: the person behind a browser session, and whether they hold the admin password."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A browser session that acts on runs: `id` is recorded as a run's owner; an admin may act on any run
    and has no cap on queued runs. Without a password (one person on their own machine) everyone is admin."""

    id: str | None
    admin: bool = False

    def may_control(self, owner: str | None) -> bool:
        """Return True when this actor may stop, continue or delete a run started by `owner`."""
        return self.admin or owner is None or owner == self.id
