"""The README's picture: the page with the shipped models over the demo's library.

``make demo`` indexes the default foley test clips with the shipped CLAP model into
``runs/demo/index-shipped``; this slow test serves that index with the shipped CLAP model and
captioner (the same objects as ``audiocap serve``), searches "a dog barks" in headless
Chromium, checks what a person sees (a dog among the first three, confidences) and saves the page to
``$AUDIOCAP_ARTIFACTS/serve_page_shipped.png``. The README's picture is made with
``AUDIOCAP_ARTIFACTS=docs/images pytest -m slow tests/test_readme_picture.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_standin import live_server
from test_serve_browser import CHROMEDRIVER, CHROMIUM, browser, full_page_shot, results_text, wait_for  # noqa: F401

from audiocap.pretrained import default_model, has_default
from audiocap.serve.app import create_app
from audiocap.serve.backend import ModelBackend

INDEX = Path(__file__).resolve().parents[1] / "runs" / "demo" / "index-shipped"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="chromium is not installed"),
    pytest.mark.skipif(not (INDEX / "index.json").is_file(), reason=f"{INDEX}: run `make demo` first"),
    pytest.mark.skipif(not (has_default("clap") and has_default("captioner")), reason="no shipped models"),
]


def test_the_shipped_models_put_a_dog_in_the_top_three_on_the_page(browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    backend = ModelBackend.load(default_model("clap"), INDEX, default_model("captioner"))
    with live_server(create_app(backend)) as url:
        browser.get(url + "/?q=a+dog+barks")
        wait_for(browser).until(EC.text_to_be_present_in_element((By.ID, "server-info"), "240 sounds"))
        hits = results_text(browser)
        tags = [[c.text for c in h.find_elements(By.CSS_SELECTOR, ".chips .chip")] for h in hits[:3]]
        assert any(t.startswith("dog") for hit in tags for t in hit), tags  # issue 14: a dog in the top 3
        assert "match" in hits[0].find_element(By.CLASS_NAME, "score").text
        wait_for(browser).until(lambda b: b.execute_script(
            "return [...document.querySelectorAll('#results img.thumb')].every(i => i.complete && i.naturalWidth > 0)"))
        full_page_shot(browser, "serve_page_shipped.png")
