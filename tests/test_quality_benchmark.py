"""benchmarks/quality.py's bookkeeping: recipe arguments, pairs, and the table's medians and ratios."""

from __future__ import annotations

import pytest

from benchmarks import quality as Q
from benchmarks.harness.charts import band_of
from benchmarks.harness.pairs import ALL_PAIRS, PAIRS


def test_recipes_from_presets_names_and_json() -> None:
    recipes = Q.parse_recipes("quick,sincut", ['quick-pitie=--preset quick --colour-init pitie',
                                               '{"wide": "--preset quick --ngf 16"}', "quick=--lr 0.001"])
    assert recipes == {"quick": ["--preset", "quick", "--lr", "0.001"], "sincut": ["--preset", "sincut"],
                       "quick-pitie": ["--preset", "quick", "--colour-init", "pitie"],
                       "wide": ["--preset", "quick", "--ngf", "16"]}


@pytest.mark.parametrize("names, extra", [("nopreset", []), ("quick", ["quick=--seed 3"]),
                                          ("quick", ["{not json"]), ("quick", ["no-equals-sign"])])
def test_bad_recipes_exit_2(names: str, extra: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        Q.parse_recipes(names, extra)
    assert e.value.code == 2


def test_all_pairs_are_ten_distinct_combinations() -> None:
    assert len(ALL_PAIRS) == 10 and len(set(ALL_PAIRS.values())) == 10
    assert list(ALL_PAIRS)[:4] == list(PAIRS)


def _figures(sifid: float, texture: float, ssim: float) -> dict:
    return {"sifid": sifid, "texture_distance": texture, "ssim": ssim, "edge_correlation": 0.9,
            "style_distance": 0.3}


def test_table_gives_median_range_and_ratio_to_the_better_transfer() -> None:
    base = {"photo": _figures(120.0, 0.30, 1.0), "reinhard": _figures(80.0, 0.29, 0.98),
            "pitie": _figures(50.0, 0.20, 0.80)}
    runs = [{"recipe": "quick", "pair": "p", "seed": s, "steps": steps,
             "evaluations": [{"minutes": 1.0, "step": 1, **_figures(90.0, 0.3, 0.9)},
                             {"minutes": 2.0, "step": 2, **_figures(sifid, 0.25, 0.7)}]}
            for s, (steps, sifid) in enumerate([(100, 40.0), (110, 60.0), (90, 45.0)])]
    results = {"minutes": 2, "seeds": [0, 1, 2], "recipes": {"quick": ["--preset", "quick"]},
               "baselines": {"p": base}, "runs": runs}
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:-1]]
            for line in Q.markdown_table(results).splitlines() if line.startswith("| p ")}
    # Last evaluations' SIFID 40, 60, 45: median 45; over the better transfer's 50 (Pitie): 0.9 (0.8-1.2).
    assert rows["**quick**"][:3] == ["3", "100 (90-110)", "45.0 (40.0-60.0)"]
    assert rows["**quick**"][3] == "0.90 (0.80-1.20)"
    assert rows["photo"][3] == "2.40" and rows["reinhard"][3] == "1.60" and rows["pitie"][3] == "1.00"
    xs, mid, lo, hi = band_of(runs, "sifid", 50.0)
    assert xs == [1.0, 2.0] and mid == [1.8, 0.9] and lo == [1.8, 0.8] and hi == [1.8, 1.2]


def test_seeds_of_gives_one_recipe_other_seeds_and_the_table_says_so() -> None:
    recipes = Q.parse_recipes("quick,sincut", [])
    seeds = Q.parse_seeds_of(["sincut=0"], recipes, [0, 1, 2])
    assert seeds == {"quick": [0, 1, 2], "sincut": [0]}
    assert Q.seeds_text({"seeds": [0, 1, 2], "recipe_seeds": seeds}) == "quick 0,1,2; sincut 0"
    assert Q.seeds_text({"seeds": [0, 1, 2], "recipe_seeds": {"quick": [0, 1, 2]}}) == "0,1,2"
    assert Q.seeds_text({"seeds": [4]}) == "4"  # a quality.json from before --seeds-of
    for bad in (["cut=0"], ["sincut"], ["sincut=0,0"]):
        with pytest.raises(SystemExit) as e:
            Q.parse_seeds_of(bad, recipes, [0])
        assert e.value.code == 2
