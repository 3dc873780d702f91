"""Roles, ordered: a viewer reads, a responder also answers incidents, an admin also changes the setup."""

from enum import StrEnum


class Role(StrEnum):
    """What a person (or a token) may do; each role may do everything the ones below it may."""

    viewer = "viewer"
    responder = "responder"
    admin = "admin"

    @property
    def rank(self) -> int:
        """Position in viewer < responder < admin."""
        return ORDER.index(self)

    def allows(self, needed: "Role") -> bool:
        """Whether this role is at least `needed`."""
        return self.rank >= needed.rank


ORDER = (Role.viewer, Role.responder, Role.admin)


def lowest(*roles: Role) -> Role:
    """The weakest of the roles (a token's effective role is capped by its owner's)."""
    return min(roles, key=lambda role: role.rank)
