"""Driving ``basicsr web`` in a real browser: Debian's Chromium through Playwright (whose own
browser download CI cannot reach). Used by tests/test_web.py and scripts/web_screenshots.py."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

from helpers import subprocess_env

CHROMIUM = os.environ.get('MH2F_CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
RESULT_TIMEOUT_MS = 60_000


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextmanager
def web_server(cwd, args=(), env=None, start_timeout=120):
    """``basicsr web`` on a free loopback port in ``cwd``: yields its URL; stopped afterwards."""
    port = free_port()
    log = open(os.path.join(cwd, 'web_server.log'), 'w')
    process = subprocess.Popen(
        [sys.executable, '-m', 'mh2f_plugin.cli.main', 'web', '--port',
         str(port)] + [str(a) for a in args],
        cwd=cwd,
        env=subprocess_env(env),
        stdout=log,
        stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f'basicsr web exited {process.returncode}: {open(log.name).read()[-3000:]}')
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'basicsr web did not answer in {start_timeout} s')
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def browser():
    """A headless Chromium (``$MH2F_CHROMIUM``, else Debian's ``chromium``) driven by Playwright."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(chromium, url, width=1280):
    page = chromium.new_page(viewport={'width': width, 'height': 900})
    page.goto(url)
    page.wait_for_selector('#run')
    return page


def upload_file(page, element_id, path):
    """Puts ``path`` into the file box ``#element_id``, clearing the file it holds first."""
    clear = page.locator(f'#{element_id} button[aria-label="Clear"]')
    if clear.count():
        clear.first.click()
    page.locator(f'#{element_id} input[type=file]').set_input_files(str(path))


def upload_photo(page, path):
    upload_file(page, 'photo', path)


def choose_zoo(page, names):
    for name in names:
        page.locator('#zoo input').first.click()
        page.keyboard.type(name)
        page.keyboard.press('Enter')
    page.keyboard.press('Escape')


def type_checkpoint(page, path):
    page.locator('#typed textarea, #typed input').first.fill(str(path))


def upload_checkpoint(page, path):
    upload_file(page, 'upload', path)


def text(page, element_id):
    locator = page.locator(f'#{element_id}')
    return locator.inner_text() if locator.count() else ''


def wait_for_text(page, element_id, needle, timeout=RESULT_TIMEOUT_MS):
    """Waits until ``#element_id`` shows ``needle``; Playwright's TimeoutError otherwise."""
    page.wait_for_function(
        '([id, needle]) => { const e = document.getElementById(id); return e && e.innerText.includes(needle); }',
        arg=[element_id, needle],
        timeout=timeout)
    return text(page, element_id)
