"""The documentation cannot drift: the command reference is regenerated and compared, links must resolve,
the quality table must say what docs/quality.json holds, and the package description carries no images."""

from __future__ import annotations

import json
import re
import runpy
import statistics
from pathlib import Path

import click
import pytest

from .conftest import ROOT

from sincut.reference import UPDATE_COMMAND, reference_markdown

from benchmarks import quality as quality_benchmark

USER_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ALL_PAGES = [*USER_PAGES, ROOT / "CONTRIBUTING.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_reference_is_generated_from_the_commands():
    committed = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), f"docs/reference.md is stale: run `{UPDATE_COMMAND}` to update it"


def test_reference_lists_every_command_and_every_option_flag():
    """Walks the Click group independently of the generator: each flag a command accepts and lists must appear
    in its command's section (resume parses the recipe's options only to refuse them: those stay out)."""
    from sincut.cli import main

    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `sincut (\S+)`\n(.*?)(?=^## |\Z)", text, re.S | re.M))
    assert sorted(sections) == sorted(main.commands)
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and getattr(param, "listed", True):
                for flag in [*param.opts, *param.secondary_opts]:
                    assert f"`{flag}`" in sections[name], (name, flag)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"https?:|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name}: no heading for #{anchor} in {linked.name}"


def test_readme_links_the_pages_it_promises():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/reference.md", "docs/recipes.md", "docs/metrics.md", "docs/faithfulness.md",
                 "docs/benchmarks.md", "docs/performance.md", "docs/large-images-and-resume.md",
                 "CONTRIBUTING.md", "docs/demo.jpg", "docs/quality.png"):
        assert f"]({page}" in text, page
    assert len(text.splitlines()) <= 160


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_user_pages_do_not_speak_of_how_sincut_was_developed(page: Path):
    text = page.read_text(encoding="utf-8")
    for pattern in (r"\.\./shared", r"earlier session", r"this session", r"development session", r"sandbox",
                    r"GPU lent", r"\bI (was|am|have|did|ran)\b", r"\d\d:\d\d UTC"):
        assert not re.search(pattern, text), (page.name, pattern)


def _setup_module() -> dict:
    return runpy.run_path(str(ROOT / "setup.py"), run_name="setup_for_tests")


def test_package_description_drops_images_and_repository_links_only():
    describe = _setup_module()["package_description"]
    text = "# t\n![a picture](docs/demo.jpg)\nsee [the guide](docs/usage.md#x), [paper](https://arxiv.org/abs/1)\n"
    assert describe(text) == "# t\nsee the guide, [paper](https://arxiv.org/abs/1)\n"


def test_package_description_of_the_readme_keeps_the_text_and_no_broken_links():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    described = _setup_module()["package_description"](readme)
    assert "![" not in described
    assert all(re.match(r"https?:|mailto:", t) for t in LINK.findall(described)), LINK.findall(described)
    assert "## Quick start" in described and "pip install . && sincut demo" in described
    assert "taesungp/contrastive-unpaired-translation" in described


def test_benchmark_quality_table_is_the_table_of_quality_json():
    """docs/benchmarks.md carries `quality.py --table` of the committed docs/quality.json, verbatim: every
    recipe over three seeds on the four default pairs, beside the photo and both colour transfers."""
    data = json.loads((ROOT / "docs" / "quality.json").read_text(encoding="utf-8"))
    assert {(r["recipe"], r["pair"], r["seed"]) for r in data["runs"] if r["recipe"] == "quick"} == {
        ("quick", pair, seed) for pair in data["baselines"] for seed in (0, 1, 2)}
    assert len(data["baselines"]) == 4
    table = quality_benchmark.markdown_table(data)
    assert table in (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")


def _quick_cell(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def test_baseline_tables_say_what_baselines_json_holds():
    """docs/benchmarks.md's baseline rows and the README's photo / transfer columns, recomputed from the
    committed docs/results/baselines.json; the README's quick columns (median and range over seeds of the
    final evaluation) recomputed from docs/quality.json."""
    data = json.loads((ROOT / "docs" / "results" / "baselines.json").read_text(encoding="utf-8"))["baselines"]
    bench = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert len(data) == 10
    for pair, f in data.items():
        p, r, t = f["photo"], f["reinhard"], f["pitie"]
        row = (f"| {pair} | {p['sifid']:.1f} / {p['texture_distance']:.3f} | {r['sifid']:.1f} / "
               f"{r['texture_distance']:.3f} / {r['ssim']:.2f} | {t['sifid']:.1f} / {t['texture_distance']:.3f} / "
               f"{t['ssim']:.2f} |")
        assert row in bench, pair
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    finals: dict[str, list[dict]] = {}
    for run in json.loads((ROOT / "docs" / "quality.json").read_text())["runs"]:
        if run["recipe"] == "quick":
            finals.setdefault(run["pair"], []).append(run["evaluations"][-1])
    assert len(finals) == 4
    for pair, runs in finals.items():
        f = data[pair]
        best = min(f["reinhard"]["sifid"], f["pitie"]["sifid"])
        cells = (f"| {f['photo']['sifid']:.1f} | {f['reinhard']['sifid']:.1f} | {f['pitie']['sifid']:.1f} | "
                 f"{_quick_cell([e['sifid'] for e in runs], 1)} | "
                 f"{_quick_cell([e['sifid'] / best for e in runs], 2)} | "
                 f"{f['photo']['texture_distance']:.3f} / {f['pitie']['texture_distance']:.3f} / "
                 f"{_quick_cell([e['texture_distance'] for e in runs], 3)} | "
                 f"{_quick_cell([e['ssim'] for e in runs], 2)} / {f['pitie']['ssim']:.2f} |")
        assert cells in readme, pair


def test_colour_init_screen_table_says_what_its_json_holds():
    runs = [run for name in ("colour_init_screen.json", "detail_screen.json")
            for run in json.loads((ROOT / "docs" / "results" / name).read_text(encoding="utf-8"))["runs"]]
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert len(runs) == 16
    for run in runs:
        if run["variant"] in ("pitie-unfiltered-swd10", "pitie-unfiltered-swd10-g0"):
            continue  # in the JSON only: superseded by the filtered change
        cell = f"{run['sifid_over_best_transfer']:.2f} / {run['texture_distance']:.3f} / {run['ssim']:.2f}"
        assert cell in text, (run["variant"], run["pair"])


def test_strokes_screen_table_says_what_its_json_holds():
    data = json.loads((ROOT / "docs" / "results" / "strokes_screen.json").read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert {r["pair"] for r in data["runs"]} == {"montStMichel-vanGogh", "greatWall-bazille"}
    assert {r["minutes"] for r in data["runs"]} == {8.0, 15.0}
    for run in data["runs"]:
        best = min(data["baselines"][run["pair"]][t]["sifid"] for t in ("reinhard", "pitie"))
        assert run["sifid_over_best_transfer"] == pytest.approx(run["sifid"] / best, abs=1e-3)
        cell = (f"{run['sifid_over_best_transfer']:.2f} / {run['texture_distance']:.3f} / {run['ssim']:.2f} / "
                f"{run['edge_correlation']:.2f} ({run['steps']:,})")
        assert cell in text, (run["variant"], run["pair"], run["minutes"])


def test_translate_table_says_what_translate_json_holds():
    data = json.loads((ROOT / "docs" / "results" / "translate.json").read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert len(data["results"]) == 10
    for r in data["results"]:
        tile = "whole" if r["tiles"] == 1 else f"{r['tile']} px"
        size = r["size"] + (" (reference)" if r["whole_reference"] else "")
        row = (f"| {r['engine']} | {size} | {r['megapixels']:.1f} | {tile} | {r['tiles']} | "
               f"{r['seconds_per_megapixel']:.2f} | {r['vs_whole']:.2f} | {r['gflops_per_second']:.0f} | "
               f"{r['peak_rss_mib']:.0f} MiB |")
        assert row in text, (r["engine"], r["size"])


def test_tile_profile_paragraph_says_what_its_json_holds():
    rows = {r["size"]: r for r in json.loads((ROOT / "docs" / "results" / "tile_profile.json").read_text())["rows"]}
    text = " ".join((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8").split())
    tiled = rows["4000x3000"]
    for figure in (f"{rows['1024x768']['g_seconds_per_computed_megapixel']:.2f} s per computed megapixel",
                   f"{rows['1188x1188']['g_seconds_per_computed_megapixel']:.2f} on a whole 1188x1188",
                   f"{tiled['g_seconds_per_computed_megapixel']:.2f} on the twelve",
                   f"compute {tiled['computed_over_image']:.3f}x the image's",
                   f"took {tiled['outside_g_seconds']:.2f} s of {tiled['total_seconds']:.1f} s"):
        assert figure in text, figure


def _median_range(values: list[float], fmt: str) -> str:
    values = sorted(values)
    return f"{fmt.format(values[len(values) // 2])} ({fmt.format(values[0])}-{fmt.format(values[-1])})"


def table_source(results: str, key: str, count: int, page: str = "benchmarks.md") -> tuple[list[dict], str]:
    """The `key` list of docs/results/RESULTS (it must hold `count` entries, so a rerun that changed what
    was measured is noticed) and the text of docs/PAGE, whose table is written from it."""
    rows = json.loads((ROOT / "docs" / "results" / results).read_text(encoding="utf-8"))[key]
    assert len(rows) == count, results
    return rows, (ROOT / "docs" / page).read_text(encoding="utf-8")


def test_precision_pictures_table_says_what_its_json_holds():
    """performance.md's bf16-against-fp32 table: median (min-max) over the seeds of each figure."""
    runs, text = table_source("precision_quick.json", "runs", 12, "performance.md")
    for pair in ("montStMichel-vanGogh", "greatWall-bazille"):
        for variant in ("fp32", "bf16"):
            mine = [r for r in runs if r["pair"] == pair and r["variant"] == variant]
            assert len(mine) == 3
            row = (f"| {pair} | {variant} | {_median_range([r['sifid'] for r in mine], '{:.1f}')} | "
                   f"{_median_range([r['texture_distance'] for r in mine], '{:.3f}')} | "
                   f"{_median_range([r['ssim'] for r in mine], '{:.2f}')} | "
                   f"{_median_range([r['edge_correlation'] for r in mine], '{:.2f}')} |")
            assert row in text, row


def test_precision_speed_figures_say_what_their_json_holds():
    """benchmarks.md's precision table and performance.md's GPU times come from their JSON."""
    data = json.loads((ROOT / "docs" / "results" / "precision_floor.json").read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for preset, runs in data["by_precision"].items():
        fp32, bf16 = runs["fp32"], runs["bf16"]
        row = (f"| {preset} | {fp32['total']:.3f} | {bf16['total']:.3f} | {fp32['total'] / bf16['total']:.2f}x | "
               f"{fp32['fraction_of_floor']:.0%} | {bf16['fraction_of_floor']:.0%} |")
        if preset in data["official"]:
            paper = data["official"][preset]["sec_per_iter_median"]
            row += f" {paper:.2f} s | {paper / fp32['total']:.2f}x | {paper / bf16['total']:.2f}x |"
        assert row in text, row
    gpu = json.loads((ROOT / "docs" / "results" / "gpu_steps.json").read_text(encoding="utf-8"))["rows"]
    times = {(r["preset"], r["precision"]): r["seconds_per_step"] * 1000 for r in gpu}
    perf = " ".join((ROOT / "docs" / "performance.md").read_text(encoding="utf-8").split())
    for figure in (f"took {times['sincut', 'bf16']:.0f} ms a step against {times['sincut', 'fp32']:.0f} ms",
                   f"cut {times['cut', 'bf16']:.0f} / {times['cut', 'fp32']:.0f} ms",
                   f"fastcut {times['fastcut', 'bf16']:.0f} / {times['fastcut', 'fp32']:.0f} ms",
                   f"quick {times['quick', 'bf16']:.0f} / {times['quick', 'fp32']:.0f} ms"):
        assert figure in perf, figure


def test_step_profile_table_says_what_its_json_holds():
    rows, text = table_source("step_profile.json", "rows", 6)
    for r in rows:
        t = r["seconds"]
        ms = [t["sampler"], t["G forward"], t["D step without R1"], t["R1"], t["G+F step"], t["EMA"], t["total"],
              r["evaluation_share_s"], r["step_with_evaluations_s"]]
        row = (f"| {r['ngf']}x{r['ndf']} | {r['precision']} | " + " | ".join(f"{1000 * v:.1f}" for v in ms) +
               f" | {r['gflop']:.1f} | {r['cadence']['steps']:,} |")
        assert row in text, row


def test_minutes_load_table_says_what_its_json_holds():
    runs, text = table_source("minutes_load.json", "runs", 3)
    for r in runs:
        cells = f"| {r['wall_seconds']:.1f} | {r['deviation_percent']:.1f}% | {r['first_steps']:,} | {r['steps']:,} |"
        assert re.search(rf"^\| {r['condition']} \|.*{re.escape(cells)}$", text, re.M), cells
        assert abs(r["deviation_percent"]) <= 3.0  # what the README says of these runs


def test_ten_minute_screen_table_says_what_its_json_holds():
    data = json.loads((ROOT / "docs" / "results" / "ten_minute_screen.json").read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert {r["pair"] for r in data["runs"]} == {"montStMichel-vanGogh", "greatWall-bazille"}
    for run in data["runs"]:
        best = min(data["baselines"][run["pair"]][t]["sifid"] for t in ("reinhard", "pitie"))
        assert run["sifid_over_best_transfer"] == pytest.approx(run["sifid"] / best, abs=1e-3)
        cell = (f"{run['sifid_over_best_transfer']:.2f} / {run['texture_distance']:.3f} / {run['ssim']:.2f} / "
                f"{run['edge_correlation']:.2f} ({run['steps']:,})")
        assert cell in text, (run["variant"], run["pair"])


def test_rim_profile_table_says_what_its_json_holds():
    runs, text = table_source("rim_profile.json", "runs", 9, "recipes.md")
    for run in runs:
        last = run["steps"][-1]
        rim = last["rim"]
        cells = (f"({last['step']:,}) | {rim['red_0_4']:+.3f} | {rim['red_8_16']:+.3f} | {rim['red_32_48']:+.3f} | "
                 f"{rim['d_red_0_4']:+.2f} / {rim['d_red_8_16']:+.2f} | {last['corr_change_high_photo_high']:+.2f} | "
                 f"{last['result_high_rms_over_photo']:.2f} |")
        assert cells in text, run["name"]


def test_ten_minute_seeds_table_says_what_its_json_holds():
    """recipes.md's three seeds of the screen's best design: each run's cell and each pair's medians."""
    runs, text = table_source("ten_minute_seeds.json", "runs", 12, "recipes.md")
    keys = ("sifid_over_best_transfer", "texture_distance", "ssim", "edge_correlation")

    def cell(values: list[float]) -> str:
        return f"{values[0]:.2f} / {values[1]:.3f} / {values[2]:.2f} / {values[3]:.2f}"

    for pair in {run["pair"] for run in runs}:
        figures = [[run[k] for k in keys] for run in sorted(runs, key=lambda r: r["seed"]) if run["pair"] == pair]
        medians = [statistics.median(f[i] for f in figures) for i in range(len(keys))]
        row = " | ".join([*map(cell, figures), cell(medians)])
        assert re.search(rf"^\| {re.escape(pair)} \| [\d.]+ \| {re.escape(row)} \|", text, re.M), pair
