"""Filters and sorting on the page in headless Chromium (issue 16): length, tag, license and order
controls filled from the library, in the URL with the query and page (a bookmark reloads them,
the back button steps through them), kept by "more like this" and applied to an upload's
similar sounds. The stand-in library and the
expected lists are those of tests/test_search_filters.py. Screenshot: ``serve_filters.png``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from serve_standin import live_server, tone_bytes
from test_search_filters import FACTS, QUERY, Varied, ranking
from test_serve_browser import CHROMEDRIVER, CHROMIUM, browser, full_page_shot, no_severe_logs, wait_for  # noqa: F401

from audiocap.serve.app import create_app

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian chromium and chromium-driver are not installed")


def shown(browser, before: str | None = None) -> list[str]:
    """Ids of the result cards once the results status has changed from ``before`` (and from the
    page's opening text) and is final."""
    def ready(b):
        text = b.find_element("id", "results-status").text
        return text and text != before and not text.startswith(("Searching", "Search by description"))
    wait_for(browser).until(ready)
    return [h.get_attribute("data-id") for h in browser.find_elements("css selector", "#results li.hit")]


def params(browser) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(browser.current_url).query).items()}


def choose(browser, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", select_id)).select_by_value(value)


def status(browser) -> str:
    return browser.find_element("id", "results-status").text


def test_filters_and_sorting_live_in_the_url(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    animal = [i for i in ranking() if "animal" in FACTS[i][2]]
    with live_server(create_app(Varied(tmp_path))) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#f-license option")) == 5)
        tags = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#f-tag option")]
        assert tags[0] == "" and "animal" in tags and "vehicle" in tags
        assert browser.find_element(By.ID, "f-max").get_attribute("placeholder") == "30"
        assert not browser.find_element(By.ID, "f-clear").is_displayed()

        box = browser.find_element(By.ID, "search-text")
        box.send_keys(QUERY + Keys.ENTER)
        assert shown(browser) == ranking()
        choose(browser, "f-tag", "animal")
        assert shown(browser, "6 results") == animal
        assert params(browser) == {"q": QUERY, "tag": "animal"} and "tag “animal”" in status(browser)
        before = status(browser)
        choose(browser, "f-sort", "duration")
        assert shown(browser, before) == sorted(animal, key=lambda i: FACTS[i][0])
        assert params(browser)["sort"] == "duration"
        before = status(browser)
        length = browser.find_element(By.ID, "f-min")
        length.send_keys("5" + Keys.TAB)  # "change" fires when the field is left
        assert shown(browser, before) == ["birds_morning"]
        assert params(browser) == {"q": QUERY, "tag": "animal", "sort": "duration", "min": "5"}
        assert browser.find_element(By.ID, "f-clear").is_displayed()
        full_page_shot(browser, "serve_filters.png")

        # back steps through the filters, and the controls follow
        before = status(browser)
        browser.back()
        assert shown(browser, before) == sorted(animal, key=lambda i: FACTS[i][0])
        assert browser.find_element(By.ID, "f-min").get_attribute("value") == ""
        assert browser.find_element(By.ID, "f-sort").get_attribute("value") == "duration"
        before = status(browser)
        browser.back()
        assert shown(browser, before) == animal
        assert browser.find_element(By.ID, "f-sort").get_attribute("value") == "relevance"

        # a bookmark with filters reloads to the same results and controls
        browser.get(url + "/?q=" + QUERY.replace(" ", "+") + "&license=CC0-1.0&sort=name")
        assert shown(browser) == sorted((i for i in ranking() if FACTS[i][1] == "CC0-1.0"), key=str.lower)
        assert browser.find_element(By.ID, "f-license").get_attribute("value") == "CC0-1.0"
        assert browser.find_element(By.ID, "f-sort").get_attribute("value") == "name"

        # filters nothing passes: said so, with the filters named
        choose(browser, "f-license", "")
        shown(browser, "2 results (CC0-1.0, by name)")
        before = status(browser)
        choose(browser, "f-tag", "vehicle")
        shown(browser, before)
        before = status(browser)
        browser.find_element(By.ID, "f-min").send_keys("10" + Keys.TAB)
        assert shown(browser, before) == []
        assert "No sounds among the best matches pass these filters (at least 10 s, tag “vehicle”" in status(browser)
        before = status(browser)
        browser.find_element(By.ID, "f-clear").click()
        assert shown(browser, before) == ranking()
        assert params(browser) == {"q": QUERY}

        # "more like this" keeps the filters in force
        choose(browser, "f-tag", "animal")
        shown(browser, "6 results")
        before = status(browser)
        card = browser.find_element(By.CSS_SELECTOR, '#results li.hit[data-id="dog-bark"]')
        card.find_element(By.CSS_SELECTOR, "button.more-like").click()
        assert shown(browser, before) == ["birds_morning"]
        assert params(browser) == {"like": "dog-bark", "tag": "animal"}

        # an upload's similar sounds are filtered too, and re-filtered when a filter changes
        clip = tmp_path / "bark.wav"
        clip.write_bytes(tone_bytes(330.0))
        before = status(browser)
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        wait.until(lambda b: "sounds like bark.wav (tag “animal”)" in status(b))
        assert shown(browser, before) == ["dog-bark", "birds_morning"]  # nearest pitch first
        before = status(browser)
        choose(browser, "f-tag", "")
        assert len(shown(browser, before)) == 6 and status(browser) == "6 sounds like bark.wav"
        no_severe_logs(browser)
