"""``POST /v1/classify``: zero-shot classification of an uploaded sound (:mod:`audiocap.zeroshot`).

The upload goes through the same intake as ``/v1/caption`` (size, content sniffing, header-first
decode: :mod:`audiocap.serve.uploads`); the candidate labels come in the same multipart form
(field ``labels``, comma- or newline-separated). Without labels the library's own tags are the
candidates, so the page can offer them as one-click choices.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

from fastapi import Request
from pydantic import BaseModel, Field

from audiocap.zeroshot import DEFAULT_PROMPT, MAX_LABELS, LabelError, parse_labels

CLASSIFY_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "WAV, FLAC, Ogg, MP3 or AIFF audio"},
                   "labels": {"type": "string", "example": "dog barking, rain, siren",
                              "description": "Candidate labels, comma- or newline-separated (at least "
                              f"2, at most {MAX_LABELS}); default: the library's tags"}}}}}}}


class LabelOut(BaseModel):
    label: str
    probability: float = Field(..., description="Softmax over the candidate labels of the model's "
                               "logit scale x cosine: the labels' probabilities sum to 1")
    cosine: float = Field(..., description="CLAP cosine similarity of the sound and the label's prompt")


class ClassifyResponse(BaseModel):
    filename: str
    duration: float = Field(..., description="Seconds of audio received")
    prompt: str = Field(..., description="How each label was put into words for the text tower")
    labels_from: str = Field(..., description="'request' or 'library tags'")
    labels: list[LabelOut] = Field(..., description="Every candidate label, most probable first")


def library_labels(items: list[dict]) -> list[str]:
    """The library's tags, most frequent first (at most :data:`MAX_LABELS`): the default candidates."""
    counts = Counter(str(t).strip() for it in items for t in (it.get("tags") or []) if str(t).strip())
    return [t for t, _ in counts.most_common(MAX_LABELS)]


def add_classify_route(app, backend, run: Callable, decoded: Callable, *, api_error: type) -> None:
    """Register ``POST /v1/classify`` on ``app``; ``decoded(request)`` is the app's upload intake
    (``-> (upload, wave, seconds)``) and ``run`` its bounded model runner."""
    classify = getattr(backend, "classify", None)

    @app.post("/v1/classify", response_model=ClassifyResponse, tags=["classify"], openapi_extra=CLASSIFY_BODY)
    async def classify_upload(request: Request) -> ClassifyResponse:
        """Which of the candidate labels the uploaded sound is (zero-shot CLAP): a probability per label."""
        if classify is None:
            raise api_error(503, "no_classifier", "this server's backend cannot classify sounds")
        upload, wave, seconds = await decoded(request)
        text = upload.fields.get("labels", "")
        source = "request"
        try:
            if text.strip():
                labels = parse_labels(text)
            else:
                source = "library tags"
                labels = parse_labels(library_labels(list(app.state.catalog.values())))
        except LabelError as exc:
            if source == "request":
                raise api_error(422, "bad_labels", str(exc)) from None
            raise api_error(422, "no_labels", "no candidate labels: type at least two (comma-separated); "
                            "this library has too few tags to offer") from None
        ranked = await run(classify, wave, labels, DEFAULT_PROMPT)
        return ClassifyResponse(filename=upload.filename, duration=round(seconds, 3), prompt=DEFAULT_PROMPT,
                                labels_from=source, labels=[LabelOut(**r) for r in ranked])
