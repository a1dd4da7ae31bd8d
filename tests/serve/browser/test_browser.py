"""The web UI clicked through in headless chromium against a real server on a copy of the quick
starter hub: login by token and by password, search to a model page, a node page with its
images, a task solved from real sample images (report and predictor downloaded), an upload that
becomes a labelled model, and a form refused without its CSRF token.

``MLL_SCREENSHOTS=docs`` writes the task page's screenshot to docs/serve-task.png."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[3]


def login_token(page, token: str, then: str = "/") -> None:
    page.goto(f"/login?next={then}")
    page.fill("#login-token input[name=token]", token)
    page.click("#login-token button")
    page.wait_for_url(re.compile(re.escape(then) + "$"))


def login_password(page, site, name: str, then: str = "/") -> None:
    page.goto(f"/login?next={then}")
    page.fill("#login-password input[name=name]", name)
    page.fill("#login-password input[name=password]", site["password"])
    page.click("#login-password button")
    page.wait_for_url(re.compile(re.escape(then) + "$"))


def test_a_search_leads_to_a_model_page(page, site):
    page.goto("/")
    assert "/login" in page.url  # not public: the login page first
    login_token(page, site["tokens"]["reader"])
    assert "token" in page.text_content("#who")
    page.fill("input[name=q]", "sandal")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=sandal"))
    page.click("table.models a:text-is('cnn-footwear')")
    page.wait_for_url(re.compile(r"/models/[0-9a-f]+$"))
    assert "cnn-footwear" in page.text_content("h1")
    assert page.locator("svg.chart rect.fill").count() > 0
    assert page.locator("table.styles tr").count() > 1
    page.click("table.classes a:text-is('sandal')")
    page.wait_for_url(re.compile(r"/nodes/n\d{8}$"))


def test_a_node_page_shows_its_images_place_and_models(page, site):
    login_password(page, site, "reader", "/nodes/sandal")
    assert "sandal" in page.text_content("h1")
    thumbs = page.locator(".thumbs img")
    assert thumbs.count() > 0
    page.wait_for_load_state("networkidle")
    assert page.evaluate("Array.from(document.querySelectorAll('.thumbs img'))"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("table.models tr").count() > 1
    parent = page.locator("section.card").first.locator("a").first
    name = parent.text_content()
    parent.click()
    page.wait_for_url(re.compile(r"/nodes/n\d{8}$"))
    assert name in page.text_content("h1")


def test_a_task_is_solved_from_uploaded_images(page, site, tmp_path):
    login_password(page, site, "reader", "/task")
    page.fill("textarea[name=classes]", "sandal\nsneaker\nankle boot")
    page.fill("input[name=domain]", "grayscale product photos")
    page.click("#plan-form button")
    page.wait_for_selector("table.plan")
    assert page.locator("table.plan tr").count() == 4
    assert "%" in page.text_content("#predicted")
    files = []
    for word in ("sandal", "sneaker", "boot"):  # real sample images, saved from the node pages
        page.goto(f"/nodes/{word}")
        sources = page.eval_on_selector_all(".thumbs img", "els => els.map(e => e.src)")
        for i, src in enumerate(sources[:2]):
            path = tmp_path / f"{word}-{i}.png"
            path.write_bytes(page.request.get(src).body())
            files.append(path)
    page.goto("/task?classes=sandal%0Asneaker%0Aankle+boot&domain=grayscale+product+photos")
    page.set_input_files("input[name=files]", [str(f) for f in files])
    page.click("#solve-form button")
    page.wait_for_selector("#results")
    rows = page.locator("table.predictions tr")
    assert rows.count() == len(files) + 1
    predicted = [rows.nth(i).locator("td").nth(1).text_content() for i in range(1, rows.count())]
    right = sum(p.split()[-1] == f.name.split("-")[0]
                for p, f in zip(predicted, files, strict=True))
    assert right >= 4
    if os.environ.get("MLL_SCREENSHOTS"):
        out = REPO / os.environ["MLL_SCREENSHOTS"] / "serve-task.png"
        page.screenshot(path=str(out), full_page=True)
    report = page.request.get(page.get_attribute("#report-link", "href"))
    assert report.status == 200 and "text/html" in report.headers["content-type"]
    assert "sandal" in report.text()
    with page.expect_download() as download:
        page.click("#predictor-link")
    saved = tmp_path / "predictor.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as zf:
        assert "manifest.json" in zf.namelist()


def test_an_upload_becomes_a_labelled_model(page, site, tmp_path):
    import torch

    from mll.hub.archs import build
    from mll.hub.testing import export_onnx

    torch.manual_seed(3)
    weights = export_onnx(build("small-cnn", {"n_classes": 3, "width": 4}).eval(),
                          tmp_path / "tiny.onnx")
    login_password(page, site, "uploader", "/upload")
    page.set_input_files("input[name=weights]", str(weights))
    page.fill("textarea[name=classes]", "sandal\nsneaker\nankle boot")
    page.fill("input[name=name]", "browser-upload")
    page.fill("textarea[name=description]", "a tiny CNN uploaded from the browser")
    page.click("#upload-form button")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
    page.wait_for_selector("#job-live", state="visible", timeout=240_000)
    assert page.text_content("#job-state") == "done"
    page.click("#model-link")
    page.wait_for_url(re.compile(r"/models/[0-9a-f]+$"))
    assert "browser-upload" in page.text_content("h1")
    assert "uploaded from the browser" in page.text_content("section.card")
    assert page.locator("svg.chart rect.fill").count() > 0
    page.goto("/search?q=sandal")
    assert page.locator("table.models a:text-is('browser-upload')").count() == 1


def test_a_form_without_its_csrf_token_is_refused(page, site):
    login_password(page, site, "uploader", "/")
    refused = page.request.post("/logout", form={"csrf": "forged"})
    assert refused.status == 403
    page.goto("/")
    assert "uploader (uploader)" in page.text_content("#who")  # still logged in
    page.click("header form button")  # the real form carries the token
    page.wait_for_url(re.compile(r"/login$"))
