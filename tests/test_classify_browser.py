"""The zero-shot view in headless Chromium (issue 16): pick labels from the library's tags or type
them, choose or drop a sound, read a bar per label. Served by uvicorn over the stand-in backend,
whose probabilities are computed by hand in tests/test_classify.py (a 330 Hz tone is the stand-in's
barking dog: 76.8 % against "rain" and "birds"). The screenshot goes to
``$AUDIOCAP_ARTIFACTS/serve_classify.png``.
"""

from __future__ import annotations

import pytest
from serve_standin import StandInBackend, live_server, tone_bytes
from test_serve_browser import CHROMEDRIVER, CHROMIUM, browser, full_page_shot, no_severe_logs, wait_for  # noqa: F401

from audiocap.serve.app import create_app

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian chromium and chromium-driver are not installed")


def bars(browser) -> list[tuple[str, str, float]]:
    """(label, percent text, bar fill share of its track) of each drawn bar, top to bottom."""
    return [tuple(row) for row in browser.execute_script("""
        return [...document.querySelectorAll('#classify-results li[data-label]')].map(li => [
            li.dataset.label, li.querySelector('.prob').textContent,
            li.querySelector('.bar span').getBoundingClientRect().width /
            li.querySelector('.bar').getBoundingClientRect().width]);""")]


def status_says(browser, words: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    wait_for(browser).until(EC.text_to_be_present_in_element((By.ID, "classify-status"), words))


def test_zero_shot_view_labels_tags_bars_and_errors(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    clip = tmp_path / "backyard.wav"
    clip.write_bytes(tone_bytes(330.0))
    (tmp_path / "lib").mkdir()
    with live_server(create_app(StandInBackend(tmp_path / "lib"))) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#classify-tag-list .chip")) == 5)
        chips = {c.text: c for c in browser.find_elements(By.CSS_SELECTOR, "#classify-tag-list .chip")}
        assert list(chips) == ["animal", "rain", "roof", "dog", "birds"]  # the library's tags, most used first
        box = browser.find_element(By.ID, "classify-labels")
        assert box.get_attribute("placeholder") == "e.g. animal, rain, roof"
        # click tags to add them, type one more
        chips["dog"].click()
        chips["rain"].click()
        assert box.get_attribute("value") == "dog, rain"
        assert chips["dog"].get_attribute("aria-pressed") == "true"
        assert chips["birds"].get_attribute("aria-pressed") == "false"
        box.send_keys(", birds")
        # choosing a sound classifies it: a bar per label, most probable first
        browser.find_element(By.ID, "classify-file").send_keys(str(clip))
        status_says(browser, "sounds most like “dog”")
        assert browser.find_element(By.ID, "classify-sound").text == "Sound: backyard.wav"
        got = bars(browser)
        assert [(lab, pct) for lab, pct, _ in got] == [("dog", "76.8%"), ("rain", "11.6%"), ("birds", "11.6%")]
        assert abs(got[0][2] - 0.768) < 0.01 and abs(got[1][2] - 0.116) < 0.01, got
        full_page_shot(browser, "serve_classify.png")

        # a tag clicked again leaves the candidates; Enter re-runs with the same sound
        chips["dog"].click()
        assert box.get_attribute("value") == "rain, birds"
        box.send_keys(Keys.ENTER)
        status_says(browser, "sounds most like “rain”")
        assert [(lab, pct) for lab, pct, _ in bars(browser)] == [("rain", "50.0%"), ("birds", "50.0%")]
        # no labels typed: the server compares the sound with the library's tags
        box.clear()
        box.send_keys(Keys.ENTER)
        status_says(browser, "among this library's 5 tags")
        assert bars(browser)[0][0] == "dog" and len(bars(browser)) == 5
        # one label is not a choice: said in this panel before anything is sent
        box.send_keys("dog")
        box.send_keys(Keys.ENTER)
        status_says(browser, "Type at least two labels")
        assert browser.find_element(By.ID, "classify-results").get_attribute("hidden") is not None

        # a non-audio file dropped on this panel: the error shows here, not in the caption panel
        box.clear()
        box.send_keys("dog, rain")
        browser.execute_script("""
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 0])],
                                  'photo.wav', {type: 'audio/wav'}));
            const target = document.getElementById('classify-drop');
            for (const type of ['dragenter', 'dragover', 'drop']) {
              target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
            }""")
        status_says(browser, "PNG image")
        status = browser.find_element(By.ID, "classify-status")
        assert "error" in status.get_attribute("class") and "HTTP" not in status.text and "415" not in status.text
        assert browser.find_element(By.ID, "classify-sound").text == "Sound: photo.wav"
        assert browser.find_element(By.ID, "caption-status").text == ""
        assert browser.find_element(By.ID, "results-status").text.startswith("Search by description")

        # a recording dropped for captioning becomes the sound to classify too
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        wait.until(lambda b: "backyard.wav" in b.find_element(By.ID, "classify-sound").text)
        assert "(from the upload panel)" in browser.find_element(By.ID, "classify-sound").text
        browser.find_element(By.ID, "classify-button").click()
        status_says(browser, "sounds most like “dog”")

        # a phone: the panel fits the width, below the results
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        geo = browser.execute_script("""
            const r = (id) => document.getElementById(id).getBoundingClientRect();
            return {classify: r('classify-panel').top, results: r('results-panel').top,
                    scroll: document.documentElement.scrollWidth, view: window.innerWidth};""")
        assert geo["classify"] > geo["results"] and geo["scroll"] <= geo["view"], geo
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        no_severe_logs(browser)
