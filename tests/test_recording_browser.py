"""Microphone recording on the page in headless Chromium (issue 16): a take recorded with
MediaRecorder is decoded by the browser, sent as a WAV and captioned, searched by example and
classified. Chromium's fake capture device (``--use-fake-device-for-media-stream``, permission
granted by ``--use-fake-ui-for-media-stream``) plays a beeping tone, so the server must receive
a non-silent WAV of about the recorded length. Screenshot: ``serve_recording.png``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from serve_standin import SR, StandInBackend, dominant_hz, live_server
from test_serve_browser import CHROMEDRIVER, CHROMIUM, chromium, full_page_shot, no_severe_logs, wait_for

from audiocap.serve.app import create_app

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian chromium and chromium-driver are not installed")
MEDIA_FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture
def mic_browser():
    with chromium(tuple(MEDIA_FLAGS)) as driver:
        yield driver


class Listening(StandInBackend):
    """The stand-in, keeping every wave it was given (they arrive decoded at ``SR``)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.heard: dict[str, list[np.ndarray]] = {"caption": [], "search": [], "classify": []}

    def caption(self, wave, beam):
        self.heard["caption"].append(wave)
        return super().caption(wave, beam)

    def search_audio(self, wave, k):
        if k > 1:  # classify asks for the nearest item only
            self.heard["search"].append(wave)
        return super().search_audio(wave, k)

    def classify(self, wave, labels, prompt):
        self.heard["classify"].append(wave)
        return super().classify(wave, labels, prompt)


def seconds(wave: np.ndarray) -> float:
    return len(wave) / SR


def record(browser, button_id: str, hold: float) -> None:
    """Press Record, wait ``hold`` seconds, press Stop."""
    from selenium.webdriver.common.by import By

    button = browser.find_element(By.ID, button_id)
    button.click()
    wait_for(browser).until(lambda b: button.get_attribute("aria-pressed") == "true")
    time.sleep(hold)
    assert button.text.startswith("■ Stop 0:0")
    button.click()


def test_record_caption_search_and_classify_from_the_microphone(mic_browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    browser = mic_browser
    (tmp_path / "lib").mkdir()
    backend = Listening(tmp_path / "lib")
    with live_server(create_app(backend, max_duration=3.0)) as url:
        browser.get(url + "/")
        wait = wait_for(browser)
        wait.until(EC.text_to_be_present_in_element((By.ID, "server-info"), "sounds"))
        assert browser.find_element(By.ID, "record-caption").is_displayed()

        # caption panel: the take is captioned and searched by example
        record(browser, "record-caption", 1.5)
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "Described recording-"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "results-status"), "sounds like recording-"))
        name = browser.find_element(By.ID, "caption-file").text
        assert name.startswith("recording-") and ".wav (0:0" in name, name
        assert browser.find_element(By.CSS_SELECTOR, "#captions li").text.startswith("a steady tone at")
        assert len(backend.heard["caption"]) == 1 and len(backend.heard["search"]) == 1
        wave = backend.heard["caption"][0]
        assert 1.0 < seconds(wave) < 3.0, seconds(wave)  # about what was held
        assert float(np.sqrt(np.mean(wave ** 2))) > 0.01  # the fake device's beep, not silence
        print(f"recorded {seconds(wave):.2f} s, dominant {dominant_hz(wave):.0f} Hz")
        assert np.array_equal(wave, backend.heard["search"][0])  # the same WAV went to both
        assert browser.find_element(By.ID, "record-caption").text == "● Record"
        full_page_shot(browser, "serve_recording.png")

        # zero-shot panel: labels typed, the take classified
        browser.find_element(By.ID, "classify-labels").send_keys("dog, rain, birds")
        record(browser, "record-classify", 1.0)
        wait.until(EC.text_to_be_present_in_element((By.ID, "classify-status"), "sounds most like"))
        assert "(recorded)" in browser.find_element(By.ID, "classify-sound").text
        assert len(browser.find_elements(By.CSS_SELECTOR, "#classify-results li[data-label]")) == 3
        assert len(backend.heard["classify"]) == 1 and seconds(backend.heard["classify"][0]) > 0.5

        # a take left running stops itself under the server's 3-s limit and is still used
        browser.find_element(By.ID, "record-caption").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "Recording"))
        wait.until(lambda b: len(backend.heard["caption"]) == 2)
        assert 2.0 < seconds(backend.heard["caption"][1]) <= 3.0, seconds(backend.heard["caption"][1])
        wait.until(EC.text_to_be_present_in_element((By.ID, "caption-status"), "Described recording-"))
        assert "error" not in browser.find_element(By.ID, "caption-status").get_attribute("class")
        no_severe_logs(browser)
