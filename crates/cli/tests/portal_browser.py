"""Headless Chromium (Debian's chromium and chromedriver, driven by Selenium) logs into マイナポータル
through the card agent, as a person would with the keyboard, and reads the main pages.

    portal_browser.py PORTAL_URL PIN OUT_DIR

Prints one JSON object: each page's visible text, by page name. Screenshots (phone width, 412 px)
go to OUT_DIR/portal-*.png.
"""
import json
import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def main(portal, pin, out):
    profile = tempfile.mkdtemp(prefix="jpki-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                "--window-size=412,1400", "--lang=ja"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    wait = WebDriverWait(driver, 20)
    texts = {}
    try:
        driver.get(portal)
        texts["login"] = driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(os.path.join(out, "portal-login.png"))
        # The button has focus: Enter sends the challenge to the card agent.
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        pin_box = wait.until(ec.presence_of_element_located((By.ID, "pin")))
        texts["agent"] = driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(os.path.join(out, "portal-agent-pin.png"))
        pin_box.send_keys(pin + Keys.ENTER)
        # The agent's answer page submits itself back to the portal, which starts the session.
        wait.until(lambda d: d.current_url.rstrip("/").endswith("/portal") and "ログアウト" in d.page_source)
        texts["home"] = driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(os.path.join(out, "portal-home.png"))
        for name in ["records", "consents", "notices", "postbox"]:
            driver.find_element(By.CSS_SELECTOR, f"nav a[href='/portal/{name}']").click()
            wait.until(lambda d: d.current_url.endswith(f"/portal/{name}"))
            texts[name] = driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(os.path.join(out, f"portal-{name}.png"))
        # Withdraw the first consent in force, if there is one.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/portal/consents']").click()
        wait.until(lambda d: d.current_url.endswith("/portal/consents"))
        buttons = driver.find_elements(By.CSS_SELECTOR, "form[action='/portal/act/revoke-consent'] button")
        if buttons:
            buttons[0].click()
            wait.until(lambda d: "/portal/act/" in d.current_url)
            texts["withdrawn"] = driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(os.path.join(out, "portal-consent-withdrawn.png"))
        driver.find_element(By.CSS_SELECTOR, "form[action='/portal/logout'] button").click()
        wait.until(lambda d: "カードでログイン" in d.page_source)
        driver.get(portal + "/records")
        texts["after_logout"] = driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()
    print(json.dumps(texts, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:4])
