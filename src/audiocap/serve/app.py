"""The HTTP service: caption an uploaded sound, search the library by text or by example, listen.

Routes (all errors are JSON ``{"error": code, "detail": message}`` with a 4xx/5xx status):

- ``POST /v1/search``        JSON ``{"text", "k", "offset"}`` -> top-k index items with cosine scores;
                             optional filters (duration range, tag, license) and sort (serve/filters.py)
- ``POST /v1/search/audio``  multipart ``file`` (+ filters as query parameters) -> the k items
                             most similar to the upload
- ``POST /v1/search/similar`` JSON ``{"id", "k", "offset"}`` -> "more like this" item
- ``POST /v1/caption``       multipart ``file`` (+ ``?beam=``) -> captions, best first; audio
                             over ``per_window_above`` seconds gets one caption per window;
                             ``flag`` (silence | low_confidence | null) and ``confidence``
- ``POST /v1/classify``      multipart ``file`` + ``labels`` -> a zero-shot probability per label
                             (serve/classify.py; default labels: the library's tags)
- ``GET  /v1/library``       example queries and tags from the library's own items
- ``GET  /v1/waveform/{id}`` an SVG waveform thumbnail of an item (serve/catalog.py)
- ``GET  /v1/audio/{id}``    the audio file of a registered index item (Range requests work),
                             only if it is audio inside the library folder (serve/library.py)
- ``GET  /v1/info``, ``GET /healthz``, ``GET /`` (the page), ``/docs``, ``/openapi.json``

Model calls and decoding run in a bounded thread pool, never on the event loop; a backend that
is not thread-safe is called under one lock. When more than ``max_pending`` model jobs are
waiting the service answers 503 instead of queueing without bound. Requests whose Host header
is not an allowed name get 421 (DNS rebinding; :class:`audiocap.serve.library.HostGuard`).
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Callable, Iterable, Literal, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from audiocap.audio.nonevent import SILENCE_CAPTION, judge
from audiocap.serve.backend import Backend, CaptionerMissing, Hit
from audiocap.serve.catalog import add_catalog_routes, item_facts
from audiocap.serve.classify import add_classify_route
from audiocap.serve.filters import MAX_CANDIDATES, SearchFilters, filter_and_sort
from audiocap.serve.library import LOOPBACK_HOSTS, HostGuard, library_file
from audiocap.serve.uploads import ApiError, DecodeLimits, decode_upload, read_upload

T = TypeVar("T")
STATIC = resources.files("audiocap.serve") / "static"
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".oga": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg",
               ".aif": "audio/aiff", ".aiff": "audio/aiff"}
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "WAV, FLAC, Ogg, MP3 or AIFF audio"}}}}}}}


class SearchRequest(SearchFilters):
    """A text query for the sound library, with optional filters and order (serve/filters.py)."""

    text: str = Field(..., min_length=1, max_length=1000, description="What the sound is like")
    k: int = Field(10, ge=1, le=100, description="How many results")
    offset: int = Field(0, ge=0, le=10_000, description="Skip this many results (paging)")


class HitOut(BaseModel):
    id: str
    score: float
    caption: str | None = Field(None, description="The dataset's reference caption of the item, if any")
    confidence: float | None = Field(None, description="Calibrated probability (0-1) that the item "
                                     "matches the query; absent for uncalibrated models")
    match: bool | None = Field(None, description="Whether the item counts as a match (calibrated models)")
    audio_url: str | None = Field(None, description="Where to stream the item's audio, if playable")
    waveform_url: str | None = Field(None, description="An SVG waveform thumbnail, if playable")
    duration: float | None = Field(None, description="Seconds, as recorded in the index")
    tags: list[str] = Field(default_factory=list, description="The item's tags from the index")
    license: str | None = Field(None, description="The item's license, if the index has one")
    attribution: str | None = Field(None, description="Author or source, if the index has one")


class SearchResponse(BaseModel):
    query: str
    k: int
    offset: int = 0
    results: list[HitOut]
    no_close_match: bool = Field(False, description="True when the model is calibrated and no result "
                                 "matches: the results are only the closest sounds")


FLAG_DOC = ("'silence': no sound, the caption is 'silence'; 'low_confidence': too short or a steady "
            "tone, hum or noise rather than a sound event, the caption is a guess; null: a sound event")
CONFIDENCE_DOC = "0-1: how much the audio looks like a sound event (0.5 at the low-confidence threshold)"


class CaptionWindow(BaseModel):
    start: float = Field(..., description="Seconds from the start of the upload")
    end: float
    caption: str
    flag: Literal["silence", "low_confidence"] | None = Field(None, description=FLAG_DOC)
    confidence: float | None = Field(None, description=CONFIDENCE_DOC)


class CaptionResponse(BaseModel):
    filename: str
    duration: float = Field(..., description="Seconds of audio received")
    beam: int
    captions: list[str] = Field(..., description="Best first; for audio with windows, the best "
                                "caption of each window in time order")
    windows: list[CaptionWindow] | None = Field(None, description="For audio over the server's "
                                                "per_window_above seconds: one caption per window")
    flag: Literal["silence", "low_confidence"] | None = Field(None, description=FLAG_DOC + " (whole upload)")
    confidence: float | None = Field(None, description=CONFIDENCE_DOC + " (whole upload)")
    reason: str | None = Field(None, description="Why, in words: 'silence', 'too short (...)', 'a steady signal: ...'")


class ModelRunner:
    """Runs blocking calls in a bounded pool; serializes model calls when the backend asks to."""

    def __init__(self, backend: Backend, *, workers: int, max_pending: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audiocap-model")
        self.model_lock = None if getattr(backend, "thread_safe", False) else threading.Lock()
        self.max_pending, self.pending = max_pending, 0

    async def run(self, fn: Callable[..., T], *args, model: bool = True) -> T:
        if self.pending >= self.max_pending:
            raise ApiError(503, "busy", f"{self.pending} requests are already waiting for the "
                           "model; retry in a moment")
        self.pending += 1  # only touched on the event loop thread
        try:
            call = self._locked(fn) if model and self.model_lock is not None else fn
            return await asyncio.get_running_loop().run_in_executor(self.pool, call, *args)
        finally:
            self.pending -= 1

    def _locked(self, fn: Callable[..., T]) -> Callable[..., T]:
        def call(*args):
            with self.model_lock:  # type: ignore[union-attr]
                return fn(*args)
        return call


def create_app(backend: Backend, *, max_upload_bytes: int = 20_000_000,
               max_duration: float | None = 30.0, max_k: int = 100, max_beam: int = 10,
               workers: int = 2, max_pending: int = 64,
               allowed_hosts: Iterable[str] | None = None,
               per_window_above: float = 30.0, upload_timeout: float | None = 30.0,
               decode_limits: DecodeLimits | None = None) -> FastAPI:
    """Build the FastAPI app around ``backend`` with the given limits.

    ``max_upload_bytes`` bounds an uploaded file, ``max_duration`` (seconds) the audio in it
    (the stricter of this and the backend's own limit applies); ``workers`` threads run decoding
    and model calls; ``max_pending`` waiting jobs trigger 503s. ``allowed_hosts`` are the Host
    header names answered (default: the loopback names; ``"*"`` answers any). Uploads longer
    than ``per_window_above`` seconds are captioned window by window (the captioner's clip
    length, ``backend.caption_window`` or 10 s). An upload must arrive within ``upload_timeout``
    seconds (else 408) and may decode to at most ``decode_limits`` (channels and sample rate
    checked in the header, decoded samples counted while decoding; else 413).
    """
    limits = [d for d in (max_duration, getattr(backend, "max_duration", None)) if d is not None]
    duration_limit = min(limits) if limits else None
    runner = ModelRunner(backend, workers=workers, max_pending=max_pending)
    caps = decode_limits or DecodeLimits()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        runner.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="audiocap", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Search a sound library with text or audio (CLAP), caption sounds, "
                  "and stream the library's audio. Errors are JSON: {error, detail}.")
    app.state.backend, app.state.runner = backend, runner
    app.add_middleware(HostGuard, names=list(allowed_hosts) if allowed_hosts is not None else LOOPBACK_HOSTS)

    def playable(item_id: str, *, sniff: bool) -> Path | None:
        return library_file(backend.audio_path(item_id), getattr(backend, "library_roots", None),
                            sniff=sniff)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal_error", f"{type(exc).__name__}: the server failed on this "
                      "request (it keeps serving others); see the server log")

    def hits_out(hits: list[Hit]) -> list[HitOut]:
        out = []
        for h in hits:
            url = quote(h.id, safe="")
            live = playable(h.id, sniff=False) is not None
            out.append(HitOut(id=h.id, score=round(float(h.score), 6), caption=h.caption,
                              confidence=getattr(h, "confidence", None), match=getattr(h, "match", None),
                              audio_url=f"/v1/audio/{url}" if live else None,
                              waveform_url=f"/v1/waveform/{url}" if live else None,
                              **item_facts(app.state.catalog.get(h.id))))
        return out

    def no_match(hits: list[Hit]) -> bool:
        calibrated = [h for h in hits if getattr(h, "confidence", None) is not None]
        return bool(calibrated) and not any(getattr(h, "match", False) for h in calibrated)

    async def decoded(request: Request):
        upload = await read_upload(request, max_bytes=max_upload_bytes, timeout=upload_timeout)
        wave, seconds = await runner.run(partial(decode_upload, upload, sr=backend.sample_rate,
                                                 max_duration=duration_limit, limits=caps), model=False)
        return upload, wave, seconds

    @app.post("/v1/search", response_model=SearchResponse, tags=["search"])
    async def search_text(body: SearchRequest) -> SearchResponse:
        """Rank the library's sounds by CLAP similarity to a text description."""
        text = body.text.strip()
        if not text:
            raise ApiError(422, "empty_query", "text is blank; describe the sound you want")
        if body.k > max_k:
            raise ApiError(422, "k_too_large", f"k={body.k} exceeds this server's limit {max_k}")
        if body.offset + body.k > max_k:
            raise ApiError(422, "k_too_large", f"results {body.offset + 1}-{body.offset + body.k} "
                           f"are past this server's limit of {max_k} results")
        if body.active():  # filter the whole ranking, then page through the best max_k that pass
            pool = min(len(app.state.catalog), MAX_CANDIDATES) or max_k
            hits = await runner.run(backend.search_text, text, pool)
            hits = filter_and_sort(hits, app.state.catalog, body, limit=max_k)
        else:
            hits = await runner.run(backend.search_text, text, body.offset + body.k)
        hits = hits[body.offset:body.offset + body.k]
        return SearchResponse(query=text, k=body.k, offset=body.offset, results=hits_out(hits),
                              no_close_match=no_match(hits))

    @app.post("/v1/search/audio", response_model=SearchResponse, tags=["search"],
              openapi_extra=UPLOAD_BODY)
    async def search_audio(request: Request,
                           filters: Annotated[SearchFilters, Query()],
                           k: int = Query(10, ge=1, le=100, description="How many results")
                           ) -> SearchResponse:
        """Rank the library's sounds by CLAP similarity to an uploaded sound (optionally filtered
        and sorted, query parameters as the fields of /v1/search)."""
        if k > max_k:
            raise ApiError(422, "k_too_large", f"k={k} exceeds this server's limit {max_k}")
        upload, wave, _ = await decoded(request)
        if filters.active():
            pool = min(len(app.state.catalog), MAX_CANDIDATES) or max_k
            hits = await runner.run(backend.search_audio, wave, pool)
            hits = filter_and_sort(hits, app.state.catalog, filters, limit=max_k)[:k]
        else:
            hits = await runner.run(backend.search_audio, wave, k)
        return SearchResponse(query=upload.filename, k=k, results=hits_out(hits), no_close_match=no_match(hits))

    @app.post("/v1/caption", response_model=CaptionResponse, tags=["caption"],
              openapi_extra=UPLOAD_BODY)
    async def caption(request: Request,
                      beam: int = Query(3, ge=1, le=max_beam, description="Beam size (1 = greedy)")
                      ) -> CaptionResponse:
        """Describe an uploaded sound in words (beam search; captions best first). Silence is
        captioned "silence" without running the model; ``flag`` and ``confidence`` say whether the
        upload is a sound event at all (:mod:`audiocap.audio.nonevent`)."""
        upload, wave, seconds = await decoded(request)
        verdict = await runner.run(judge, wave, backend.sample_rate, model=False)
        common = {"filename": upload.filename, "duration": round(seconds, 3), "beam": beam,
                  "flag": verdict.flag, "confidence": verdict.confidence, "reason": verdict.reason}
        if verdict.flag == "silence":
            return CaptionResponse(captions=[SILENCE_CAPTION], **common)
        try:
            if seconds > per_window_above:
                per_window = getattr(backend, "caption_windows", None)  # the model's own policy
                spans = await runner.run(partial(per_window, wave, beam) if per_window is not None
                                         else partial(caption_windows, backend, wave, beam))
                windows = await runner.run(judged_windows, wave, backend.sample_rate, spans, model=False)
                return CaptionResponse(captions=[w.caption for w in windows], windows=windows, **common)
            captions = await runner.run(backend.caption, wave, beam)
        except CaptionerMissing as exc:
            raise ApiError(503, "no_captioner", str(exc)) from None
        return CaptionResponse(captions=list(captions), **common)

    @app.head("/v1/audio/{item_id:path}", include_in_schema=False)  # headers only, like GET
    @app.get("/v1/audio/{item_id:path}", tags=["audio"],
             responses={200: {"content": {t: {} for t in sorted(set(AUDIO_TYPES.values()))}}})
    async def audio(item_id: str) -> FileResponse:
        """Stream the audio of a registered index item (the id is looked up, never joined to a path;
        the file must be audio inside the library folder, checked now, symlinks resolved)."""
        path = await runner.run(partial(playable, item_id, sniff=True), model=False)
        if path is None:
            raise ApiError(404, "unknown_id", f"no playable item with id {item_id[:200]!r}")
        media = AUDIO_TYPES.get(Path(path).suffix.lower()) or mimetypes.guess_type(str(path))[0]
        return FileResponse(path, media_type=media or "application/octet-stream",
                            content_disposition_type="inline",
                            headers={"X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "public, max-age=3600"})

    @app.get("/v1/info", tags=["meta"])
    async def info() -> dict:
        """What is loaded and the limits in force."""
        return {**backend.info(), "max_upload_bytes": max_upload_bytes,
                "max_duration": duration_limit, "max_k": max_k, "max_beam": max_beam,
                "per_window_above": per_window_above,
                "caption_window": float(getattr(backend, "caption_window", None) or 10.0),
                "upload_timeout": upload_timeout, "max_channels": caps.max_channels,
                "max_sample_rate": caps.max_sample_rate,
                "max_decoded_samples": caps.sample_budget(duration_limit)}

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict:
        """Liveness: answers without touching the model."""
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP,
                                     "X-Content-Type-Options": "nosniff"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI (5.x, OpenAPI 3.1) served from the swagger-ui-py package: offline, no CDN."""
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title="audiocap API",
                                   swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/swagger-ui/favicon-32x32.png")

    app.state.catalog = {}
    add_catalog_routes(app, backend, runner.run, api_error=ApiError, max_k=max_k, hits_out=hits_out,
                       response_model=SearchResponse, no_match=no_match,
                       playable=lambda item_id: playable(item_id, sniff=True))
    add_classify_route(app, backend, runner.run, decoded, api_error=ApiError)
    app.mount("/swagger-ui", StaticFiles(directory=str(_swagger_ui_assets())), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def caption_windows(backend: Backend, wave, beam: int) -> list[tuple[float, float, str]]:
    """Best caption of each back-to-back window of ``wave`` (``backend.caption_window`` seconds,
    the last window shorter): ``[(start s, end s, caption), ...]``, for backends without their own
    ``caption_windows`` (the model backend uses the checkpoint's long-audio policy). Runs under
    the model lock."""
    sr = int(backend.sample_rate)
    step = int(round(float(getattr(backend, "caption_window", None) or 10.0) * sr))
    starts = list(range(0, len(wave), step))
    if len(starts) > 1 and len(wave) - starts[-1] < sr // 2:
        starts.pop()  # a tail under half a second joins the window before it
    ends = starts[1:] + [len(wave)]
    return [(round(a / sr, 3), round(b / sr, 3), backend.caption(wave[a:b], beam)[0])
            for a, b in zip(starts, ends)]


def judged_windows(wave, sr: int, spans: list[tuple[float, float, str]]) -> list[CaptionWindow]:
    """Each window's caption with the non-event judgement of its own audio; a silent window
    reads "silence" whatever the model said."""
    out = []
    for a, b, text in spans:
        j = judge(wave[int(round(a * sr)) : int(round(b * sr))], sr)
        out.append(CaptionWindow(start=a, end=b, caption=SILENCE_CAPTION if j.flag == "silence" else text,
                                 flag=j.flag, confidence=j.confidence))
    return out


def _swagger_ui_assets() -> Path:
    """The Swagger UI files shipped by the ``swagger-ui-py`` package (found, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing; pip install swagger-ui-py==25.7.1")
    return Path(list(spec.submodule_search_locations)[0]) / "static"


def _error(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)
