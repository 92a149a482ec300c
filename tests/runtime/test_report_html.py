"""report.html from a run report: rendered, opened in headless Chromium, every chart decoded."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from chromium_page import open_page
from tfspec.runtime.report_charts import plan_layout
from tfspec.runtime.report_html import REPORT_HTML, ReportError, load_report, render_report_html, write_report_html

FIXTURE = Path(__file__).parents[1] / "data" / "report" / "report.json"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return load_report(FIXTURE)


@pytest.fixture(scope="module")
def page(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    dist = tmp_path_factory.mktemp("dist")
    path = write_report_html(dist, report)
    return path, open_page(path)


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def test_page_opens_in_chromium_without_errors(page: tuple[Path, Any]) -> None:
    path, result = page
    assert result.errors == []
    assert result.title == "digits v3 · tfspec run report"
    # self-contained: the only request is the page itself; images are data: URIs, nothing else is fetched
    assert result.requests[0] == path.resolve().as_uri()
    assert all(url.startswith("data:image/png;base64,") for url in result.requests[1:])
    assert result.resources == [] or all(name.startswith("data:") for name in result.resources)


def test_every_image_decodes_with_a_size(page: tuple[Path, Any], report: dict[str, Any]) -> None:
    _, result = page
    # 1 targets chart + one per trained step + one per compression step with layers + the plan graph
    expected = 1 + len(report["history"]) + 2 + 1
    assert len(result.images) == expected
    for image in result.images:
        assert image["complete"], image
        assert image["naturalWidth"] > 100 and image["naturalHeight"] > 100, image
        assert image["renderedWidth"] > 100, image
        assert image["srcPrefix"] == "data:image/png;base64,"


def test_screenshot_is_a_full_page_png(page: tuple[Path, Any], tmp_path: Path) -> None:
    _, result = page
    shot = Image.open(io.BytesIO(result.screenshot))
    assert shot.format == "PNG"
    assert shot.width == 1280 and shot.height > 2500  # the whole page, not only the viewport
    colours = shot.convert("RGB").resize((64, 256)).getcolors(64 * 256)
    assert colours is not None and len(colours) > 20  # something was drawn, not a blank page
    shot.save(tmp_path / "report.png")


def test_page_shows_spec_gates_steps_and_versions(report: dict[str, Any]) -> None:
    html = render_report_html(report)
    assert report["spec"]["sha256"] in html
    assert "gates failed" in html  # the fixture's serving target fails its latency gate
    assert '<span class="badge fail">failed</span> <code>max_latency_ms</code> 0.63 (limit 0.5 ms)' in html
    assert '<span class="badge pass">passed</span> <code>max_size_kb</code> 13.52 (limit 64 KiB)' in html
    for step in report["steps"]:
        assert f"<code>{step['id']}</code>" in html
    assert html.count('<span class="badge cached">cached</span>') == 2
    assert html.count('<span class="badge render">render</span>') == 3
    for tool, version in report["tool_versions"].items():
        assert f"<tr><td>{tool}</td><td class=\"mono\">{version}</td></tr>" in html
    assert "10.1× smaller" in html  # android's int8 model against the Keras baseline
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_embedded_charts_are_real_pngs(report: dict[str, Any]) -> None:
    for uri in _images(render_report_html(report)):
        data = base64.b64decode(uri.removeprefix("data:image/png;base64,"), validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == "PNG" and image.width > 300 and image.height > 150


def test_text_from_the_report_is_escaped(report: dict[str, Any]) -> None:
    hostile = copy.deepcopy(report)
    hostile["spec"]["name"] = "<script>alert(1)</script>"
    hostile["tool_versions"]["x<img src=x onerror=alert(1)>"] = "1"
    html = render_report_html(hostile)
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_run_without_training_targets_or_compression_still_renders(report: dict[str, Any]) -> None:
    minimal = {"spec": report["spec"], "steps": [s for s in report["steps"] if s["kind"] in ("data", "render")],
               "passed": True}
    html = render_report_html(minimal)
    assert "This run verified no targets." in html
    assert "No training history in this run." in html
    assert "No compression stages in this run." in html
    assert "all gates passed" in html
    assert len(_images(html)) == 1  # the plan graph


@pytest.mark.parametrize("bad", [[], {"spec": {}}, {"steps": []}, {"spec": {}, "steps": {}}])
def test_a_file_that_is_not_a_run_report_is_rejected(tmp_path: Path, bad: Any) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ReportError, match="not a tfspec run report"):
        load_report(path)


def test_a_malformed_report_leaves_the_previous_page_in_place(tmp_path: Path, report: dict[str, Any]) -> None:
    write_report_html(tmp_path, report)
    before = (tmp_path / REPORT_HTML).read_bytes()
    broken = copy.deepcopy(report)
    broken["targets"]["android"]["metrics"]["size_bytes"] = "many"
    with pytest.raises(ReportError, match="not in the shape"):
        write_report_html(tmp_path, broken)
    assert (tmp_path / REPORT_HTML).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [REPORT_HTML]


def test_the_page_is_readable_by_others(tmp_path: Path, report: dict[str, Any]) -> None:
    path = write_report_html(tmp_path, report)
    assert path.stat().st_mode & 0o777 == 0o644


def test_missing_report_json_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"report\.json not found: run `tfspec run` first"):
        load_report(tmp_path / "report.json")


def test_plan_layout_layers_follow_dependencies(report: dict[str, Any]) -> None:
    layout = plan_layout(report["steps"])
    for step in report["steps"]:
        for parent in step["inputs"]:
            assert layout[parent][0] < layout[step["id"]][0], (parent, step["id"])
    assert layout["data"][0] == 0 and layout["train"][0] == 1
    # a render step sits just above the bundle that consumes it, not at the top
    assert layout["android.render"][0] == layout["android.bundle"][0] - 1
    assert len(set(layout.values())) == len(layout)  # no two boxes in the same place


def test_the_browser_check_sees_errors_and_broken_images(tmp_path: Path) -> None:
    """The harness itself can fail: a console error, a script error and an undecodable image are all seen."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>broken</title></head><body>'
                    '<img src="data:image/png;base64,AAAA" alt="broken">'
                    '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    result = open_page(page)
    assert any("boom" in e for e in result.errors)
    assert any("undefinedFunction" in e for e in result.errors)
    assert result.images[0]["naturalWidth"] == 0


def test_report_modules_do_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys, tfspec.runtime.report_html, tfspec.runtime.report_charts, tfspec.commands.report;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


STAGES_FIXTURE = Path(__file__).parents[1] / "data" / "report" / "report_stages.json"  # `tfspec run` of examples/digits


@pytest.fixture(scope="module")
def stages_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    report = load_report(STAGES_FIXTURE)
    path = write_report_html(tmp_path_factory.mktemp("dist"), report)
    return path, open_page(path), report


def test_stages_classes_machine_and_layers_are_shown(stages_page: tuple[Path, Any, dict[str, Any]],
                                                     tmp_path: Path) -> None:
    path, result, report = stages_page
    assert result.errors == []
    html = path.read_text("utf-8")
    # every stage (trained model, each compression stage, each target) with its drop from the trained model
    for stage in report["stages"]:
        assert f"<tr><td><code>{stage['label']}</code></td>" in html
    trained, pruned, _ = report["stages"]
    assert f'<td class="num">{trained["value"]:.4f}</td><td class="num"></td>' in html
    assert f'<td class="num">{pruned["change_from_trained"]:+.4f}</td>' in html
    # one chart with size against accuracy for stages and targets, besides the targets chart
    assert 'alt="size against accuracy for the trained model, each compression stage and each target"' in html
    assert len(result.images) == 1 + 1 + len(report["history"]) + 2 + 1
    # gzipped sizes next to raw ones; the machine the latencies come from
    assert html.count("<th>gzipped</th>") == 2
    machine = report["machine"]
    assert f"{machine['cpu']}, {machine['cores']} logical cores, {machine['os']}" in html
    # class counts per split, a confusion matrix with precision and recall for the trained model and each tflite
    counts = report["class_counts"]
    assert "<tr><td>0</td>" + "".join(f'<td class="num">{counts[s][0]}</td>' for s in ("train", "validation", "test")) \
        in html
    assert html.count('<table class="confusion">') == 1 + len(report["targets"])
    recall = report["stages"][0]["per_class"][3]["recall"]
    assert f'<td class="num">{recall:.3f}</td>' in html
    # the final Keras model's layers with output shapes
    for layer in report["model_summary"]:
        assert f"<tr><td><code>{layer['name']}</code></td><td>{layer['type']}</td><td class=\"mono\">" \
               f"{layer['output_shape']}</td>" in html
    shot = Image.open(io.BytesIO(result.screenshot))
    assert shot.width == 1280 and shot.height > 5000
    shot.save(tmp_path / "report-stages.png")


def test_a_chance_level_warning_is_shown_loudly() -> None:
    report = load_report(STAGES_FIXTURE)
    report["warnings"] = ["the trained model is at chance level on the test split: accuracy <= 0.1028"]
    html = render_report_html(report)
    assert ('<p class="warning" role="alert">WARNING: the trained model is at chance level on the test split: '
            "accuracy &lt;= 0.1028</p>") in html
