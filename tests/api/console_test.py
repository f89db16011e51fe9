"""The web console in headless Chromium (Selenium), against a live service.

Run by tests/api/test_console.sh, which starts Redis, Kafka, pw-receiver and
the service and passes their addresses in the environment:
  PW_API        the service's base URL
  PW_TOKEN      the admin token
  PW_RECV_PORT  pw-receiver's port (/ok answers 200, /fail 500)
  PW_RECV_LOG   pw-receiver's request log (JSON lines)
  PW_PRODUCE    a command that produces N events for a company and type:
                $PW_PRODUCE COMPANY TYPE PREFIX N
  PW_SHOTS      the directory for the screenshots
  PW_REDIS_CLI  redis-cli with the service's Redis port and database

Each step asserts what the page shows, waiting for a condition with a
deadline (never a fixed sleep), and saves a screenshot of the screen.
Exits non-zero at the first failed assertion.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

API = os.environ["PW_API"]
TOKEN = os.environ["PW_TOKEN"]
RECV_PORT = os.environ["PW_RECV_PORT"]
RECV_LOG = os.environ["PW_RECV_LOG"]
PRODUCE = os.environ["PW_PRODUCE"]
SHOTS = os.environ["PW_SHOTS"]
REDIS_CLI = os.environ["PW_REDIS_CLI"]
COMPANY = "acme"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# A company id is any visible ASCII but '/': this one is markup, and must
# show as text.
MARKUP_COMPANY = "<b>bold<i>x"

step_no = 0


def step(name):
    global step_no
    step_no += 1
    print("--- %02d %s" % (step_no, name), flush=True)


def shot(driver, name):
    path = os.path.join(SHOTS, name + ".png")
    driver.save_screenshot(path)
    print("    screenshot " + path, flush=True)


def wait(driver, what, cond, timeout=15):
    try:
        # The page re-renders its lists: an element found a moment ago may
        # be gone, which only means "not yet".
        return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(lambda d: cond())
    except TimeoutException:
        shot(driver, "failed-%02d" % step_no)
        raise AssertionError("timed out after %ss waiting for: %s" % (timeout, what))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def el(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css)


def visible(driver, css):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(found) and found[0].is_displayed()


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        text = res.read().decode()
        return json.loads(text) if text else None


def row(driver, hook_id):
    return el(driver, 'tr[data-id="%s"]' % hook_id)


def row_ids(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#webhooks tbody tr'), r => r.dataset.id)")


def received(path):
    with open(RECV_LOG) as f:
        return [json.loads(line) for line in f if line.strip()
                and json.loads(line).get("path") == path]


def main():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("PW_CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1440,1100", "--no-first-run",
              "--disable-background-networking", "--disable-extensions",
              "--disable-sync", "--disable-default-apps"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("PW_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        run(driver)
        # No script error, no CSP violation in the whole session (the
        # refused requests the test provoked are logged as "network").
        logs = [e for e in driver.get_log("browser")
                if e["level"] == "SEVERE" and e.get("source") != "network"]
        check(not logs, "browser console errors: %r" % logs)
    finally:
        driver.quit()


def run(driver):
    step("the console loads without a token and asks for one")
    driver.get(API + "/console/")
    wait(driver, "the sign-in form", lambda: visible(driver, "#login-form"))
    check(not visible(driver, "#main"), "the console shows data before sign-in")
    shot(driver, "01-sign-in")

    step("a wrong token is refused")
    el(driver, "#token").send_keys("not-the-token")
    el(driver, "#company").send_keys(COMPANY)
    el(driver, "#login-open").click()
    wait(driver, "the refusal", lambda: visible(driver, "#err-login")
         and "refused" in el(driver, "#err-login").text)
    check(driver.execute_script(
        "return sessionStorage.getItem('promo-webhooks.token')") is None,
          "a refused token was kept")

    step("sign in: the token is kept in sessionStorage, never in the URL")
    el(driver, "#token").send_keys(TOKEN)
    el(driver, "#company").clear()
    el(driver, "#company").send_keys(COMPANY)
    el(driver, "#login-open").click()
    wait(driver, "the webhooks list", lambda: visible(driver, "#list"))
    check(TOKEN not in driver.current_url, "the token is in the URL")
    stored = driver.execute_script(
        "return sessionStorage.getItem('promo-webhooks.token')")
    check(stored == TOKEN, "the token is not in sessionStorage")
    check(driver.execute_script("return localStorage.length") == 0,
          "something was written to localStorage")
    check(driver.execute_script("return document.cookie") == "", "a cookie was set")
    wait(driver, "the empty list", lambda: visible(driver, "#list-empty"))

    step("add: period fields only for the two period events")
    el(driver, "#add-webhook").click()
    wait(driver, "the form", lambda: visible(driver, "#webhook-form"))
    ev = Select(el(driver, "#f-event"))
    check(len(ev.options) == 10, "the event list has %d entries" % len(ev.options))
    ev.select_by_value("Promotion.StartingInPeriod")
    check(visible(driver, "#f-period") and visible(driver, "#f-period-value"),
          "period fields hidden for Promotion.StartingInPeriod")
    shot(driver, "02-form-period-event")
    ev.select_by_value("Promotion.EndingInPeriod")
    check(visible(driver, "#f-period"), "period fields hidden for Promotion.EndingInPeriod")
    ev.select_by_value("Promotion.Created")
    check(not visible(driver, "#f-period") and not visible(driver, "#f-period-value"),
          "period fields shown for Promotion.Created")

    step("a bad target: the API's message next to the Target field")
    el(driver, "#f-target").send_keys("ftp://hooks.acme.example/promo")
    el(driver, "#f-save").click()
    wait(driver, "the target error", lambda: visible(driver, "#err-target"))
    msg = el(driver, "#err-target").text
    check(msg == '"target" must be an absolute http or https URL', "target error: %r" % msg)
    check(not visible(driver, "#err-form") and not visible(driver, "#err-event"),
          "the error shows elsewhere too")
    shot(driver, "03-validation-target")

    step("a period event without its period: the message next to that field")
    ev.select_by_value("Promotion.StartingInPeriod")
    el(driver, "#f-target").clear()
    el(driver, "#f-target").send_keys("http://127.0.0.1:%s/period" % RECV_PORT)
    el(driver, "#f-save").click()
    wait(driver, "the period error", lambda: visible(driver, "#err-notificationPeriod"))
    check("requires notificationPeriod" in el(driver, "#err-notificationPeriod").text,
          "period error: %r" % el(driver, "#err-notificationPeriod").text)
    check(not visible(driver, "#err-target"), "the old target error is still shown")
    Select(el(driver, "#f-period")).select_by_value("Days")
    el(driver, "#f-period-value").send_keys("400")
    el(driver, "#f-save").click()
    wait(driver, "the period value error",
         lambda: visible(driver, "#err-notificationPeriodValue")
         and "366 days" in el(driver, "#err-notificationPeriodValue").text)
    el(driver, "#f-period-value").clear()
    el(driver, "#f-period-value").send_keys("2")
    el(driver, "#f-save").click()
    wait(driver, "the period webhook in the list", lambda: len(row_ids(driver)) == 1)
    period_id = row_ids(driver)[0]
    check(row(driver, period_id).find_element(By.CSS_SELECTOR, ".c-period").text == "Days",
          "period not shown")
    check(row(driver, period_id).find_element(By.CSS_SELECTOR, ".c-value").text == "2",
          "period value not shown")

    step("create a webhook through the form; it shows in the list")
    el(driver, "#add-webhook").click()
    wait(driver, "the form", lambda: visible(driver, "#webhook-form"))
    Select(el(driver, "#f-event")).select_by_value("Product.ImportCompleted")
    target = "http://127.0.0.1:%s/ok" % RECV_PORT
    el(driver, "#f-target").send_keys(target)
    el(driver, "#f-secret").send_keys(SECRET)
    el(driver, "#f-save").click()
    wait(driver, "two webhooks in the list", lambda: len(row_ids(driver)) == 2)
    wait(driver, "the editor closed", lambda: not visible(driver, "#editor"))
    ok_id = [i for i in row_ids(driver) if i != period_id][0]
    r = row(driver, ok_id)
    check(r.find_element(By.CSS_SELECTOR, ".c-event").text == "Product.ImportCompleted", "event")
    check(r.find_element(By.CSS_SELECTOR, ".c-target").text == target, "target")
    check(r.find_element(By.CSS_SELECTOR, ".c-enabled").text == "Yes", "enabled")
    check(r.find_element(By.CSS_SELECTOR, ".c-created").text.startswith("20"), "createdAt")
    stored = api("GET", "/v1/companies/%s/webhooks/%s" % (COMPANY, ok_id))
    check(stored["hasSecret"] is True and stored["target"] == target,
          "the API does not hold what the form sent: %r" % stored)
    shot(driver, "04-webhooks-list")

    step("View Sample Payload from the form: JSON, pretty-printed")
    el(driver, "#add-webhook").click()
    Select(el(driver, "#f-event")).select_by_value("Promotion.Created")
    el(driver, "#f-sample").click()
    wait(driver, "the sample", lambda: visible(driver, "#sample")
         and el(driver, "#sample-format").text == "JSON")
    body = el(driver, "#sample-body").text
    check('\n  "event": "Promotion.Created",' in body, "JSON sample not pretty: %r" % body[:200])
    check(json.loads(body)["data"]["promotionId"] == "PROMO-2025-SUMMER-20", "JSON sample data")
    shot(driver, "05-sample-json")
    el(driver, "#f-cancel").click()
    el(driver, "#sample-close").click()

    step("settings: a bad email is refused next to its field, then saved")
    Select(el(driver, "#s-type")).select_by_value("Xml")
    el(driver, "#s-email").clear()
    el(driver, "#s-email").send_keys("not-an-email")
    el(driver, "#s-save").click()
    wait(driver, "the email error",
         lambda: visible(driver, "#err-webhookDisabledNotificationEmail"))
    check("email" in el(driver, "#err-webhookDisabledNotificationEmail").text, "email error")
    el(driver, "#s-email").clear()
    el(driver, "#s-email").send_keys("ops@acme.example")
    el(driver, "#s-save").click()
    wait(driver, "saved", lambda: visible(driver, "#s-saved"))
    check(not visible(driver, "#err-webhookDisabledNotificationEmail"), "old error still shown")
    s = api("GET", "/v1/companies/%s/settings" % COMPANY)
    check(s == {"webhookDisabledNotificationEmail": "ops@acme.example",
                "webhookPayloadDataType": "Xml"}, "settings not stored: %r" % s)
    shot(driver, "06-settings")

    step("View Sample Payload of a webhook: the company's XML, pretty-printed")
    row(driver, ok_id).find_element(By.CSS_SELECTOR, ".b-sample").click()
    wait(driver, "the XML sample", lambda: visible(driver, "#sample")
         and el(driver, "#sample-format").text == "XML")
    body = el(driver, "#sample-body").text
    check(body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<WebhookEvent>\n  <Id>msg_'),
          "XML sample not pretty: %r" % body[:200])
    check("\n  <WebhookId>%s</WebhookId>" % ok_id in body, "XML sample of another webhook")
    check("\n    <importId>imp_1f7d4a08</importId>" in body, "XML sample data")
    shot(driver, "07-sample-xml")
    el(driver, "#sample-close").click()

    step("a webhook that fails three times shows as disabled, with its reason")
    el(driver, "#add-webhook").click()
    Select(el(driver, "#f-event")).select_by_value("CouponCodes.ImportCompleted")
    fail_target = "http://127.0.0.1:%s/fail" % RECV_PORT
    el(driver, "#f-target").send_keys(fail_target)
    el(driver, "#f-save").click()
    wait(driver, "three webhooks", lambda: len(row_ids(driver)) == 3)
    fail_id = [i for i in row_ids(driver) if i not in (ok_id, period_id)][0]
    # The registry sees a new webhook within a second; events before that
    # would find no webhook, so wait until the service has it.
    deadline = time.time() + 10
    while "promo_webhooks_registry_webhooks 3" not in urllib.request.urlopen(
            API + "/metrics", timeout=5).read().decode():
        check(time.time() < deadline, "the registry did not load the new webhook")
        time.sleep(0.1)
    subprocess.run(PRODUCE + " %s CouponCodes.ImportCompleted console 3" % COMPANY,
                   shell=True, check=True)

    def shows_disabled():
        el(driver, "#refresh").click()
        try:
            r = row(driver, fail_id)
            return (r.find_element(By.CSS_SELECTOR, ".c-enabled").text == "No"
                    and "3 failed deliveries" in r.find_element(By.CSS_SELECTOR, ".c-disabled").text)
        except Exception:
            return False
    wait(driver, "the failing webhook disabled in the list", shows_disabled, timeout=60)
    r = row(driver, fail_id)
    check(r.find_element(By.CSS_SELECTOR, ".c-disabled").text.startswith("20"),
          "disabledAt not shown")
    check(r.find_elements(By.CSS_SELECTOR, ".b-enable"), "no Enable again button")
    shot(driver, "08-disabled")

    step("its attempts: time, status, duration, error, start of the answer")
    r.find_element(By.CSS_SELECTOR, ".b-attempts").click()
    wait(driver, "three attempts", lambda: len(driver.find_elements(
        By.CSS_SELECTOR, "#attempts-table tbody tr")) == 3)
    first = driver.find_elements(By.CSS_SELECTOR, "#attempts-table tbody tr")[0]
    check(first.find_element(By.CSS_SELECTOR, ".a-status").text == "500", "status")
    check(first.find_element(By.CSS_SELECTOR, ".a-duration").text.endswith(" ms"), "duration")
    check(first.find_element(By.CSS_SELECTOR, ".a-error").text != "", "error")
    check("500" in first.find_element(By.CSS_SELECTOR, ".a-response").text, "response start")
    check(first.find_element(By.CSS_SELECTOR, ".a-at").text.startswith("20"), "time")
    check(visible(driver, "#attempts-disabled")
          and "3 failed deliveries" in el(driver, "#attempts-disabled").text, "reason")
    shot(driver, "09-attempts")

    step("enable it again")
    el(driver, "#attempts-enable").click()
    wait(driver, "enabled again", lambda: row(driver, fail_id).find_element(
        By.CSS_SELECTOR, ".c-enabled").text == "Yes")
    check(row(driver, fail_id).find_element(By.CSS_SELECTOR, ".c-disabled").text == "",
          "still shows a disable reason")
    check(not visible(driver, "#attempts-enable"), "Enable again still offered")
    check(api("GET", "/v1/companies/%s/webhooks/%s" % (COMPANY, fail_id))["enabled"] is True,
          "not enabled in the API")

    step("send a test: the outcome, the attempt marked as a test")
    before = len(received("/ok"))
    row(driver, ok_id).find_element(By.CSS_SELECTOR, ".b-test").click()
    wait(driver, "the test outcome", lambda: visible(driver, "#test-result")
         and el(driver, "#test-outcome").text.startswith("Delivered: HTTP 200"))
    wait(driver, "the test in the attempt log", lambda: any(
        t.find_element(By.CSS_SELECTOR, ".a-event").text == "test"
        for t in driver.find_elements(By.CSS_SELECTOR, "#attempts-table tbody tr.is-test")))
    got = received("/ok")
    check(len(got) == before + 1, "the receiver got %d test requests" % (len(got) - before))
    headers = got[-1]["headers"]
    check(headers.get("webhook-signature", "").startswith("v1,"), "the test send is not signed")
    check(headers.get("content-type") == "application/xml", "the test is not in the company's XML")
    shot(driver, "10-test-send")

    step("a failing test send shows its error and does not disable the webhook")
    row(driver, fail_id).find_element(By.CSS_SELECTOR, ".b-test").click()
    wait(driver, "the failed test outcome", lambda: visible(driver, "#test-result")
         and el(driver, "#test-outcome").text.startswith("Failed: HTTP 500"))
    for _ in range(3):
        api("POST", "/v1/companies/%s/webhooks/%s/test" % (COMPANY, fail_id))
    check(api("GET", "/v1/companies/%s/webhooks/%s" % (COMPANY, fail_id))["enabled"] is True,
          "test sends counted toward the failure rule")

    step("markup in the attempt log (a receiver's answer, an error) shows as text")
    # Written to Redis directly, as a hostile receiver's answer would be
    # stored: the page must show the characters, not build elements.
    evil = {"at": "2026-12-03T10:00:00.000Z",
            "eventId": "<script>window.__pwXss = 1</script>",
            "attempt": 1, "status": 500,
            "error": "<img src=x onerror=\"window.__pwXss = 2\">",
            "durationMs": 1,
            "responseBody": "<b>bold</b><script>window.__pwXss = 3</script>"}
    subprocess.run(REDIS_CLI.split() + ["LPUSH", "{pw}:attempts:" + ok_id,
                                        json.dumps(evil)], check=True,
                   stdout=subprocess.DEVNULL)
    row(driver, ok_id).find_element(By.CSS_SELECTOR, ".b-attempts").click()
    wait(driver, "the hostile entry", lambda: any(
        t.find_element(By.CSS_SELECTOR, ".a-error").text == evil["error"]
        for t in driver.find_elements(By.CSS_SELECTOR, "#attempts-table tbody tr")))
    table = el(driver, "#attempts-table")
    check(not table.find_elements(By.CSS_SELECTOR, "tbody img, tbody script, tbody b"),
          "markup from the attempt log became elements")
    texts = [t.text for t in table.find_elements(By.CSS_SELECTOR, "tbody td")]
    check(evil["eventId"] in texts and evil["responseBody"] in texts,
          "the hostile entry is not shown as text: %r" % texts)
    check(driver.execute_script("return window.__pwXss === undefined"), "injected script ran")
    shot(driver, "12-markup-as-text")

    step("edit a webhook")
    row(driver, ok_id).find_element(By.CSS_SELECTOR, ".b-edit").click()
    wait(driver, "the edit form", lambda: visible(driver, "#webhook-form")
         and el(driver, "#editor-title").text == "Edit webhook")
    check(el(driver, "#f-target").get_attribute("value") == target, "the form lacks the target")
    check(visible(driver, "#f-secret-remove-row"), "no way to remove the stored secret")
    el(driver, "#f-target").clear()
    el(driver, "#f-target").send_keys(target + "?edited=1")
    el(driver, "#f-enabled").click()
    el(driver, "#f-save").click()
    wait(driver, "the edit in the list", lambda: row(driver, ok_id).find_element(
        By.CSS_SELECTOR, ".c-target").text == target + "?edited=1")
    check(row(driver, ok_id).find_element(By.CSS_SELECTOR, ".c-enabled").text == "No",
          "disabling through the form")
    check(api("GET", "/v1/companies/%s/webhooks/%s" % (COMPANY, ok_id))["hasSecret"] is True,
          "editing without a secret dropped the stored one")

    step("delete a webhook")
    row(driver, period_id).find_element(By.CSS_SELECTOR, ".b-delete").click()
    wait(driver, "the confirmation", lambda: driver.switch_to.alert)
    driver.switch_to.alert.accept()
    wait(driver, "the row gone", lambda: period_id not in row_ids(driver))
    shot(driver, "11-after-edit-delete")

    step("values from the API are shown as text, never as markup")
    el(driver, "#company-switch").clear()
    el(driver, "#company-switch").send_keys(MARKUP_COMPANY)
    el(driver, "#company-open").click()
    wait(driver, "the other company", lambda: el(driver, "#company-current").text
         == "Company: " + MARKUP_COMPANY)
    check(not driver.find_elements(By.CSS_SELECTOR, "b, i"), "markup from the API was parsed")
    wait(driver, "its empty list", lambda: visible(driver, "#list-empty"))

    step("sign out: the token leaves sessionStorage")
    el(driver, "#sign-out").click()
    wait(driver, "the sign-in form", lambda: visible(driver, "#login-form"))
    check(driver.execute_script("return sessionStorage.getItem('promo-webhooks.token')") is None,
          "the token is still stored")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    print("ok: the console does what the Webhooks page describes")
