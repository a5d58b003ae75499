"""Real-browser test: headless Debian Chromium drives the page served by uvicorn on loopback.

It types a query, checks the ranked results and their audio players, uploads a file through
the page's <input type=file>, checks the caption and similar sounds, and saves a screenshot to
``$AUDIOCAP_ARTIFACTS/serve_page.png`` (default ``/tmp/audiocap-artifacts``). Skips only when
the Debian ``chromium``/``chromium-driver`` binaries are not installed (``make setup`` installs
them).
"""

from __future__ import annotations

import os
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


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="audiocap-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def artifact(name: str) -> Path:
    folder = Path(os.environ.get("AUDIOCAP_ARTIFACTS", "/tmp/audiocap-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_search_listen_and_caption_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    clip = tmp_path / "kettle whistle.wav"
    clip.write_bytes(tone_bytes(2000.0, seconds=2.0, sr=22050))
    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib"))) as url:
        browser.get(url + "/")
        assert browser.title.startswith("audiocap")
        wait.until(EC.text_to_be_present_in_element((By.ID, "server-info"), "6 sounds indexed"))

        box = browser.find_element(By.ID, "search-text")
        box.send_keys("rain on a metal roof")
        browser.find_element(By.ID, "search-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "search-status"), "result(s)"))
        hits = browser.find_elements(By.CSS_SELECTOR, "#search-results li.hit")
        assert len(hits) == 6  # k=10 over a 6-item library
        assert "rain falling on a metal roof" in hits[0].text
        assert "0.913" in hits[0].find_element(By.CLASS_NAME, "score").text
        players = browser.find_elements(By.CSS_SELECTOR, "#search-results audio")
        assert len(players) == 5  # the one item without a registered file has no player
        # the first player really loads the item's audio from /v1/audio/{id}
        duration = browser.execute_async_script(
            "const a = document.querySelector('#search-results audio'); const done = arguments[0];"
            "a.addEventListener('loadedmetadata', () => done(a.duration));"
            "a.addEventListener('error', () => done(-1)); a.preload = 'metadata'; a.load();")
        assert abs(duration - 1.0) < 0.05

        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "Done"))
        captions = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#captions li")]
        assert captions[0] == "a steady tone at 2000 hertz" and len(captions) == 3
        similar = browser.find_elements(By.CSS_SELECTOR, "#similar-results li.hit")
        assert "birds chirping" in similar[0].text
        assert browser.find_element(By.ID, "caption-file").text == "kettle whistle.wav"

        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
        shot = artifact("serve_page.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")

        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # no CSP violations, failed assets or script errors


def test_page_reports_a_rejected_upload(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    bogus = tmp_path / "holiday.wav"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib"))) as url:
        browser.get(url + "/")
        browser.find_element(By.ID, "file-input").send_keys(str(bogus))
        status = browser.find_element(By.ID, "caption-status")
        WebDriverWait(browser, 20).until(lambda _: "error" in status.get_attribute("class"))
        assert "PNG image" in status.text and "415" in status.text
        assert browser.find_elements(By.CSS_SELECTOR, "#captions li") == []


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
        wait.until(EC.text_to_be_present_in_element((By.ID, "server-info"), "sounds indexed"))
        browser.find_element(By.ID, "search-text").send_keys("a high pitched tone")
        browser.find_element(By.ID, "search-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "search-status"), "result(s)"))
        hits = browser.find_elements(By.CSS_SELECTOR, "#search-results li.hit")
        assert len(hits) == min(10, backend.info()["items"])
        scores = [float(h.find_element(By.CLASS_NAME, "score").text) for h in hits]
        assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        status = browser.find_element(By.ID, "caption-status")
        wait.until(lambda _: "busy" not in status.get_attribute("class"))
        if captioner:
            assert "ok" in status.get_attribute("class"), status.text
            assert browser.find_elements(By.CSS_SELECTOR, "#captions li")[0].text.strip()
        assert browser.find_elements(By.CSS_SELECTOR, "#similar-results li.hit")
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
        shot = artifact("serve_page_models.png")
        assert browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
