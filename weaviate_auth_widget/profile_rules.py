"""Rules on what a saved profile's credential may become, for every door alike.

``AuthService`` enforces them; the kernel's ``BrokerClient`` asks the same rule before
it uses the broker's token route (the broker checks the policy there).
"""

from __future__ import annotations

from collections.abc import Collection

from .errors import MethodChange, WrongMethod
from .profiles import METHOD_LABELS, Profile
from .urls import host_of


def require_api_key_profile(profile: Profile) -> None:
    """Only an API-key profile gives up its key: any other login has no key to copy
    (its tokens expire and its password or secret never leaves the store)."""
    if profile.method != "api_key":
        host = host_of(profile.url)
        raise WrongMethod(
            f"Profile {profile.name!r} ({host}) logs in with {METHOD_LABELS[profile.method]}: "
            "it has no API key to copy.",
            host=host,
            fix="Copy the key of an API-key profile, or use `weaviate-auth token` / a session "
            "for a short-lived token of this one.",
        )


def check_method_change(previous: Profile, profile: Profile, kept: Collection[str], *, replace: bool) -> None:
    """A save that changes the login method drops every secret kept for the profile (they
    belong to the old method): never silently. Without ``replace`` it is refused while
    anything is kept; with nothing kept nothing is lost."""
    if replace or previous.method == profile.method or not kept:
        return
    host = host_of(previous.url)
    raise MethodChange(
        f"Profile {previous.name!r} ({host}) logs in with {METHOD_LABELS[previous.method]} and "
        f"keeps {', '.join(sorted(kept))}; saving it as {METHOD_LABELS[profile.method]} would drop them.",
        host=host,
        fix="Save the new login under another name, or replace this one on purpose "
        '(save_profile(..., replace=True); in the broker\'s API "replace": true; '
        "`weaviate-auth login NAME --method ...`; the panel's Replace).",
    )


__all__ = ["check_method_change", "require_api_key_profile"]
