"""`segan study serve`: the study page and its JSON API (FastAPI, served by uvicorn).

    GET  /                  the page: the question, the input, two paintings, progress
    POST /api/participants  -> {"token"}: a new participant (a random token, no personal data)
    GET  /api/next?token=T  -> {"question", "done", "total", "item"}: progress and next item
    POST /api/votes         {"token", "item", "choice": "left"|"right", "response_ms"?}, as
                            JSON or a url-encoded form -> the new state; 400 malformed,
                            404 unknown token, 409 voted already (nothing recorded twice)
    GET  /images/NAME       the study's images (content-hash names: no method in the address)

The page keeps the token in the browser's localStorage, so a reload continues; keys: F or
the left arrow for the left painting, J or the right arrow for the right one. It loads nothing
from outside the server.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .db import StudyError
from .store import RequestError, StudyStore

MAX_BODY = 4096

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Which one looks more realistic?</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f4; color: #222; }
 main { max-width: 860px; margin: 0 auto; padding: 16px; text-align: center; }
 h1 { font-size: 1.5em; margin: 8px 0; }
 .row { display: flex; gap: 24px; justify-content: center; align-items: flex-start; }
 figure { margin: 0; }
 figcaption { margin-top: 4px; font-size: 0.9em; color: #555; }
 img { width: 256px; height: 256px; image-rendering: pixelated; background: #000;
       border: 3px solid transparent; }
 button.choice { padding: 0; border: none; background: none; cursor: pointer; }
 button.choice:focus img, button.choice:hover img { border-color: #2a6edb; }
 #input { width: 160px; height: 160px; }
 progress { width: 320px; height: 14px; }
 #message { min-height: 1.4em; color: #a00; }
 kbd { border: 1px solid #999; border-radius: 3px; padding: 0 4px; background: #fff; }
</style></head>
<body><main>
 <h1 id="question">Which one looks more realistic?</h1>
 <p>The object in the middle of the small picture is partly hidden. Each large picture shows
  a painting of the whole object. Choose the one that looks more realistic.</p>
 <div id="study">
  <figure><img id="input" alt="the input: the object's visible part"><figcaption>input (its
   visible part bright)</figcaption></figure>
  <div class="row">
   <figure><button class="choice" id="left" data-choice="left"><img id="left-img"
     alt="left painting"></button><figcaption><kbd>F</kbd> or <kbd>&larr;</kbd></figcaption>
   </figure>
   <figure><button class="choice" id="right" data-choice="right"><img id="right-img"
     alt="right painting"></button><figcaption><kbd>J</kbd> or <kbd>&rarr;</kbd></figcaption>
   </figure>
  </div>
 </div>
 <p><progress id="progress" value="0" max="1"></progress> <span id="count"></span></p>
 <p id="message" role="status"></p>
 <p id="done" hidden>Thank you: every pair is answered. You can close this page.</p>
</main>
<script>
"use strict";
let token = localStorage.getItem("segan-study-token");
let item = null, shownAt = 0, busy = false;
const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const r = await fetch(path, options);
  const body = await r.json().catch(() => ({error: r.statusText}));
  return {status: r.status, body};
}
async function start() {
  if (token) {
    const r = await api("api/next?token=" + encodeURIComponent(token));
    if (r.status === 200) return show(r.body);
  }
  const r = await api("api/participants", {method: "POST"});
  token = r.body.token;
  localStorage.setItem("segan-study-token", token);
  const n = await api("api/next?token=" + encodeURIComponent(token));
  show(n.body);
}
function show(state) {
  $("question").textContent = state.question;
  $("progress").max = state.total;
  $("progress").value = state.done;
  $("count").textContent = state.done + " / " + state.total;
  item = state.item;
  if (!item) {
    $("study").hidden = true;
    $("done").hidden = false;
    return;
  }
  $("input").src = item.input;
  $("left-img").src = item.left;
  $("right-img").src = item.right;
  shownAt = performance.now();
  busy = false;
}
async function vote(choice) {
  if (busy || !item) return;
  busy = true;
  const r = await api("api/votes", {method: "POST", headers: {"Content-Type":
    "application/json"}, body: JSON.stringify({token, item: item.id, choice,
    response_ms: Math.round(performance.now() - shownAt)})});
  if (r.status === 200) { $("message").textContent = ""; return show(r.body); }
  $("message").textContent = r.body.error || "error " + r.status;
  if (r.status === 409) {  // answered already (e.g. in another tab): go on
    const n = await api("api/next?token=" + encodeURIComponent(token));
    return show(n.body);
  }
  busy = false;
}
document.addEventListener("keydown", (e) => {
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key.toLowerCase();
  if (k === "arrowleft" || k === "f") { e.preventDefault(); vote("left"); }
  if (k === "arrowright" || k === "j") { e.preventDefault(); vote("right"); }
});
for (const b of document.querySelectorAll("button.choice"))
  b.addEventListener("click", () => vote(b.dataset.choice));
start();
</script>
</body></html>
"""


def build_app(study_dir: str | os.PathLike) -> FastAPI:
    """The FastAPI app of the study at `study_dir` (opened, and migrated if older, here)."""
    store = StudyStore(study_dir)
    app = FastAPI(title="segan study", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.post("/api/participants")
    def new_participant() -> dict[str, str]:
        return {"token": store.new_participant()}

    @app.get("/api/next")
    def next_item(token: str = "") -> dict[str, Any]:
        return store.state(token)

    @app.post("/api/votes")
    async def vote(request: Request) -> dict[str, Any]:
        form = parse_vote(request.headers.get("content-type", ""), await request.body())
        # the store's transaction blocks on the write lock: off the event loop
        return await run_in_threadpool(store.vote, form.get("token"), form.get("item"),
                                       form.get("choice"), form.get("response_ms"))

    app.mount("/images", StaticFiles(directory=Path(study_dir) / "images"), name="images")
    return app


def parse_vote(content_type: str, body: bytes) -> dict[str, Any]:
    """A vote's fields from a JSON object or a url-encoded form; RequestError if malformed."""
    if len(body) > MAX_BODY:
        raise RequestError(f"request body over {MAX_BODY} bytes")
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8") from None
    if kind == "application/json":
        try:
            form = json.loads(text)
        except json.JSONDecodeError as e:
            raise RequestError(f"malformed JSON: {e}") from None
        if not isinstance(form, dict):
            raise RequestError("the vote must be a JSON object")
        return form
    if kind == "application/x-www-form-urlencoded":
        fields = parse_qs(text, keep_blank_values=True)
        if any(len(v) > 1 for v in fields.values()):
            raise RequestError("a form field is given twice")
        return {k: v[0] for k, v in fields.items()}
    raise RequestError(f"send the vote as application/json or a url-encoded form, not "
                       f"{kind or 'no content type'!r}")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or a clear StudyError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StudyError(f"cannot listen on {host}:{port} ({e.strerror}): the port is in use "
                         "or not allowed; pass another --port") from None
    sock.listen(128)
    return sock


def serve(study_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8080,
          ready: Any = None) -> None:
    """Serve the study until interrupted. ready(url) is called once it listens."""
    import uvicorn

    app = build_app(study_dir)  # a bad study fails before the port is taken
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    if ready is not None:
        ready(f"http://{host}:{sock.getsockname()[1]}/")
    server.run(sockets=[sock])
