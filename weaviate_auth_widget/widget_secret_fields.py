"""The login panel's secret inputs, kernel side: plain attributes, never widget state.

Their values come from scripts (``panel.api_key.value = ...``) or the form view's one
fallback message, and are taken (read and cleared at once) before any network call; the
view draws the inputs from :meth:`SecretFields.form_fields`, which carries no value.
"""

from __future__ import annotations

from typing import Any

from .login_form import SecretField
from .profiles import PRIMARY_SECRET, kept_secret_covers

#: the module API keys a profile may send as headers: (label, header)
MODULE_KEYS: tuple[tuple[str, str], ...] = (
    ("OpenAI", "X-OpenAI-Api-Key"),
    ("Cohere", "X-Cohere-Api-Key"),
    ("Hugging Face", "X-HuggingFace-Api-Key"),
    ("Voyage AI", "X-VoyageAI-Api-Key"),
    ("Jina AI", "X-JinaAI-Api-Key"),
    ("Mistral", "X-Mistral-Api-Key"),
    ("Google", "X-Goog-Api-Key"),
)
#: a secret field's placeholder when the core keeps a secret it can use
KEPT_HINT = "a secret is kept — leave the field empty to use it"


class SecretFields:
    """Every secret field of one panel: the login methods' own, and the module keys."""

    def __init__(self) -> None:
        self.api_key = SecretField("API key", "paste your API key")
        self.password = SecretField("Password")
        self.client_secret = SecretField("Client secret")
        self.module_keys = {header: SecretField(name) for name, header in MODULE_KEYS}
        #: login method -> the field of its secret (a hub login has none)
        self._by_method = {
            "api_key": self.api_key,
            "password": self.password,
            "client_credentials": self.client_secret,
        }
        self._placeholders = {f: f.placeholder for f in self._by_method.values()}

    def by_kind(self) -> dict[str, SecretField]:
        """Every secret field, by the kind of secret it holds (module keys: ``header:X``)."""
        fields = {PRIMARY_SECRET[method]: field for method, field in self._by_method.items()}
        fields.update({f"header:{h}": f for h, f in self.module_keys.items()})
        return fields

    def module_key_specs(self) -> list[dict[str, str]]:
        """The module-key inputs the view draws: kind and label."""
        return [{"kind": f"header:{h}", "label": f.label} for h, f in self.module_keys.items()]

    def fill(self, secrets: Any) -> None:
        """The fallback route's one message: into the (never synced) fields, once."""
        if not isinstance(secrets, dict):
            return
        fields = self.by_kind()
        for kind, value in secrets.items():
            field = fields.get(kind)
            if field is not None and isinstance(value, str):
                field.value = value

    def take(self, method: str) -> dict[str, str]:
        """Read every secret field and clear it at once (before any network call); keep
        ``method``'s own secret and the module keys."""
        wanted = PRIMARY_SECRET[method]
        secrets: dict[str, str] = {}
        for kind, field in self.by_kind().items():
            if field.value and (kind == wanted or kind.startswith("header:")):
                secrets[kind] = field.value
            field.value = ""
        return secrets

    def show_hints(self, view: dict[str, Any] | None, url: str) -> None:
        """Say "a secret is kept" in a field only when the core keeps one that its
        method can use at ``url`` (``describe()`` lists the kinds kept)."""
        for method, field in self._by_method.items():
            covered = kept_secret_covers(view, method, url)
            field.placeholder = KEPT_HINT if covered else self._placeholders[field]

    def form_fields(self, method: str) -> list[dict[str, str]]:
        """The secret input(s) the view shows for ``method``, with their hints (no values)."""
        field = self._by_method.get(method)
        if field is None:  # a hub login has nothing to type
            return []
        return [{"kind": PRIMARY_SECRET[method], "label": field.label, "placeholder": field.placeholder}]


__all__ = ["KEPT_HINT", "MODULE_KEYS", "SecretFields"]
