"""The hub's page in a real headless browser (Debian's chromium through chromedriver and
Selenium): it draws the flows, filters them, and shows a flow's data when clicked. The
screenshot is kept as an artifact (tests/artifacts/hub-page.png)."""
import shutil

import pytest

from helpers import ROOT
from test_hub import TOKEN, events, post, start_hub, stop  # noqa: F401 - `events` is a fixture

webdriver = pytest.importorskip("selenium.webdriver")
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def browser():
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def visible(driver, css):
    return [e for e in driver.find_elements("css selector", css) if "hidden" not in (e.get_attribute("class") or "")]


def test_the_page_draws_filters_and_explains_the_flows(tmp_path, events, browser):  # noqa: F811
    proc, base = start_hub(tmp_path, f"sqlite:///{tmp_path}/map.db")
    try:
        assert post(base, events)[0] == 202
        browser.get(f"{base}/?token={TOKEN}")
        edges = visible(browser, "path.edge")
        nodes = visible(browser, "g.node")
        assert len(edges) >= 20 and len(nodes) >= 20
        targets = {e.get_attribute("data-target") for e in edges}
        assert "api.stripe-like.example.com" in targets
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "hub-page.png"))

        # filter by a data type: only flows that carry it stay
        from selenium.webdriver.support.ui import Select

        Select(browser.find_element("id", "f-type")).select_by_value("IBAN")
        shown = visible(browser, "path.edge")
        assert 0 < len(shown) < len(edges)
        assert all("IBAN" in e.find_element("tag name", "title").get_attribute("textContent") for e in shown)
        Select(browser.find_element("id", "f-type")).select_by_value("")
        assert len(visible(browser, "path.edge")) == len(edges)

        # a flow's data in the panel
        stripe = next(e for e in visible(browser, "path.edge")
                      if e.get_attribute("data-target") == "api.stripe-like.example.com")
        browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", stripe)
        panel = browser.find_element("id", "details").text
        assert "api.stripe-like.example.com" in panel and "Card" in panel and "POST /" in panel
        assert browser.find_elements("css selector", "#changes li")  # the change feed
        browser.save_screenshot(str(ARTIFACTS / "hub-page-flow.png"))
    finally:
        stop(proc)


def test_the_offline_page_opens_from_a_file(tmp_path, browser):
    from conftest import CORPUS, run_cli

    page = tmp_path / "map.html"
    assert run_cli("map", CORPUS / "labeled.har", "--html", page).returncode == 0
    browser.get(page.as_uri())
    assert len(visible(browser, "path.edge")) >= 20
    assert "flows" in browser.find_element("id", "count").text
