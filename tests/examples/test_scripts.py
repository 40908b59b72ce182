"""Short runs of every example script, checking what each one is meant to show.

Each test imports a script from examples/ and calls its ``main`` with few epochs, few
images (the embedded subset) and small networks; one subprocess per script checks that
``--help`` works from the command line.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def nonempty(path) -> bool:
    path = Path(path)
    return path.is_file() and path.stat().st_size > 0


def png(path) -> bool:
    """A non-empty PNG file (checked by its signature)."""
    return nonempty(path) and Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

SCRIPTS = ["blog_toy", "blog_mlp", "slides_techniques", "course_note", "lecture_logreg",
           "compare_rules", "race_2d", "natural_family"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    result = subprocess.run([sys.executable, str(EXAMPLES / f"{script}.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--out", "--quick"):
        assert option in result.stdout


def test_blog_toy_reproduces_the_blog(example, tmp_path):
    toy = example("blog_toy")
    result = toy.main(["--rules", "blog", "--iterations", "260", "--out", str(tmp_path)])
    counts, ridges = result["counts"], result["ridges"]
    # "SGD ... needs almost 200 iterations to reach zero. CM and NAG are able to reach 0
    # within 10 iterations. We can see a small ridge appear in Classical Momentum."
    assert 150 <= counts["SGD"] <= 250
    assert counts["CM"] <= 15 and counts["NAG"] <= 15
    assert ridges["CM"] > 5e-3 > ridges["NAG"]
    assert result["failures"] == []
    cm = np.asarray(result["curves"]["blog.MomentumUpdate(cm)"].values["loss"])
    low = counts["CM"] - 1
    assert cm[low:].max() > 2 * cm[low]  # the cost goes back up after reaching ~0
    assert png(tmp_path / "toy.png")
    assert "iterations_to_threshold" in (tmp_path / "iterations.md").read_text()
    assert nonempty(tmp_path / "curves.json") and nonempty(tmp_path / "iterations.csv")


def test_blog_toy_helpers(example):
    toy = example("blog_toy")
    costs = [1.0, 0.5, 0.001, 0.0001, 0.02, 0.01]
    assert toy.iterations_to(costs, 0.005) == 3
    assert toy.iterations_to(costs, 1e-9) is None
    assert toy.ridge(costs, 0.005) == pytest.approx(0.019)
    failing = toy.check_blog_finding({"SGD": 20, "CM": 30, "NAG": 5}, {"CM": 0.0}, 0.005)
    assert len(failing) == 3


def test_blog_mlp_trains_and_writes_everything(example, tmp_path):
    blog_mlp = example("blog_mlp")
    result = blog_mlp.main(["--quick", "--data", "embedded", "--rules", "blog.momentum",
                            "--epochs", "3", "--hidden", "32", "--n-train", "1000",
                            "--out", str(tmp_path), "--no-progress"])
    history = result["groups"]["rules"]["blog.momentum"]
    assert len(history) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["valid_loss"][-1] < history["valid_loss"][0]
    assert history.last("valid_accuracy") > 0.6  # ten classes: chance is 0.1
    assert history.meta["test_accuracy"] > 0.6
    assert png(tmp_path / "rules.png")
    for suffix in ("md", "csv", "json"):
        assert nonempty(tmp_path / f"rules.{suffix}")
    assert "| blog.momentum |" in (tmp_path / "rules.md").read_text()
    saved = json.loads((tmp_path / "rules" / "blog.momentum.json").read_text())
    assert len(saved["epochs"]) == 3 and saved["meta"]["rule"] == "blog.momentum"
    assert nonempty(tmp_path / "rules" / "blog.momentum.csv")


def test_blog_mlp_modern_rules_train(example, tmp_path):
    """Weight decay on the weights only, and Adam on a warm-up + cosine schedule."""
    blog_mlp = example("blog_mlp")
    result = blog_mlp.main(["--quick", "--data", "embedded", "--rules", "modern", "--epochs",
                            "2", "--hidden", "32", "--n-train", "1000", "--out", str(tmp_path),
                            "--no-progress"])
    for history in result["groups"]["modern"].values():
        assert history["train_loss"][-1] < history["train_loss"][0]
        assert history.last("valid_accuracy") > 0.3  # ten classes: chance is 0.1; 20 steps


def test_blog_mlp_rule_groups(example):
    blog_mlp = example("blog_mlp")
    assert blog_mlp.selected_groups("blog") == {"blog": ["blog.sgd", "blog.momentum", "blog.nag"]}
    assert list(blog_mlp.selected_groups("all")) == ["blog", "book", "modern"]
    assert blog_mlp.learning_rate_for("modern.adam_warmup_cosine", None) == 1e-3
    assert blog_mlp.learning_rate_for("book.adadelta", None) == 1.0
    assert blog_mlp.learning_rate_for("blog.nag", None) == 0.01
    with pytest.raises(SystemExit):
        blog_mlp.selected_groups("no-such-rule")


def test_compare_rules_writes_the_results(example, tmp_path):
    compare = example("compare_rules")
    result = compare.main(["--quick", "--data", "embedded", "--rules", "adam,book.nag",
                           "--epochs", "2", "--hidden", "32", "--out", str(tmp_path),
                           "--no-progress"])
    rows = {r["rule"]: r for r in result["rows"]}
    assert rows["adam"]["group"] == "library" and rows["book.nag"]["group"] == "book"
    for name, history in result["histories"].items():
        assert history["train_loss"][-1] < history["train_loss"][0], name
        assert rows[name]["valid_accuracy"] > 0.5, name
    for suffix in ("md", "csv", "json"):
        assert nonempty(tmp_path / f"comparison.{suffix}")
    for figure in ("library.png", "texts.png", "summary.png"):
        assert png(tmp_path / figure)
    table = json.loads((tmp_path / "comparison.json").read_text())
    assert [r["rule"] for r in table] == ["adam", "book.nag"]


def test_compare_rules_covers_every_form(example):
    compare = example("compare_rules")
    from symopt import RULES
    from symopt.lab.forms import FORMS

    names = compare.selected("all")
    assert set(RULES) <= set(names)
    assert {n for n in FORMS if n.startswith(("blog.", "book."))
            and "MomentumUpdate" not in n} <= set(names)
    rates = compare.learning_rates(names, ["sgd=0.1"])
    assert rates["sgd"] == 0.1 and rates["adadelta"] == 1.0 and rates["adam"] == 1e-3


def test_slides_techniques(example, tmp_path):
    slides = example("slides_techniques")
    result = slides.main(["--quick", "--data", "embedded", "--epochs", "2",
                          "--only", "max-norm,clip by norm,accumulation", "--out", str(tmp_path),
                          "--no-progress"])
    small = {r["rule"]: r for r in result["results"]["small"]}
    assert small["gradient descent"]["valid_accuracy"] > 0.8  # three blobs, chance 1/3
    assert small["+ l1 (0.001)"]["sum_abs_weights"] < small["gradient descent"]["sum_abs_weights"]
    max_norm, accumulated = result["results"]["overfitting"]
    assert max_norm["max_unit_norm"] <= 1.0 + 1e-4
    assert accumulated["rule"] == "accumulation (4 x 100)"
    assert accumulated["valid_accuracy"] > 0.2  # ten classes; a quarter of the steps
    [clipped] = result["results"]["gradients"]
    assert clipped["max_update_norm"] <= clipped["learning_rate"] * 1.0 * (1 + 1e-4)
    assert clipped["max_grad_norm"] > 1.0  # the clipping did something
    for stem in ("small_network", "overfitting", "gradients"):
        assert png(tmp_path / f"{stem}.png")
        assert nonempty(tmp_path / f"{stem}.md")


def test_course_note(example, tmp_path):
    course = example("course_note")
    x, y = course.make_moons(200, seed=1)
    assert x.shape == (200, 2) and set(np.unique(y)) == {0, 1}
    result = course.main(["--epochs", "150", "--n", "300", "--parts", "optimizers,normalisation",
                          "--out", str(tmp_path)])
    rows = {(r["part"], r["rule"]): r for r in result["rows"]}
    adam = rows[("optimizers", "Adam")]
    gd = rows[("optimizers", "mini-batch GD")]
    assert adam["train_loss"] < gd["train_loss"]  # the note: Adam clearly does better
    assert adam["valid_accuracy"] > 0.75
    raw = rows[("normalisation", "raw units")]
    normalised = rows[("normalisation", "standardised (training mean/std)")]
    assert normalised["train_loss"] < raw["train_loss"]
    for figure in ("optimizers.png", "optimizers_steps.png", "normalisation.png"):
        assert png(tmp_path / figure)
    assert nonempty(tmp_path / "results.md")


def test_course_note_decay(example, tmp_path):
    course = example("course_note")
    result = course.main(["--epochs", "50", "--n", "300", "--parts", "decay",
                          "--out", str(tmp_path)])
    rows = {r["rule"]: r for r in result["rows"]}
    assert rows["0.95^epoch x 0.5"]["final_learning_rate"] == pytest.approx(0.5 * 0.95 ** 9)
    assert rows["0.5 / (1 + 0.05 epoch)"]["final_learning_rate"] == pytest.approx(0.5 / 1.45)
    assert png(tmp_path / "decay.png")


def test_lecture_logreg(example, tmp_path, monkeypatch):
    lecture = example("lecture_logreg")
    monkeypatch.setattr(lecture, "MINIBATCH_RULES", {"Adam": lecture.MINIBATCH_RULES["Adam"]})
    monkeypatch.setattr(lecture, "FULLBATCH_RULES",
                        {"Rprop (full batch)": lecture.FULLBATCH_RULES["Rprop (full batch)"]})
    result = lecture.main(["--quick", "--data", "embedded", "--epochs", "2", "--iterations", "15",
                           "--out", str(tmp_path), "--no-progress"])
    adam = result["runs"]["minibatch"]["Adam"]
    assert adam.last("valid_accuracy") > 0.6
    rprop = result["runs"]["fullbatch"]["Rprop (full batch)"]
    assert len(rprop) == 15  # one step per epoch
    loss = rprop["train_loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert rprop.last("valid_accuracy") > 0.5
    for figure in ("minibatch.png", "fullbatch.png"):
        assert png(tmp_path / figure)
    assert nonempty(tmp_path / "results.md")


def test_race_2d_paths_are_the_rules_steps(example, tmp_path):
    race = example("race_2d")
    result = race.main(["--surfaces", "valley,saddle", "--rules", "sgd,adam", "--steps", "30",
                        "--frames", "3", "--out", str(tmp_path)])
    # SGD's path on the valley is gradient descent, step by step
    valley = race.SURFACES["valley"]
    c, s = np.cos(race.ANGLE), np.sin(race.ANGLE)
    rotation = np.array([[c, s], [-s, c]])
    hessian = rotation.T @ np.diag([0.1, 10.0]) @ rotation
    point, expected = np.array(valley.start), [np.array(valley.start)]
    for _ in range(30):
        point = point - valley.learning_rates["gradient"] * hessian @ point
        expected.append(point)
    path = result["results"]["valley"]["sgd"]
    np.testing.assert_allclose(np.c_[path["x"], path["y"]], expected, rtol=1e-12, atol=1e-14)
    # on the saddle SGD's y grows by (1 + 2 lr) a step; Adam's steps are ~lr whatever the
    # gradient's size, so it leaves the saddle far sooner
    saddle = result["results"]["saddle"]
    assert saddle["sgd"]["y"][-1] == pytest.approx(1e-3 * 1.02 ** 30, rel=1e-12)
    assert saddle["adam"]["y"][-1] > 0.25 > 10 * saddle["sgd"]["y"][-1]
    rows = {(r["surface"], r["rule"]): r for r in result["rows"]}
    assert rows[("valley", "sgd")]["final_distance"] == pytest.approx(np.hypot(*expected[-1]))
    assert png(tmp_path / "race.png")
    assert (tmp_path / "race.gif").read_bytes()[:6] == b"GIF89a"
    assert nonempty(tmp_path / "race.md") and nonempty(tmp_path / "paths.json")


def test_natural_family_mlp_part(example, tmp_path):
    family = example("natural_family")
    result = family.main(["--quick", "--parts", "mlp", "--methods", "adam,kfac,prong (sgd)",
                          "--steps", "40", "--eval-every", "20", "--out", str(tmp_path)])
    runs = result["mlp"]["results"]
    for name, run in runs.items():
        costs = run["curve"]["cost"]
        assert len(costs) == 3 and costs[-1] < costs[0], name
    assert runs["prong (sgd)"]["reparametrisations"] == 2  # T = 20: at steps 0 and 20
    rows = {r["method"]: r for r in result["mlp"]["rows"]}
    assert rows["adam"]["per_step_vs_adam"] == pytest.approx(1.0)
    assert rows["kfac"]["ms_per_step"] > 0
    assert png(tmp_path / "mlp.png") and nonempty(tmp_path / "mlp.md")
    assert nonempty(tmp_path / "mlp_curves.json")
