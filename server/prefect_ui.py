"""Serving a built Prefect 1 web UI (its `dist/` folder) from headwater's own port: `--ui-dir`.

One origin for the UI and the API, so the browser needs no CORS. The UI fetches `settings.json`
at start to learn where its GraphQL server is; headwater answers it itself, pointing at its own
`/graphql` as the browser reached it (scheme and Host of the request, the Host already checked
by the HTTP guard), whatever file the build shipped. Other GET paths are files of the folder;
an unknown path asked for as a page (`Accept: text/html`) gets `index.html`, because the UI
routes in the browser (`/default/flow-run/<id>` is not a file). Paths cannot leave the folder:
each is resolved, symlinks included, and served only when it stays inside.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

INDEX = "index.html"


def ui_dir_problem(directory: Path) -> str | None:
    """Why `directory` cannot be served as the UI, or None when it can."""
    if not directory.is_dir():
        return f"--ui-dir {directory}: not a folder (give the built UI's dist/ folder)"
    if not (directory / INDEX).is_file():
        return f"--ui-dir {directory}: has no {INDEX} (give the built UI's dist/ folder, after `npm run build`)"
    return None


class PrefectUI:
    """Starlette handlers for the UI's files and its `settings.json`."""

    def __init__(self, directory: Path):
        problem = ui_dir_problem(directory)
        if problem:
            raise ValueError(problem)
        self.root = directory.resolve()
        self.index = self.root / INDEX

    async def settings_json(self, request: Request) -> Response:
        """What the UI reads at start: the GraphQL endpoint, and the path it is served under."""
        server_url = str(request.base_url).rstrip("/") + "/graphql"
        return JSONResponse({"server_url": server_url, "base_url": "/"}, headers={"cache-control": "no-cache"})

    async def page(self, request: Request) -> Response:
        path = self.file(request.url.path)
        if path is not None:
            return self.send(path)
        if "text/html" in request.headers.get("accept", ""):
            return self.send(self.index)
        return PlainTextResponse("Not found.", status_code=404)

    def file(self, url_path: str) -> Path | None:
        """The file under the root that `url_path` names, or None (absent, a folder, or outside)."""
        relative = url_path.lstrip("/")
        if not relative or "\x00" in relative or "\\" in relative:
            return None
        try:
            candidate = (self.root / relative).resolve()
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            return None
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def send(self, path: Path) -> Response:
        # index.html names the hashed asset files of the current build: never cache it.
        headers = {"cache-control": "no-cache"} if path == self.index else None
        return FileResponse(path, headers=headers)
