"""Play the user's browser on the sandbox provider's pages with httpx: read the HTML
form, fill it in, submit it, keep the provider's session cookie, stop at the redirect
back to the application (or follow it)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self.errors: list[str] = []
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}})
        elif tag == "input" and self.forms and a.get("type") == "hidden":
            fields = self.forms[-1]["fields"]
            assert isinstance(fields, dict)
            fields[a["name"]] = a.get("value", "")
        elif tag == "p" and a.get("class") == "error":
            self._in_error = True

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.errors.append(data)
            self._in_error = False


def parse(page: httpx.Response) -> _Forms:
    parser = _Forms()
    parser.feed(page.text)
    return parser


def page_error(page: httpx.Response) -> str | None:
    """The error line a page shows (wrong password, expired sign-in), if any."""
    errors = parse(page).errors
    return errors[0] if errors else None


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """One browser (one cookie jar). ``follow_app`` follows the final redirect to the
    application too (a Jupyter callback); else sign-ins stop at that redirect."""

    def __init__(self, client: httpx.Client | None = None, follow_app: bool = False) -> None:
        self.client = client or httpx.Client(timeout=10)
        self.follow_app = follow_app

    def close(self) -> None:
        self.client.close()

    def open(self, url: str) -> httpx.Response:
        return self._settle(self.client.get(url))

    def submit(self, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
        """Submit the page's form whose hidden fields are kept, pressing button ``action``."""
        forms = parse(page).forms
        assert forms, f"no form on the page: {page.text[:300]}"
        form = forms[0]
        data = {**dict(form["fields"]), **fields, "action": action}  # type: ignore[call-overload]
        url = urljoin(str(page.url), str(form["action"]))
        if form["method"] == "get":
            return self._settle(self.client.get(url, params=data))
        return self._settle(self.client.post(url, data=data))

    def login(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        return self.submit(page, "login", username=username, password=password)

    def _settle(self, response: httpx.Response) -> httpx.Response:
        """Follow the provider's own redirects; at the app's redirect stop unless told."""
        while response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if not self.follow_app:
                return response
            response = self.client.get(target)
        return response

    def sign_in(self, authorize_url: str, username: str, password: str) -> httpx.Response:
        """The whole sign-in: the login form if no session, else straight through."""
        page = self.open(authorize_url)
        if page.is_redirect or "name='password'" not in page.text:
            return page
        return self.login(page, username, password)
