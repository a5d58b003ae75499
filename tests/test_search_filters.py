"""Filters and sorting on search results (issue 16): duration range, tag, license; relevance,
duration or name order, on ``POST /v1/search`` and ``POST /v1/search/similar``.

The stand-in library gets varied durations and licenses here; the expected lists are the stand-in's
relevance ranking (bag-of-words cosine, computed below) filtered and sorted by hand.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from serve_standin import LIBRARY, StandInBackend, bow_cosine

from audiocap.serve.app import create_app
from audiocap.serve.filters import SearchFilters, filter_and_sort, licenses_of, passes

FACTS = {  # id: (seconds or None, license or None, tags)
    "rain/roof-01": (12.0, "CC0-1.0", ["rain", "roof"]),
    "dog-bark": (1.5, "CC-BY-SA-3.0; GPL-2+", ["dog", "animal"]),
    "birds_morning": (30.0, "CC-BY-3.0", ["birds", "animal"]),
    "engine idle": (4.0, "GPL-2+", ["vehicle"]),
    "door-knock": (None, None, []),
    "waves": (8.0, "CC0-1.0", ["water"]),
}
QUERY = "a dog barks in the rain on a roof"


class Varied(StandInBackend):
    def items(self) -> list[dict]:
        out = []
        for item_id, cap, _, _ in LIBRARY:
            dur, lic, tags = FACTS[item_id]
            out.append({"id": item_id, "captions": [cap], "tags": tags,
                        **({"duration": dur} if dur is not None else {}), **({"license": lic} if lic else {})})
        return out


def ranking(query: str = QUERY) -> list[str]:
    """The stand-in's relevance order for ``query`` (ties in library order)."""
    scored = sorted(enumerate(LIBRARY), key=lambda r: (-bow_cosine(query, r[1][1]), r[0]))
    return [item_id for _, (item_id, *_rest) in scored]


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(Varied(tmp_path), max_k=100), base_url="http://localhost") as c:
        yield c


def ids(client, route="/v1/search", **body) -> list[str]:
    resp = client.post(route, json={"text": QUERY, **body} if route == "/v1/search" else body)
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["results"]]


def test_the_reference_ranking_is_what_the_stand_in_answers(client):
    order = ranking()
    assert order[:2] == ["dog-bark", "rain/roof-01"]
    assert ids(client) == order  # no filters: unchanged


@pytest.mark.parametrize("body,keep", [
    ({"min_duration": 5}, lambda i: FACTS[i][0] is not None and FACTS[i][0] >= 5),
    ({"max_duration": 4}, lambda i: FACTS[i][0] is not None and FACTS[i][0] <= 4),
    ({"min_duration": 2, "max_duration": 12}, lambda i: FACTS[i][0] is not None and 2 <= FACTS[i][0] <= 12),
    ({"tag": "ANIMAL"}, lambda i: "animal" in FACTS[i][2]),
    ({"license": "gpl-2+"}, lambda i: "GPL-2+" in (FACTS[i][1] or "")),
    ({"license": "CC0-1.0", "tag": "water"}, lambda i: i == "waves"),
    ({"tag": "thunder"}, lambda i: False),
])
def test_filters_keep_the_relevance_order_of_what_passes(client, body, keep):
    expected = [i for i in ranking() if keep(i)]
    assert ids(client, **body) == expected
    assert len(expected) < len(LIBRARY)  # every case filters something out


def test_sorting_reorders_the_best_matches(client):
    by_duration = sorted((i for i in ranking() if FACTS[i][0] is not None), key=lambda i: FACTS[i][0])
    assert ids(client, sort="duration") == by_duration + ["door-knock"]  # unknown length last
    assert ids(client, sort="name") == sorted(ranking(), key=str.lower)
    assert ids(client, sort="duration", tag="animal") == ["dog-bark", "birds_morning"]


def test_filters_look_past_the_first_page_and_page_through_what_passes(client):
    last = ranking()[-1]
    tag = FACTS[last][2][0] if FACTS[last][2] else None
    assert tag is not None
    # k=1: the only tagged item ranks last in the library, the filter still finds it
    assert ids(client, k=1, tag=tag) == [last]
    passing = [i for i in ranking() if FACTS[i][0] is not None and FACTS[i][0] >= 2]
    pages = [ids(client, k=2, offset=o, min_duration=2) for o in (0, 2, 4)]
    assert pages[0] + pages[1] + pages[2] == passing and pages[2] == passing[4:]


@pytest.mark.parametrize("body,words", [
    ({"min_duration": -1}, "min_duration"),
    ({"sort": "loudness"}, "sort"),
    ({"tag": "x" * 201}, "tag"),
])
def test_bad_filters_are_refused_with_the_field_named(client, body, words):
    resp = client.post("/v1/search", json={"text": QUERY, **body})
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_request"
    assert words in resp.json()["detail"]


def test_more_like_this_takes_the_same_filters(client):
    # a 330 Hz item: the stand-in ranks the others by pitch distance
    plain = ids(client, "/v1/search/similar", id="dog-bark")
    assert "dog-bark" not in plain and len(plain) == len(LIBRARY) - 1
    assert ids(client, "/v1/search/similar", id="dog-bark", tag="animal") == ["birds_morning"]
    assert ids(client, "/v1/search/similar", id="dog-bark", sort="name") == sorted(plain, key=str.lower)


def test_search_by_an_upload_takes_the_filters_as_query_parameters(client):
    from serve_standin import tone_bytes

    def upload(**params):
        resp = client.post("/v1/search/audio", params=params, files={"file": ("q.wav", tone_bytes(330.0), "audio/wav")})
        assert resp.status_code == 200, resp.text
        return [r["id"] for r in resp.json()["results"]]

    plain = upload()
    assert plain[0] == "dog-bark" and len(plain) == len(LIBRARY)
    assert upload(tag="animal") == [i for i in plain if "animal" in FACTS[i][2]]
    assert upload(k=2, sort="name", license="CC0-1.0") == sorted(i for i in plain if FACTS[i][1] == "CC0-1.0")
    assert upload(max_duration=4, sort="duration") == ["dog-bark", "engine idle"]
    bad = client.post("/v1/search/audio", params={"min_duration": -1},
                      files={"file": ("q.wav", tone_bytes(330.0), "audio/wav")})
    assert bad.status_code == 422 and "min_duration" in bad.json()["detail"]


def test_library_lists_what_the_filters_offer(client):
    lib = client.get("/v1/library").json()
    assert lib["duration_range"] == [1.5, 30.0]
    assert lib["tag_names"] == ["animal", "rain", "roof", "dog", "birds", "vehicle", "water"]
    assert lib["licenses"] == [{"license": "CC0-1.0", "count": 2}, {"license": "GPL-2+", "count": 2},
                               {"license": "CC-BY-SA-3.0", "count": 1}, {"license": "CC-BY-3.0", "count": 1}]


def test_filter_helpers_on_their_own():
    assert licenses_of({"license": "CC-BY-SA-3.0; GPL-2+"}) == ["CC-BY-SA-3.0", "GPL-2+"]
    assert licenses_of({}) == [] and licenses_of(None) == []
    f = SearchFilters(min_duration=1.0, max_duration=2.0)
    assert passes({"duration": 1.0}, f) and passes({"duration": 2.0}, f)
    assert not passes({"duration": 2.01}, f) and not passes({}, f)
    assert not SearchFilters().active() and SearchFilters(sort="name").active()

    class H:
        def __init__(self, i):
            self.id = i

    hits = [H("b"), H("a"), H("c")]
    cat = {"a": {"duration": 3.0}, "b": {"duration": 1.0}, "c": {}}
    assert [h.id for h in filter_and_sort(hits, cat, SearchFilters(sort="duration"), limit=2)] == ["b", "a"]
    assert [h.id for h in filter_and_sort(hits, cat, SearchFilters(sort="name"), limit=3)] == ["a", "b", "c"]
