"""``%weaviate_auth`` where widgets cannot render: the panel's questions, asked on the
terminal (profile or URL, method, then the secret through ``getpass``: never echoed,
never in IPython's history, which keeps only what is typed at the ``In [n]`` prompt).

Like the panel, it only collects answers: saving, logging in and making the session are
the backend's (``kernel.get_backend()``: the broker or the in-process service).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import InvalidProfile, LoginExpired, MissingSecret
from .profiles import METHOD_LABELS, PRIMARY_SECRET, Profile, default_name, profile_from_view, validate_name
from .urls import host_of

if TYPE_CHECKING:
    from .service import Identity
    from .session import WeaviateSession

#: methods offered, in the panel's order
METHOD_CHOICES = ("api_key", "password", "client_credentials", "browser")
_SECRET_LABELS = {"api_key": "API key", "password": "Password", "client_secret": "Client secret"}
_TRIES = 3


def widgets_render(shell: Any) -> bool:
    """Whether a widget could show: only a kernel (ipykernel) has a front end that may
    render it. A terminal IPython, or a plain embedded shell, has none."""
    return getattr(shell, "kernel", None) is not None


class TerminalLogin:
    """Asks, then lets the backend save, log in and make the session."""

    def __init__(
        self,
        backend: Any,
        *,
        ask: Callable[[str], str] = input,
        ask_secret: Callable[[str], str] = getpass.getpass,
        say: Callable[[str], object] = print,
    ) -> None:
        self.backend = backend
        self._ask = ask
        self._ask_secret = ask_secret
        self._say = say

    def run(self, profile: str | None = None) -> tuple[Identity, WeaviateSession]:
        """Sign in with ``profile`` (asked for when None; created when unknown)."""
        views = {v["name"]: v for v in self.backend.profile_views()}
        url = None
        if profile is None:
            profile, url = self._pick(views)
        elif profile not in views:
            saved = ", ".join(views) or "none"
            self._say(f"No profile {profile!r}; saved: {saved}. Creating it.")
        if profile is not None and profile in views:
            identity = self._existing(profile, views[profile])
        else:
            profile = self._create(profile, url, views)
            identity = self.backend.login(profile)
        return identity, self.backend.session(profile)

    # -- the questions -------------------------------------------------------------
    def _pick(self, views: dict[str, dict[str, Any]]) -> tuple[str | None, str | None]:
        if views:
            self._say("Saved profiles:")
            for name, view in views.items():
                label = METHOD_LABELS.get(view["method"], view["method"])
                self._say(f"  {name:<16} {host_of(view['url'])} ({label})")
        default = next(iter(views)) if len(views) == 1 else None
        for _ in range(_TRIES):
            answer = self._line("Profile or cluster URL", default)
            if answer in views:
                return answer, None
            if answer:
                return None, answer
        raise InvalidProfile("No profile or URL was given.", fix="Run %weaviate_auth again.")

    def _existing(self, name: str, view: dict[str, Any]) -> Identity:
        try:
            identity: Identity = self.backend.login(name)
            return identity
        except (MissingSecret, LoginExpired) as exc:
            if view.get("read_only") or view.get("method") == "browser":
                raise  # a browser sign-in has no secret to ask for: its login was the sign-in
            self._say(f"{exc.reason}")
        profile = profile_from_view(view)
        kind = PRIMARY_SECRET[profile.method]
        self.backend.save_profile(profile, {kind: self._secret(kind)})
        identity = self.backend.login(name)
        return identity

    def _create(self, name: str | None, url: str | None, views: dict[str, dict[str, Any]]) -> str:
        policy = self._policy()
        url = url or self._line("Cluster URL", policy.get("default_url") or None)
        if name is None:
            name = self._line("Profile name", default_name(url))
            validate_name(name)
            if name in views:
                raise InvalidProfile(
                    f"There is already a profile named {name!r}.",
                    fix=f"Run %weaviate_auth {name} to use it, or pick another name.",
                )
        method = self._method()
        username = self._line("Username") if method == "password" else None
        client_id = self._line("Client id") if method == "client_credentials" else None
        remember = bool(policy.get("allow_remember", True)) and self._yes("Remember on this host?")
        profile = Profile(
            name=name,
            url=url,
            method=method,  # type: ignore[arg-type]
            username=username,
            client_id=client_id,
            remember=remember,
        )
        if method == "browser":  # signed in at the provider's page (device code) on login
            self.backend.save_profile(profile, {})
            return name
        kind = PRIMARY_SECRET[method]
        self.backend.save_profile(profile, {kind: self._secret(kind)})
        return name

    def _method(self) -> str:
        options = "  ".join(f"{i}) {METHOD_LABELS[m]}" for i, m in enumerate(METHOD_CHOICES, 1))
        for _ in range(_TRIES):
            answer = self._line(f"Sign in with: {options}", "1").lower()
            if answer.isdigit() and 1 <= int(answer) <= len(METHOD_CHOICES):
                return METHOD_CHOICES[int(answer) - 1]
            for method in METHOD_CHOICES:
                if answer in (method, METHOD_LABELS[method].lower()):
                    return method
        raise InvalidProfile("No login method was chosen.", fix=f"Answer 1 to {len(METHOD_CHOICES)}.")

    def _secret(self, kind: str) -> str:
        for _ in range(_TRIES):
            value = self._ask_secret(f"{_SECRET_LABELS.get(kind, kind)} (hidden): ").strip()
            if value:
                return value
        raise MissingSecret(f"No {kind.replace('_', ' ')} was entered.", fix="Run %weaviate_auth again.")

    def _line(self, question: str, default: str | None = None) -> str:
        answer = self._ask(f"{question}{f' [{default}]' if default else ''}: ").strip()
        return answer or (default or "")

    def _yes(self, question: str) -> bool:
        return self._line(f"{question} [Y/n]").lower() not in ("n", "no")

    def _policy(self) -> dict[str, Any]:
        try:
            policy = self.backend.status().get("policy")
        except Exception:  # the questions still work; the backend checks policy on save
            return {}
        return policy if isinstance(policy, dict) else {}


__all__ = ["TerminalLogin", "widgets_render"]
