"""A Weaviate double: the authentication surface of the server, faithfully; little else.

Follows ``spec/weaviate-auth-surface.md``: which routes are public, how a token is
found and routed to a scheme, the exact 401/403/404/500 bodies and Content-Types, and
the texts that changed between versions. Requests are recorded (never their tokens)
so tests can see what a client sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
from asyncio import Future
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from http.client import responses
from typing import Any, ClassVar

from tornado.web import Application

from . import data
from ._http import TEXT, BaseHandler, log_request
from .db_users import USERS_SINCE, DbUsers, KeyRejected
from .oidc_check import ClaimMissing, OIDCRejected, TokenVerifier, looks_like_jwt

MIN_VERSION = (1, 27, 0)
OWN_INFO_SINCE = (1, 28, 0)
NEW_APIKEY_TEXT_SINCE = (1, 32, 5)
NEW_NO_SCHEME_TEXT_SINCE = (1, 36, 0)

NO_SCHEME_NEW = (
    "no authentication scheme is configured (API Key or OIDC), but an 'Authorization' header was provided. "
    "Please configure an auth scheme or remove the header for anonymous access"
)
NO_SCHEME_OLD = (
    "oidc auth is not configured, please try another auth scheme or set up weaviate with OIDC configured"
)
APIKEY_NEW = "unauthorized: invalid api key"
APIKEY_OLD = "invalid api key, please provide a valid api key"

#: What the built-in RBAC roles may do (a small subset of Weaviate's permission model).
_READ = [
    {"action": "read_collections", "collections": {"collection": "*"}},
    {"action": "read_data", "data": {"collection": "*"}},
]
_WRITE = [
    {"action": "create_collections", "collections": {"collection": "*"}},
    {"action": "create_data", "data": {"collection": "*"}},
    {"action": "update_data", "data": {"collection": "*"}},
    {"action": "delete_data", "data": {"collection": "*"}},
]
_USERS = [
    {"action": action, "users": {"users": "*"}}
    for action in ("read_users", "create_users", "update_users", "delete_users", "assign_and_revoke_users")
] + [{"action": "read_roles", "roles": {"role": "*", "scope": "all"}}]
ROLE_PERMISSIONS: dict[str, list[dict[str, Any]]] = {
    "root": _READ + _WRITE + _USERS,
    "admin": _READ + _WRITE + _USERS,
    "viewer": _READ,
    "read-only": _READ,
}


def fingerprint(token: str) -> str:
    """What the double records of a token: a sha256 prefix, enough to count distinct tokens."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def parse_version(text: str) -> tuple[int, int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        raise ValueError(f"not a Weaviate version: {text!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


@dataclass
class WeaviateConfig:
    """How the double is set up; names follow Weaviate's ``AUTHENTICATION_*`` settings.

    ``oidc_issuer=None`` means "the sandbox's own provider" (the runner fills it in).
    With neither scheme enabled the server is anonymous, as Weaviate is.
    """

    version: str = "1.32.1"
    anonymous_access: bool = False
    apikey_enabled: bool = False
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)  # key -> username
    oidc_enabled: bool = False
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_skip_client_id_check: bool = False
    oidc_username_claim: str = "email"
    oidc_groups_claim: str = "groups"
    oidc_scopes: list[str] = field(default_factory=list)
    rbac: bool = False
    roles: dict[str, list[str]] = field(default_factory=dict)  # username -> role names
    group_roles: dict[str, list[str]] = field(default_factory=dict)  # group -> role names
    read_only_users: set[str] = field(default_factory=set)
    #: ``AUTHENTICATION_DB_USERS_ENABLED`` (v1.30+)
    db_users_enabled: bool = False
    #: ``AUTHORIZATION_RBAC_ROOT_USERS``
    root_users: set[str] = field(default_factory=set)
    ready: bool = True
    #: seconds added to every request, REST and gRPC (a network's round trip, for benchmarks)
    delay: float = 0.0

    def __post_init__(self) -> None:
        if parse_version(self.version) < MIN_VERSION:
            raise ValueError("the double models Weaviate 1.27 and newer")
        if self.rbac and self.anonymous:
            raise ValueError("Weaviate refuses RBAC together with anonymous access")
        if self.apikey_enabled and not self.api_keys:
            raise ValueError("apikey_enabled needs at least one key in api_keys")
        if self.db_users_enabled and parse_version(self.version) < USERS_SINCE:
            raise ValueError("database users exist from Weaviate 1.30 on")
        if self.oidc_enabled and not (self.oidc_client_id or self.oidc_skip_client_id_check):
            raise ValueError("oidc_enabled needs oidc_client_id (or oidc_skip_client_id_check)")

    @property
    def anonymous(self) -> bool:
        return self.anonymous_access or not (self.apikey_enabled or self.oidc_enabled)

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    def methods(self) -> list[str]:
        return [name for name, on in (("API-keys", self.apikey_enabled), ("OIDC", self.oidc_enabled)) if on]


@dataclass(frozen=True)
class Principal:
    username: str
    groups: list[str]
    user_type: str  # "apikey" (static key), "db_user" or "oidc"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double saw it: never a token, only whether one came and how."""

    method: str
    path: str
    authorization: bool
    query_token: bool
    username: str | None
    status: int
    headers: tuple[str, ...]
    token: str | None = None  # fingerprint (see :func:`fingerprint`), never the token
    started: float = 0.0  # time.monotonic() when the request arrived, before the delay
    ended: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GrpcCall:
    """One gRPC call as the double saw it: method, token fingerprint, who, status name."""

    method: str
    token: str | None
    username: str | None
    code: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuthFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WeaviateDouble:
    """State of one double; :meth:`app` serves it over HTTP."""

    def __init__(self, config: WeaviateConfig | None = None) -> None:
        self.config = config or WeaviateConfig()
        self.url = ""  # set by the runner once the port is known
        self.objects = data.seed_objects()
        self._requests: list[RecordedRequest] = []
        self._grpc_calls: list[GrpcCall] = []
        self.grpc_port = 0  # set by the runner once the gRPC server is bound
        self._lock = threading.Lock()
        self._verifier: TokenVerifier | None = None
        self._verifier_key: tuple[Any, ...] = ()
        self.db_users = DbUsers()

    # -- recording -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def count(self, path: str | None = None, method: str | None = None) -> int:
        return sum(
            1 for r in self.requests if (path is None or r.path == path) and (method in (None, r.method))
        )

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    @property
    def grpc_calls(self) -> list[GrpcCall]:
        with self._lock:
            return list(self._grpc_calls)

    def record_grpc(self, method: str, token: str | None, username: str | None, code: str) -> None:
        with self._lock:
            self._grpc_calls.append(GrpcCall(method, token, username, code))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._grpc_calls.clear()

    async def network_delay(self) -> None:
        if self.config.delay > 0:
            await asyncio.sleep(self.config.delay)

    # -- authentication --------------------------------------------------------------

    def anonymous_message(self) -> str:
        return (
            "anonymous access not enabled. Please authenticate through one of the available methods: "
            f"[{', '.join(self.config.methods())}]"
        )

    async def authenticate(self, token: str) -> Principal:
        """The principal for a presented token, or :class:`AuthFailure`."""
        cfg = self.config
        if cfg.apikey_enabled and cfg.oidc_enabled:
            scheme = "oidc" if looks_like_jwt(token) else "apikey"
        elif cfg.apikey_enabled or cfg.oidc_enabled:
            scheme = "apikey" if cfg.apikey_enabled else "oidc"
        else:
            new = cfg.version_tuple >= NEW_NO_SCHEME_TEXT_SINCE
            raise AuthFailure(401, NO_SCHEME_NEW if new else NO_SCHEME_OLD)
        if scheme == "apikey":
            return self._check_api_key(token)
        try:
            verified = await self.verifier().verify(token)
        except OIDCRejected as exc:
            raise AuthFailure(401, f"unauthorized: {exc}") from None
        except ClaimMissing as exc:
            raise AuthFailure(500, str(exc)) from None
        return Principal(verified.username, verified.groups, "oidc")

    def _check_api_key(self, token: str) -> Principal:
        given = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for key, user in self.config.api_keys.items():
            if hmac.compare_digest(given, hashlib.sha256(key.encode()).digest()):
                found = user
        text = APIKEY_NEW if self.config.version_tuple >= NEW_APIKEY_TEXT_SINCE else APIKEY_OLD
        if found is None and self.config.db_users_enabled:
            try:
                db_user = self.db_users.check_key(token)
            except KeyRejected as exc:
                raise AuthFailure(401, f"{text}: {exc}") from None
            if db_user is not None:
                return Principal(db_user.user_id, [], "db_user")
        if found is None:
            raise AuthFailure(401, text)
        return Principal(found, [], "apikey")

    def verifier(self) -> TokenVerifier:
        cfg = self.config
        key = (
            cfg.oidc_issuer,
            cfg.oidc_client_id,
            cfg.oidc_skip_client_id_check,
            cfg.oidc_username_claim,
            cfg.oidc_groups_claim,
        )
        if self._verifier is None or key != self._verifier_key:
            if self._verifier is not None:
                self._verifier.close()
            if not cfg.oidc_issuer:
                raise AuthFailure(401, "unauthorized: oidc: no issuer configured")
            self._verifier = TokenVerifier(cfg.oidc_issuer, *key[1:])
            self._verifier_key = key
        return self._verifier

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None

    # -- authorization ---------------------------------------------------------------

    def roles_of(self, principal: Principal) -> list[str]:
        if principal.user_type == "db_user":
            user = self.db_users.get(principal.username)
            return list(user.roles) if user else []
        names = list(self.config.roles.get(principal.username, []))
        for group in principal.groups:
            names += self.config.group_roles.get(group, [])
        return list(dict.fromkeys(names))

    def is_root(self, principal: Principal | None) -> bool:
        return principal is not None and principal.username in self.config.root_users

    def permissions_of(self, principal: Principal | None) -> list[dict[str, Any]]:
        roles = self.roles_of(principal) if principal else []
        return [p for role in roles for p in ROLE_PERMISSIONS.get(role, [])]

    def may(self, principal: Principal | None, action: str) -> bool:
        """Whether the caller may do ``action`` (RBAC roles, or the admin list without RBAC)."""
        if self.is_root(principal):
            return True
        if not self.config.rbac:
            name = principal.username if principal else "anonymous"
            return action.startswith("read_") or name not in self.config.read_only_users
        return any(p["action"] == action for p in self.permissions_of(principal))

    def forbidden_text(self, principal: Principal | None, action: str, resource: str) -> str:
        """Weaviate's 403 message; ``resource`` like ``[Domain: users, User: x]``."""
        name = principal.username if principal else "anonymous"
        prefix = "rbac: " if self.config.rbac else ""
        return f"{prefix}authorization, forbidden action: user '{name}' has insufficient permissions to {action} {resource}"

    def forbidden_write(self, principal: Principal | None, cls: str) -> str | None:
        """The 403 message when the principal may not create objects, else None."""
        name = principal.username if principal else "anonymous"
        allowed = name not in self.config.read_only_users
        if allowed and self.config.rbac:
            perms = [
                p
                for role in (self.roles_of(principal) if principal else [])
                for p in ROLE_PERMISSIONS.get(role, [])
            ]
            allowed = any(p["action"] == "create_data" for p in perms)
        if allowed:
            return None
        if self.config.rbac:
            what = f"create_data [Domain: data, Collection: {cls}, Tenant: *, Object: *]"
            return (
                f"rbac: authorization, forbidden action: user '{name}' has insufficient permissions to {what}"
            )
        return (
            f"authorization, forbidden action: user '{name}' has insufficient permissions to create objects"
        )

    # -- documents -------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {
            "hostname": "http://[::]:8080",
            "version": self.config.version,
            "modules": {},
            "grpcMaxMessageSize": 104858000,
        }

    def openid_configuration(self) -> dict[str, Any]:
        cfg = self.config
        doc: dict[str, Any] = {}
        if cfg.oidc_issuer:
            doc["href"] = cfg.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
        if cfg.oidc_client_id:
            doc["clientId"] = cfg.oidc_client_id
        if cfg.oidc_scopes:
            doc["scopes"] = list(cfg.oidc_scopes)
        return doc

    def own_info(self, principal: Principal) -> dict[str, Any]:
        roles = [{"name": r, "permissions": ROLE_PERMISSIONS.get(r, [])} for r in self.roles_of(principal)]
        return {"username": principal.username, "groups": list(principal.groups), "roles": roles}

    def app(self, extra_routes: Sequence[tuple[str, type, dict[str, Any]]] = ()) -> Application:
        """The server; ``extra_routes`` (e.g. :func:`.users_api.routes`) go before the sandbox's own."""
        args = {"double": self}
        return Application(
            [
                (r"/v1/\.well-known/live", _Live, args),
                (r"/v1/\.well-known/ready", _Ready, args),
                (r"/v1/\.well-known/openid-configuration", _OpenID, args),
                (r"/v1/?", _Root, args),
                (r"/v1/meta", _Meta, args),
                (r"/v1/schema", _Schema, args),
                (r"/v1/graphql", _GraphQL, args),
                (r"/v1/objects", _Objects, args),
                (r"/v1/users/own-info", _OwnInfo, args),
                *extra_routes,
                (r"/_sandbox/requests", _SandboxRequests, args),
                (r"/_sandbox/grpc-calls", _SandboxGrpcCalls, args),
                (r"/_sandbox/reset", _SandboxReset, args),
            ],
            default_handler_class=_NotFound,
            default_handler_args=args,
            log_function=log_request,
        )


class _Handler(BaseHandler):
    """Route check, then the anonymous gate and token check, as Weaviate orders them."""

    gate: ClassVar[str] = "protected"  # "public", "skip_exact" (exact URL skips the gate) or "protected"
    methods: ClassVar[tuple[str, ...]] = ("GET",)
    since: ClassVar[tuple[int, int, int] | None] = None
    recorded: ClassVar[bool] = True

    def initialize(self, double: WeaviateDouble) -> None:
        self.double = double
        self.principal: Principal | None = None
        self._query_token = False
        self._token_seen: str | None = None
        self._started = time.monotonic()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code >= 500:
            self.send_json(status_code, {"error": [{"message": responses.get(status_code, "error")}]})
        else:
            self.send_json(status_code, {"code": status_code, "message": responses.get(status_code, "error")})

    def not_found(self) -> None:
        self.send_json(404, {"code": 404, "message": f"path {self.request.path} was not found"})

    def token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and header[7:]:
            return header[7:]
        value = self.get_query_argument("access_token", None)
        if value:
            self._query_token = True
            return value
        return None

    async def prepare(self) -> None:
        await self.double.network_delay()
        method = self.request.method or ""
        if method not in self.methods:
            self.set_header("Allow", ", ".join(self.methods))
            self.send_json(
                405,
                {
                    "code": 405,
                    "message": f"method {method} is not allowed, but [{' '.join(self.methods)}] are",
                },
            )
            return
        if self.since is not None and self.double.config.version_tuple < self.since:
            self.not_found()
            return
        if self.gate == "public":
            return
        token = self.token()
        if token is None:
            exact = self.gate == "skip_exact" and "?" not in (self.request.uri or "")
            if not (exact or self.double.config.anonymous):
                self.send_json(401, {"code": 401, "message": self.double.anonymous_message()}, TEXT)
            return
        self._token_seen = fingerprint(token)
        try:
            self.principal = await self.double.authenticate(token)
        except AuthFailure as exc:
            self.send_json(exc.status, {"code": exc.status, "message": exc.message})

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        # Record before the answer leaves, so a client never sees it before the log does.
        if not self._finished:
            self._record()
        return super().finish(chunk)

    def _record(self) -> None:
        if not self.recorded:
            return
        request = self.request
        self.double.record(
            RecordedRequest(
                method=request.method or "",
                path=request.path,
                authorization="Authorization" in request.headers,
                query_token=self._query_token,
                username=self.principal.username if self.principal else None,
                status=self.get_status(),
                headers=tuple(sorted({name.lower() for name in request.headers})),
                token=self._token_seen,
                started=self._started,
                ended=time.monotonic(),
            )
        )

    def json_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or None after answering 422."""
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            self.send_json(422, {"error": [{"message": "the request body is not valid JSON"}]})
            return None
        if not isinstance(body, dict):
            self.send_json(422, {"error": [{"message": "the request body must be a JSON object"}]})
            return None
        return body


class _Live(_Handler):
    gate = "public"

    def get(self) -> None:
        self.send_empty(200)


class _Ready(_Handler):
    gate = "public"

    def get(self) -> None:
        self.send_empty(200 if self.double.config.ready else 503)


class _OpenID(_Handler):
    gate = "skip_exact"

    def get(self) -> None:
        if not self.double.config.oidc_enabled:
            self.send_empty(404)
        else:
            self.send_json(200, self.double.openid_configuration())


class _Root(_Handler):
    gate = "skip_exact"
    _LINKS: ClassVar[list[tuple[str, str]]] = [
        ("/v1/meta", "Meta information about this instance/cluster"),
        ("/v1/schema", "view complete schema"),
        ("/v1/objects{/:id}", "CRUD objects"),
        ("/v1/graphql", "GraphQL endpoint"),
        ("/v1/.well-known/live", "Check if Weaviate is live (returns 200 on GET when live)"),
        ("/v1/.well-known/ready", "Check if Weaviate is ready (returns 200 on GET when ready)"),
        (
            "/v1/.well-known/openid-configuration",
            "view link to openid configuration (returns 404 on GET if no openid is configured)",
        ),
    ]

    def get(self) -> None:
        self.send_json(200, {"links": [{"href": href, "name": name} for href, name in self._LINKS]})


class _Meta(_Handler):
    def get(self) -> None:
        self.send_json(200, self.double.meta())


class _Schema(_Handler):
    def get(self) -> None:
        self.send_json(200, data.SCHEMA)


class _GraphQL(_Handler):
    methods = ("POST",)

    def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        query, variables = body.get("query"), body.get("variables")
        if not isinstance(query, str) or not query.strip():
            self.send_json(422, {"error": [{"message": "query cannot be empty"}]})
        elif variables is not None and not isinstance(variables, dict):
            self.send_json(422, {"error": [{"message": "variables must be an object"}]})
        else:
            self.send_json(200, data.graphql(query, self.double.objects))


class _Objects(_Handler):
    methods = ("GET", "POST")

    def get(self) -> None:
        objects = self.double.objects
        self.send_json(200, {"objects": objects, "totalResults": len(objects)})

    def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        denied = self.double.forbidden_write(self.principal, str(body.get("class")))
        if denied:
            self.send_json(403, {"error": [{"message": denied}]})
            return
        try:
            obj = data.new_object(body)
        except ValueError as exc:
            self.send_json(422, {"error": [{"message": str(exc)}]})
            return
        self.double.objects.append(obj)
        self.send_json(200, obj)


class _OwnInfo(_Handler):
    since = OWN_INFO_SINCE

    def get(self) -> None:
        if self.principal is None:
            self.send_empty(401)
        elif not self.double.config.rbac:
            self.send_empty(404)
        else:
            self.send_json(200, self.double.own_info(self.principal))


class _NotFound(_Handler):
    methods = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    async def prepare(self) -> None:
        self.not_found()


class _SandboxRequests(_Handler):
    gate = "public"
    recorded = False

    def get(self) -> None:
        entries = self.double.requests
        self.send_json(200, {"count": len(entries), "requests": [e.as_dict() for e in entries]})


class _SandboxGrpcCalls(_Handler):
    gate = "public"
    recorded = False

    def get(self) -> None:
        calls = self.double.grpc_calls
        self.send_json(200, {"count": len(calls), "calls": [c.as_dict() for c in calls]})


class _SandboxReset(_Handler):
    gate = "public"
    methods = ("POST",)
    recorded = False

    def post(self) -> None:
        self.double.reset()
        self.send_empty(204)
