"""Drive the Discord simulator's page (`keygated demo`'s "Approve from your browser")
in a real Chromium, through chromedriver and Selenium, at a phone's 375x812 viewport.

Run by tests/tests/browser.rs: `driver.py PAGE_URL SHOTS_DIR SECRET` for the demo's flow,
or `driver.py layout PAGE_URL SHOTS_DIR` to report how the channel's first message is
drawn (a `layout` event), then `done`. For the flow it prints one JSON
object a line on stdout, each an event the test waits for:

  loaded    the page is up and live (the test now files a request as the agent)
  pending   the request's message appeared without a reload; its text and buttons
  refused   the outsider pressed Approve; the reply only they see
  denied    the approver pressed Deny…, filled in its form and submitted it; the
            form as shown and the message as it then reads (the test now files a
            second request)
  approved  the approver pressed Approve on the second request; its message as it
            then reads
  done      the browser is closed

and exits non-zero, after an `error` event, if anything is not as it should be.
"""

import json
import os
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

WAIT = 30.0
APPROVER = "100000000000000001"
OUTSIDER = "100000000000000002"


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def fail(message):
    say("error", message=message)
    sys.exit(1)


def until(what, check, limit=WAIT):
    """Poll `check` (a function returning a value or None) until it gives a value."""
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None  # the channel was redrawn under us; look again
        except WebDriverException as e:
            last = e
            value = None
        if value:
            return value
        time.sleep(0.1)
    fail(f"timed out waiting for {what}" + (f" ({last.msg})" if last else ""))


def text_of(el):
    # The bot breaks `<` and `@` with a zero-width space so they cannot form markup or
    # a mention in Discord; read the text as a person does.
    return el.text.replace("\u200b", "")


def request_message(driver, secret, skip=()):
    """The newest request message for `secret`, other than those whose ids are in `skip`."""
    found = None
    for m in driver.find_elements(By.CSS_SELECTOR, "#messages article.msg"):
        if (
            m.get_attribute("data-ephemeral") != "true"
            and m.get_attribute("data-id") not in skip
            and secret in text_of(m)
        ):
            found = m
    return found


def button(message, label):
    if message is None:
        return None
    for b in message.find_elements(By.CSS_SELECTOR, "button.btn"):
        if b.text.strip() == label and b.is_enabled():
            return b
    return None


def press(driver, secret, label, skip=()):
    """Click the button `label` on the request's message, retrying if it is redrawn."""

    def click():
        m = request_message(driver, secret, skip)
        b = m and button(m, label)
        if b:
            b.click()
            return True
        return None

    until(f"a live {label} button on the request's message", click)


def press_as(driver, user_id):
    Select(driver.find_element(By.ID, "person")).select_by_value(user_id)


def main():
    if sys.argv[1] == "layout":
        url, shots, secret = sys.argv[2], sys.argv[3], None
    else:
        url, shots, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(shots, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="keygate-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("KEYGATE_CHROMIUM", "/usr/bin/chromium")
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",  # containers often give /dev/shm only 64 MiB
        f"--user-data-dir={profile}",
    ]:
        opts.add_argument(arg)
    # Headless Chromium will not make a window narrower than 500 px: emulate a phone.
    opts.add_experimental_option(
        "mobileEmulation",
        {"deviceMetrics": {"width": 375, "height": 812, "pixelRatio": 2, "touch": True}},
    )
    service = Service(executable_path=os.environ.get("KEYGATE_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        if secret is None:
            layout(driver, url, shots)
        else:
            run(driver, url, shots, secret)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    say("done")


def run(driver, url, shots, secret):
    driver.get(url)
    until("the page to go live", lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    width = driver.execute_script("return document.documentElement.clientWidth")
    overflow = driver.execute_script("return document.documentElement.scrollWidth > document.documentElement.clientWidth")
    if width != 375:
        fail(f"the page is {width} px wide, not 375")
    csp_blocked = driver.execute_script("return typeof window.__kgMarker")
    driver.execute_script("window.__kgMarker = 'no reload'")
    status = driver.find_element(By.ID, "status").text
    say("loaded", width=width, overflow=overflow, status=status, marker_before=csp_blocked)

    # The agent files a request now (the test does it); it must appear without a reload.
    press_as(driver, APPROVER)
    m = until("the request's message", lambda: request_message(driver, secret))
    until("its Approve button", lambda: button(request_message(driver, secret), "Approve"))
    m = request_message(driver, secret)
    marker = driver.execute_script("return window.__kgMarker")
    scripts = driver.execute_script("return document.querySelectorAll('#messages script, #messages img, #messages iframe').length")
    pwned = driver.execute_script("return window.__kgPwned === undefined ? null : String(window.__kgPwned)")
    bar = driver.execute_script(
        "return getComputedStyle(arguments[0].querySelector('.embed')).borderLeftColor", m
    )
    buttons = [
        {"label": b.text.strip(), "class": b.get_attribute("class"), "enabled": b.is_enabled()}
        for b in m.find_elements(By.CSS_SELECTOR, "button.btn")
    ]
    overflow = driver.execute_script("return document.documentElement.scrollWidth > document.documentElement.clientWidth")
    driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", m)
    driver.save_screenshot(os.path.join(shots, "demo-pending.png"))
    say("pending", text=text_of(m), marker=marker, markup_elements=scripts, pwned=pwned, bar=bar,
        buttons=buttons, overflow=overflow)

    # An outsider's tap: the bot refuses, in a reply only they see.
    press_as(driver, OUTSIDER)
    press(driver, secret, "Approve")

    def refusal():
        for e in driver.find_elements(By.CSS_SELECTOR, "#messages article.msg[data-ephemeral='true']"):
            if "not an approver" in text_of(e):
                return e
        return None

    r = until("the outsider's ephemeral refusal", refusal)
    driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", r)
    driver.save_screenshot(os.path.join(shots, "demo-refused.png"))
    refused = text_of(r)

    # Someone typed in by id (with a role) is refused too, and sees only their own reply.
    press_as(driver, "other")
    typed = driver.find_element(By.ID, "other-id")
    typed.clear()
    typed.send_keys("100000000000000003:7")
    until("the outsider's reply to vanish for the typed-in user", lambda: "gone" if refusal() is None else None)
    press(driver, secret, "Approve")
    until("the typed-in user's refusal", refusal)
    replies = len(driver.find_elements(By.CSS_SELECTOR, "#messages article.msg[data-ephemeral='true']"))

    # Only the presser sees it: as the approver, neither reply is there.
    press_as(driver, APPROVER)
    hidden = until("the refusal to vanish for the approver", lambda: "gone" if refusal() is None else None)
    say("refused", text=refused, hidden_from_others=hidden == "gone", typed_user_replies=replies)

    # The approver denies this one through the Deny… form, with a reason.
    first = request_message(driver, secret).get_attribute("data-id")
    press(driver, secret, "Deny…")
    form = until("the Deny… form", lambda: visible_modal(driver))
    title = form.find_element(By.TAG_NAME, "h2").text
    labels = [l.text for l in form.find_elements(By.TAG_NAME, "label")]
    field = form.find_element(By.CSS_SELECTOR, "textarea, input")
    field.send_keys("not on a Friday")
    driver.save_screenshot(os.path.join(shots, "demo-modal.png"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def denied():
        m = request_message(driver, secret)
        return m if m and "Denied" in text_of(m) and button(m, "Deny") is None else None

    m = until("the message to show the denial", denied)
    until("the form to close", lambda: "closed" if visible_modal(driver) is None else None)
    say("denied", id=first, text=text_of(m), modal_title=title, modal_labels=labels,
        bar=bar_of(driver, m), buttons=buttons_of(m))

    # The agent asks again (the test does it); the approver's tap releases the secret.
    until("the second request's Approve button",
          lambda: button(request_message(driver, secret, (first,)), "Approve"))
    press(driver, secret, "Approve", (first,))

    def approved():
        m = request_message(driver, secret, (first,))
        return m if m and "Approved" in text_of(m) and button(m, "Approve") is None else None

    m = until("the message to show the approval", approved)
    driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", m)
    time.sleep(0.2)  # let the redraw settle before the picture (not a wait for state)
    driver.save_screenshot(os.path.join(shots, "demo-approved.png"))
    m = request_message(driver, secret, (first,))
    say("approved", text=text_of(m), bar=bar_of(driver, m), buttons=buttons_of(m),
        marker=driver.execute_script("return window.__kgMarker"))


def layout(driver, url, shots):
    """Report how the first message in the channel is drawn (a components v2 one)."""
    driver.get(url)
    until("the page to go live", lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    m = until("a message", lambda: driver.find_elements(By.CSS_SELECTOR, "#messages article.msg"))[0]
    q = lambda css: m.find_element(By.CSS_SELECTOR, css)
    disabled = [b for b in m.find_elements(By.CSS_SELECTOR, "button.btn") if not b.is_enabled()]
    section = q(".section > button.btn")
    driver.save_screenshot(os.path.join(shots, "layout-v2.png"))
    say(
        "layout",
        accent=driver.execute_script("return getComputedStyle(arguments[0]).borderLeftColor", q(".container")),
        h1=q(".h1").text,
        subtext=q(".subtext").text,
        dividers=len(m.find_elements(By.CSS_SELECTOR, "hr.separator.divider")),
        bold=q("strong").text,
        code=q("code").text,
        section_button=section.text + " " + section.get_attribute("class"),
        disabled=[disabled[0].text, disabled[0].get_attribute("class")] if disabled else None,
        markup_elements=driver.execute_script("return document.querySelectorAll('#messages script, #messages img').length"),
        pwned=driver.execute_script("return window.__kgPwned === undefined ? null : String(window.__kgPwned)"),
    )


def visible_modal(driver):
    layer = driver.find_element(By.ID, "modal-layer")
    if layer.get_attribute("hidden") is not None:
        return None
    forms = layer.find_elements(By.CSS_SELECTOR, "form.modal")
    return forms[0] if forms else None


def bar_of(driver, m):
    return driver.execute_script(
        "return getComputedStyle(arguments[0].querySelector('.embed')).borderLeftColor", m
    )


def buttons_of(m):
    return [
        {"label": b.text.strip(), "class": b.get_attribute("class"), "enabled": b.is_enabled()}
        for b in m.find_elements(By.CSS_SELECTOR, "button.btn")
    ]


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # report it as an event the test shows, then fail
        import traceback

        say("error", message=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        sys.exit(1)
