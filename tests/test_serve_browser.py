"""Real-browser test: headless Debian Chromium drives the page served by uvicorn on loopback.

It covers what a user of a sound library expects (issue 16): search with thumbnails, durations,
tags, paging and state in the URL, the no-match state, "more like this", a 60-s upload captioned
per window, limits checked before upload, errors in the right panel, the no-captioner state,
keyboard use of the upload, drops outside the zone and a 390-px layout. Screenshots go to
``$AUDIOCAP_ARTIFACTS/serve_*.png`` (default ``/tmp/audiocap-artifacts``). Skips only when
the Debian ``chromium``/``chromium-driver`` binaries are not installed (``make setup`` installs
them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from serve_standin import StandInBackend, live_server, tone_bytes

from audiocap.serve.app import create_app

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000", "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian chromium and chromium-driver are not installed "
    "(apt-get install chromium chromium-driver; `make setup` does it as root)",
)


@contextlib.contextmanager
def chromium(extra_flags: tuple[str, ...] = ()):
    """A headless Debian Chromium driven by chromedriver, in a throw-away profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="audiocap-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + list(extra_flags) + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


def artifact(name: str) -> Path:
    folder = Path(os.environ.get("AUDIOCAP_ARTIFACTS", "/tmp/audiocap-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def wait_for(browser, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout)


def full_page_shot(browser, name: str, width: int = 1280) -> Path:
    """Screenshot of the whole page at ``width`` CSS px, saved under the artifacts folder."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": width < 600})
    shot = artifact(name)
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"screenshot: {shot}")
    return shot


def no_severe_logs(browser):
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "/v1/" not in e["message"]]  # 4xx answers the page handles are logged too
    assert not errors, errors  # no CSP violations, failed assets or script errors


def results_text(browser, status_words="result"):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    wait_for(browser).until(EC.text_to_be_present_in_element((By.ID, "results-status"), status_words))
    return browser.find_elements(By.CSS_SELECTOR, "#results li.hit")


def test_search_page_more_like_this_and_url_state(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib"))) as url:
        browser.get(url + "/")
        assert browser.title.startswith("audiocap")
        wait = wait_for(browser)
        wait.until(EC.text_to_be_present_in_element((By.ID, "server-info"), "6 sounds in this library"))
        # what the library holds: examples from its captions, its tags, a placeholder it can answer
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#example-list .chip"))
        examples = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#example-list .chip")]
        placeholder = browser.find_element(By.ID, "search-text").get_attribute("placeholder")
        assert placeholder == "e.g. " + examples[0]
        browser.find_element(By.CSS_SELECTOR, "#tags summary").click()
        assert "animal 2" in browser.find_element(By.ID, "tag-list").text

        box = browser.find_element(By.ID, "search-text")
        box.send_keys("rain on a metal roof")
        browser.find_element(By.ID, "search-button").click()
        hits = results_text(browser)
        assert len(hits) == 6  # k=10 over a 6-item library
        ranked = [h.get_attribute("data-id") for h in hits]
        top = hits[0]
        assert "Reference caption: rain falling on a metal roof" in top.text
        assert "0.913" in top.find_element(By.CLASS_NAME, "score").text
        assert "0:01" in top.text and "License: CC0-1.0" in top.text
        assert [c.text for c in top.find_elements(By.CSS_SELECTOR, ".chips .chip")] == ["rain", "roof"]
        assert top.find_element(By.CSS_SELECTOR, "a.download").get_attribute("download") == "roof-01"
        wait.until(lambda b: b.execute_script(
            "return [...document.querySelectorAll('#results img.thumb')].every(i => i.complete && i.naturalWidth > 0)"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#results img.thumb")) == 5
        assert len(browser.find_elements(By.CSS_SELECTOR, "#results audio")) == 5
        duration = browser.execute_async_script(
            "const a = document.querySelector('#results audio'); const done = arguments[0];"
            "a.addEventListener('loadedmetadata', () => done(a.duration));"
            "a.addEventListener('error', () => done(-1)); a.preload = 'metadata'; a.load();")
        assert abs(duration - 1.0) < 0.05
        # results use the page width: the list is wider than the search panel above it
        widths = browser.execute_script(
            "return [document.getElementById('results').offsetWidth, document.getElementById('search-panel').offsetWidth]")
        assert widths[0] > widths[1] * 1.3, widths
        assert "q=rain+on+a+metal+roof" in browser.current_url
        full_page_shot(browser, "serve_page.png")

        # a bookmark of the URL reloads to the same results
        browser.get(browser.current_url)
        again = results_text(browser)
        assert [h.get_attribute("data-id") for h in again] == ranked
        assert browser.find_element(By.ID, "search-text").get_attribute("value") == "rain on a metal roof"

        # paging: 2 per page is not offered, so ask the URL for 5 per page, then turn the page
        browser.get(url + "/?q=a+dog+barks&k=5")
        first = [h.get_attribute("data-id") for h in results_text(browser)]
        assert len(first) == 5 and first[0] == "dog-bark"
        browser.find_element(By.ID, "next-page").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "results-status"), "on page 2"))
        second = [h.get_attribute("data-id") for h in browser.find_elements(By.CSS_SELECTOR, "#results li.hit")]
        assert len(second) == 1 and second[0] not in first and "page=2" in browser.current_url
        assert "#6" in browser.find_element(By.CSS_SELECTOR, "#results li.hit").text
        browser.back()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#results li.hit")) == 5)
        assert "page=2" not in browser.current_url

        # more like this: an audio query by item id, the item itself left out
        browser.find_element(By.CSS_SELECTOR, "#results li.hit[data-id='birds_morning'] .more-like").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "results-heading"), "More like"))
        like = [h.get_attribute("data-id") for h in results_text(browser)]
        assert "birds_morning" not in like and like[0] == "waves"  # 880 Hz is nearest to 2 kHz
        assert "like=birds_morning" in browser.current_url
        browser.back()
        wait.until(EC.text_to_be_present_in_element((By.ID, "results-heading"), "a dog barks"))
        no_severe_logs(browser)


class Calibrated(StandInBackend):
    """Stand-in whose hits carry a confidence: matches are the hits with a bag-of-words score > 0.3."""

    def search_text(self, text, k):
        import dataclasses

        return [dataclasses.replace(h, confidence=round(max(0.0, h.score), 3), match=h.score > 0.3)
                for h in super().search_text(text, k)]


def test_no_close_match_is_said(browser, tmp_path):
    from selenium.webdriver.common.by import By

    (tmp_path / "lib").mkdir()
    with live_server(create_app(Calibrated(tmp_path / "lib"))) as url:
        browser.get(url + "/?q=asdkjh+qwe")
        hits = results_text(browser, "closest sounds")
        notice = browser.find_element(By.ID, "no-match")
        assert notice.is_displayed() and "No close match in this library" in notice.text
        assert all("closest" in h.get_attribute("class") for h in hits)
        assert all(h.find_element(By.CLASS_NAME, "score").text == "0% match" for h in hits)
        full_page_shot(browser, "serve_no_match.png")
        browser.get(url + "/?q=a+dog+barks")
        results_text(browser)
        assert not browser.find_element(By.ID, "no-match").is_displayed()


def test_long_upload_is_captioned_per_window_and_beam_reruns(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    clip = tmp_path / "field recording.wav"
    clip.write_bytes(tone_bytes(2000.0, seconds=60.0, sr=8000))
    (tmp_path / "lib").mkdir()
    backend = StandInBackend(tmp_path / "lib")
    with live_server(create_app(backend, max_duration=120.0)) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(EC.text_to_be_present_in_element((By.ID, "limits"), "one caption per window"))
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "Described"))
        windows = browser.find_elements(By.CSS_SELECTOR, "#windows li")
        assert len(windows) == 6
        # a steady tone is not a sound event: each window and the whole caption say so (issue 20)
        assert windows[0].text.splitlines() == ["0:00–0:10", "a steady tone at 2000 hertz", "low confidence"]
        assert browser.find_element(By.ID, "caption-flag").text.startswith("Low confidence (")
        assert windows[5].text.startswith("0:50–1:00")
        assert browser.find_element(By.ID, "caption-title").text == "Captions per 0:10 window"
        assert browser.find_element(By.ID, "caption-file").text == "field recording.wav (1:00)"
        similar = results_text(browser, "sounds like")
        assert similar[0].get_attribute("data-id") == "birds_morning"
        # clicking a window plays the recording from that window's start
        windows[3].find_element(By.TAG_NAME, "button").click()
        wait.until(lambda b: b.execute_script("return document.getElementById('caption-audio').currentTime") >= 30)
        wait.until(lambda b: "playing" in windows[3].get_attribute("class"))
        browser.execute_script("document.getElementById('caption-audio').pause()")
        full_page_shot(browser, "serve_long_upload.png")
        # changing the beam size captions the same file again
        calls = backend.calls
        from selenium.webdriver.support.ui import Select

        Select(browser.find_element(By.ID, "beam")).select_by_value("1")
        wait.until(lambda _: backend.calls >= calls + 6)
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "beam 1"))
        no_severe_logs(browser)


def test_limits_are_checked_in_the_browser_and_errors_stay_in_their_panel(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    long = tmp_path / "long.wav"
    long.write_bytes(tone_bytes(440.0, seconds=8.0, sr=8000))
    bogus = tmp_path / "holiday.wav"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
    (tmp_path / "lib").mkdir()
    backend = StandInBackend(tmp_path / "lib")
    with live_server(create_app(backend, max_duration=5.0)) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(EC.text_to_be_present_in_element((By.ID, "limits"), "up to 0:05 long"))
        browser.find_element(By.ID, "file-input").send_keys(str(long))
        status = browser.find_element(By.ID, "caption-status")
        wait.until(lambda _: "error" in status.get_attribute("class"))
        assert "“long.wav” is 0:08 long; this server accepts recordings up to 0:05" in status.text
        assert "Trim it" in status.text and "max-duration" not in status.text
        assert backend.calls == 0  # refused before any upload
        assert not browser.find_element(By.ID, "caption-output").is_displayed()

        browser.find_element(By.ID, "file-input").send_keys(str(bogus))
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "PNG image"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "results-status"), "could not use"))
        for panel in ("caption-status", "results-status"):
            text = browser.find_element(By.ID, panel).text
            assert "HTTP" not in text and "415" not in text, text
        assert browser.find_elements(By.CSS_SELECTOR, "#captions li") == []
        assert not browser.find_element(By.ID, "caption-audio").is_displayed()  # no dead player
        assert not browser.find_element(By.ID, "caption-block").is_displayed()  # no empty heading
        assert not browser.find_element(By.ID, "caption-output").is_displayed()
        assert browser.find_elements(By.CSS_SELECTOR, "#results li.hit") == []
        full_page_shot(browser, "serve_errors.png")


def test_without_a_captioner_the_panel_says_so(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    clip = tmp_path / "kettle.wav"
    clip.write_bytes(tone_bytes(2000.0, seconds=2.0, sr=22050))
    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib", captioner=False))) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-heading"), "Find sounds like"))
        note = browser.find_element(By.ID, "captioner-note")
        assert note.is_displayed() and "no captioner" in note.text
        assert not browser.find_element(By.ID, "beam-row").is_displayed()
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        # "Looking for sounds like kettle.wav…" comes first; wait for the count of the answer
        wait.until(lambda b: re.match(r"\d+ sounds like", b.find_element(By.ID, "results-status").text))
        similar = browser.find_elements(By.CSS_SELECTOR, "#results li.hit")
        assert similar[0].get_attribute("data-id") == "birds_morning"
        status = browser.find_element(By.ID, "caption-status")
        assert "error" not in status.get_attribute("class")
        assert not browser.find_element(By.ID, "caption-block").is_displayed()
        full_page_shot(browser, "serve_no_captioner.png")


def test_keyboard_drop_outside_and_phone_layout(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC

    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib"))) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(EC.text_to_be_present_in_element((By.ID, "server-info"), "sounds"))
        # keyboard only: Tab reaches the file input, which is a real, visible control with a focus ring
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        for _ in range(40):
            if browser.switch_to.active_element.get_attribute("id") == "file-input":
                break
            browser.switch_to.active_element.send_keys(Keys.TAB)
        active = browser.switch_to.active_element
        assert active.get_attribute("id") == "file-input"
        size = active.size
        assert size["width"] > 100 and size["height"] > 20, size
        outline = browser.execute_script(
            "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
        assert outline[0] != "none" and outline[1] != "0px", outline
        # a file dropped outside the drop zone does not make the browser leave the page
        before = browser.current_url
        browser.execute_script("""
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0])], 'x.png', {type: 'image/png'}));
            const target = document.querySelector('footer');
            for (const type of ['dragenter', 'dragover', 'drop']) {
              const ev = new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt});
              window['__' + type] = target.dispatchEvent(ev);  // false = default prevented
            }""")
        assert browser.execute_script("return window.__drop") is False
        assert browser.current_url == before
        wait.until(lambda _: "error" in browser.find_element(By.ID, "caption-status").get_attribute("class"))

        # a phone (390 px): full-width search box, the upload panel right after the search panel
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        browser.get(url + "/?q=birds")
        results_text(browser)
        geo = browser.execute_script("""
            const r = (id) => document.getElementById(id).getBoundingClientRect();
            return {box: r('search-text').width, panel: r('search-panel').width,
                    upload: r('upload-panel').top, results: r('results-panel').top,
                    scroll: document.documentElement.scrollWidth, view: window.innerWidth};""")
        assert geo["box"] >= geo["panel"] - 60, geo  # the box spans the panel (minus padding)
        assert geo["upload"] < geo["results"], geo
        assert geo["scroll"] <= geo["view"], geo  # no sideways scrolling
        shot = artifact("serve_phone.png")
        assert browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        no_severe_logs(browser)


def test_api_docs_render_offline(browser, tmp_path):
    """/docs draws the Swagger UI from local assets only (the browser has no internet)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib"))) as url:
        browser.get(url + "/docs")
        WebDriverWait(browser, 30).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) >= 5)
        paths = {e.text.replace("\u200b", "") for e in
                 browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/v1/search", "/v1/caption", "/healthz"} <= paths, paths
        requested = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert requested and all(r.startswith(url) for r in requested), requested


MODEL_ENV = ("AUDIOCAP_SERVE_MODEL", "AUDIOCAP_SERVE_INDEX", "AUDIOCAP_SERVE_CAPTIONER")


@pytest.mark.skipif(not all(os.environ.get(v) for v in MODEL_ENV[:2]),
                    reason="set AUDIOCAP_SERVE_MODEL and AUDIOCAP_SERVE_INDEX (and optionally "
                    "AUDIOCAP_SERVE_CAPTIONER) to checkpoint/index folders to run the page on real models")
def test_page_on_real_models(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from audiocap.serve.backend import ModelBackend

    model, index, captioner = (os.environ.get(v) for v in MODEL_ENV)
    backend = ModelBackend.load(Path(model), Path(index), Path(captioner) if captioner else None)
    wait = WebDriverWait(browser, 120)
    clip = tmp_path / "query.wav"
    clip.write_bytes(tone_bytes(880.0, seconds=3.0, sr=44100))
    with live_server(create_app(backend)) as url:
        browser.get(url + "/")
        wait.until(EC.text_to_be_present_in_element((By.ID, "server-info"), "sounds in this library"))
        browser.find_element(By.ID, "search-text").send_keys("a high pitched tone")
        browser.find_element(By.ID, "search-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "results-status"), "result"))
        hits = browser.find_elements(By.CSS_SELECTOR, "#results li.hit")
        assert len(hits) == min(10, backend.info()["items"])
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        status = browser.find_element(By.ID, "caption-status")
        wait.until(lambda _: "busy" not in status.get_attribute("class"))
        if captioner:
            assert "ok" in status.get_attribute("class"), status.text
            assert browser.find_element(By.ID, "caption-block").text.strip()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#results li.hit"))
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
        shot = artifact("serve_page_models.png")
        assert browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
