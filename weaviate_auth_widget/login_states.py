"""LoginStates: the one place a service keeps its profiles' login state.

Each profile's :class:`LoginState` (tokens, provider, identity) and which profiles are
logged out. The service, its grants (:mod:`.logins`) and its views reach that state only
through these calls. Holds secrets: never shown, never logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from . import hub_login, oidc
from .identity import Identity
from .tokens import Token


@dataclass
class LoginState:
    """In-memory state of one profile's login. Holds secrets: never shown, never logged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    access: Token | None = None
    #: the cluster ``access`` is for: every hand-out re-checks the policy against it
    url: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    provider: oidc.Provider | None = None
    client_id: str | None = None
    #: a confidential client's secret (browser sign-ins the administrator configured)
    client_secret: str | None = field(default=None, repr=False)
    scope: str = ""
    identity: Identity | None = None
    #: the hub login's last grant (method ``hub``): its audience explains a refusal
    hub_grant: hub_login.HubGrant | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"LoginState(access={self.access!r}, identity={self.identity!r})"


class LoginStates:
    """The login state of every profile of one service, and the profiles logged out."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        #: profile name -> its login state
        self.by_name: dict[str, LoginState] = {}
        #: profiles logged out: no token until an explicit login
        self._logged_out: set[str] = set()

    def __repr__(self) -> str:
        return f"LoginStates({len(self.by_name)} logged in)"

    def __len__(self) -> int:
        return len(self.by_name)

    def get(self, name: str) -> LoginState | None:
        return self.by_name.get(name)

    def state(self, name: str) -> LoginState:
        """The state of ``name``, made empty the first time it is asked for."""
        with self._guard:
            state = self.by_name.get(name)
            if state is None:
                state = self.by_name[name] = LoginState()
            return state

    def drop(self, name: str) -> LoginState | None:
        """Forget the login of ``name`` (the next use starts afresh); return what it was."""
        with self._guard:
            return self.by_name.pop(name, None)

    def all(self) -> list[LoginState]:
        return list(self.by_name.values())

    def identity(self, name: str) -> Identity | None:
        state = self.by_name.get(name)
        return state.identity if state else None

    def log_out(self, name: str) -> LoginState | None:
        """Mark ``name`` logged out and drop its login state; return what it was."""
        self._logged_out.add(name)
        return self.drop(name)

    def logged_in(self, name: str) -> None:
        """An explicit login (or a profile deleted, so one saved later starts afresh):
        ``name`` is no longer logged out."""
        self._logged_out.discard(name)

    def is_logged_out(self, name: str) -> bool:
        return name in self._logged_out
