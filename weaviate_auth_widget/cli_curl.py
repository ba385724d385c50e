"""``weaviate-auth curl``: curl with a profile's credentials, none of them in argv.

The Authorization header (and module-key headers) go to curl in a config file read from
an anonymous pipe (``curl --config /dev/fd/N``), so no secret shows in ``ps``,
``/proc/<pid>/cmdline``, the shell history or the environment; the user's own stdin stays
free for ``-d @-``. :func:`shell_command` is the line ``session.curl(path)`` returns.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence

from .cli_output import PROG
from .errors import InvalidProfile, WeaviateAuthError


class CurlMissing(WeaviateAuthError):
    code = "curl_missing"

    def __init__(self) -> None:
        super().__init__("curl is not installed (not found on PATH).", fix="Install curl, then try again.")


def cluster_url(base: str, path: str) -> str:
    """The profile's cluster URL + ``path``; ``path`` must start with ``/`` so the
    request (and its credentials) can only go to that cluster."""
    if not path.startswith("/") or any(c in path for c in "\r\n\t "):
        raise InvalidProfile(
            f"The path {path[:80]!r} is not a path on the cluster.",
            fix="Give a path starting with '/', e.g. /v1/meta (the cluster URL comes from the profile).",
        )
    return base.rstrip("/") + path


#: options whose value is a URL that gets no credentials (proxies, referer, DNS)
_URL_VALUED = frozenset({"-x", "--proxy", "--preproxy", "-e", "--referer", "--doh-url"})
#: options that would carry the headers elsewhere: more URLs, or redirects (curl drops
#: Authorization on a redirect to another host, but not the module-key headers)
_REFUSED = frozenset({"--url", "--next", "-:", "--location", "--location-trusted", "-K", "--config"})
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SHORT_L_RE = re.compile(r"^-[A-Za-z0-9#]*L")


def check_options(options: Sequence[str]) -> None:
    """Refuse curl options that would send the profile's headers anywhere but
    ``PATH`` on its cluster: other URLs, ``--next``, following redirects."""
    previous = ""
    for option in options:
        name = option.split("=", 1)[0]
        bad = (
            name in _REFUSED
            or (option.startswith("-") and not option.startswith("--") and _SHORT_L_RE.match(option))
            or (_URL_RE.match(option) and previous not in _URL_VALUED)
        )
        if bad:
            raise InvalidProfile(
                f"weaviate-auth curl does not pass {option[:60]!r} to curl: the profile's headers "
                "would go to another URL (or follow a redirect).",
                fix="Give one PATH on the profile's cluster; for another host use `weaviate-auth token` "
                "with a tool of your choice.",
            )
        previous = option


def _quoted(value: str) -> str:
    """A value in curl's config syntax (double quotes, backslash escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t") + '"'


def curl_config(url: str, token: str, headers: Mapping[str, str]) -> bytes:
    """The config curl reads: the URL and the headers carrying secrets."""
    lines = [f"url = {_quoted(url)}", f"header = {_quoted('Authorization: Bearer ' + token)}"]
    lines += [f"header = {_quoted(f'{name}: {value}')}" for name, value in headers.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def run_curl(config: bytes, options: Sequence[str], *, curl: str = "curl") -> int:
    """Run curl with ``config`` on a pipe and ``options`` as they are; curl's exit code."""
    program = shutil.which(curl)
    if program is None:
        raise CurlMissing()
    read_fd, write_fd = os.pipe()
    # the config is written by a thread: a long token list cannot fill the pipe and block
    writer = threading.Thread(target=_write_all, args=(write_fd, config), daemon=True)
    try:
        proc = subprocess.Popen(  # noqa: S603 - curl from PATH, the user's own options
            [program, "--config", f"/dev/fd/{read_fd}", *options], pass_fds=(read_fd,)
        )
    finally:
        os.close(read_fd)
    writer.start()
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        return 130
    finally:
        writer.join(5)


def _write_all(fd: int, data: bytes) -> None:
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except BrokenPipeError:  # curl exited before reading it (e.g. bad options)
        pass


def shell_command(profile: str, path: str, *options: str) -> str:
    """The ``weaviate-auth curl PROFILE PATH ...`` line for a shell: names, no secret."""
    return shlex.join([PROG, "curl", profile, path, *options])


__all__ = ["CurlMissing", "check_options", "cluster_url", "curl_config", "run_curl", "shell_command"]
