"""symopt.lab.history (JSON, CSV, figures) and symopt.lab.progress."""

import io
import math

import numpy as np
import pytest

from symopt.lab.history import History, line_styles, plot_histories
from symopt.lab.progress import Progress

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def history():
    h = History(meta={"rule": "sgd", "learning_rate": 0.1, "note": None})
    for epoch in range(1, 4):
        h.log_epoch(epoch=epoch, train_loss=1.0 / epoch,
                    valid_accuracy=np.float32(0.5 + 0.1 * epoch), time=0.1 * epoch)
        for k in range(2):
            h.log_step(epoch=epoch, step=2 * epoch + k - 1, loss=np.float64(1.0 / (epoch + k)),
                       nonfinite=np.int64(0))
    h.log_epoch(epoch=4, train_loss=math.nan, grad_norm=math.inf)
    return h


def test_columns_and_missing_values(history):
    assert history.keys() == ["epoch", "train_loss", "valid_accuracy", "time", "grad_norm"]
    np.testing.assert_allclose(history["train_loss"][:3], [1.0, 0.5, 1 / 3])
    assert np.isnan(history["valid_accuracy"][3]) and history.last("valid_accuracy") == \
        pytest.approx(0.8)
    assert history.column("loss", "steps").shape == (6,)
    assert isinstance(history.steps[0]["nonfinite"], int)
    with pytest.raises(KeyError, match="no metric 'accuracy'"):
        history["accuracy"]
    assert len(history) == 4


def test_json_round_trip(history, tmp_path):
    path = history.to_json(tmp_path / "run.json")
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    back = History.from_json(path)
    assert back.meta == history.meta and back.steps == history.steps
    assert back.epochs[:3] == history.epochs[:3]
    assert math.isnan(back.epochs[3]["train_loss"]) and math.isnan(back.epochs[3]["grad_norm"])


def test_csv_round_trip(history, tmp_path):
    epochs = history.to_csv(tmp_path / "epochs.csv")
    steps = history.to_csv(tmp_path / "steps.csv", table="steps")
    assert epochs.read_text().splitlines()[0] == "epoch,train_loss,valid_accuracy,time,grad_norm"
    back = History.from_csv(epochs, steps, meta=history.meta)
    assert back.steps == history.steps  # exact floats, ints stay ints
    assert back.epochs[:3] == history.epochs[:3]  # missing cells stay missing
    assert math.isnan(back.epochs[3]["train_loss"]) and back.epochs[3]["grad_norm"] == math.inf
    assert back.meta == history.meta


def test_values_must_be_numbers():
    with pytest.raises(TypeError, match="numbers or strings"):
        History().log_epoch(epoch=1, loss=[1.0])


def test_plot_writes_a_png(history, tmp_path):
    path = tmp_path / "history.png"
    fig = history.plot(path)
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 5000
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        "train_loss", "valid_accuracy", "grad_norm"]


def test_plot_histories_grid_one_line_per_run(tmp_path):
    runs = {}
    for name, scale in [("sgd", 1.0), ("momentum", 0.5), ("nag", 0.4)]:
        h = History()
        for epoch in range(1, 6):
            h.log_epoch(epoch=epoch, train_loss=scale / epoch, valid_loss=scale / epoch + 0.1,
                        train_accuracy=1 - scale / epoch, valid_accuracy=0.9 - scale / epoch)
        runs[name] = h
    metrics = ["train_loss", "valid_loss", "train_accuracy", "valid_accuracy", "time"]
    path = tmp_path / "grid.png"
    fig = plot_histories(runs, metrics, path, ncols=2, logy=["train_loss"], title="rules")
    assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 10_000
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [len(ax.lines) for ax in visible] == [3, 3, 3, 3, 0]  # no run has "time"
    assert visible[0].get_yscale() == "log"
    assert [line.get_label() for line in visible[1].lines] == ["sgd", "momentum", "nag"]
    np.testing.assert_allclose(visible[0].lines[2].get_ydata(), 0.4 / np.arange(1, 6))
    with pytest.raises(ValueError, match="at least one metric"):
        plot_histories(runs, [])


def test_line_styles_are_distinct_for_any_number_of_runs():
    for n in (1, 10, 14, 24, 100, 280):
        styles = line_styles(n)
        keys = [(s["color"], s["linestyle"], s["marker"]) for s in styles]
        assert len(set(keys)) == n, n
        # neighbours differ in colour, and no colour is used twice with the same dashes
        assert all(a[0] != b[0] for a, b in zip(keys, keys[1:]))
        if n <= 40:
            assert len({k[:2] for k in keys}) == n


def test_plot_histories_styles_labels_and_legend(tmp_path):
    runs = {}
    for i in range(14):
        h = History()
        for epoch in range(1, 4):
            h.log_epoch(epoch=epoch, train_loss=10.0 ** -(epoch * (1 + i / 10)),
                        valid_accuracy=0.1 * epoch)
        runs[f"rule{i}"] = h
    runs["twin"] = History.from_dict(runs["rule3"].to_dict())
    near = History.from_dict(runs["rule5"].to_dict())
    for record in near.epochs:
        record["train_loss"] *= 1.001  # a tenth of a percent: drawn on top of rule5
    runs["near"] = near
    fig = plot_histories(runs, ["train_loss", "valid_accuracy"], tmp_path / "f.png",
                         logy="auto")
    loss, accuracy = fig.axes
    styles = {(line.get_color(), line.get_linestyle(), line.get_marker())
              for line in loss.lines}
    assert len(styles) == 16 and len(loss.lines) == 16
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"  # "auto"
    assert loss.get_ylabel() == "training loss (mean cross-entropy, nats)"
    assert accuracy.get_ylabel() == "validation accuracy (fraction correct)"
    assert loss.get_xlabel() == "epoch"
    assert loss.get_legend() is None and len(fig.legends) == 1  # one legend, for the figure
    [legend] = fig.legends
    texts = [text.get_text() for text in legend.get_texts()]
    assert texts[:2] == ["rule0", "rule1"] and texts[-2:] == ["twin (= rule3)", "near (≈ rule5)"]
    assert "(" not in " ".join(texts[:-2])  # rule i and rule i+1 differ by far more
    fig.canvas.draw()  # the legend lies right of every subplot, covering none
    right_of_plots = max(ax.get_window_extent().x1 for ax in fig.axes)
    assert legend.get_window_extent().x0 >= right_of_plots


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_draws_a_tqdm_bar_on_a_terminal():
    pytest.importorskip("tqdm")
    out = _Terminal()
    with Progress(10, description="epoch 1/2", stream=out, min_interval=0.0) as bar:
        assert bar.mode == "tqdm"
        for _ in range(10):
            bar.update(loss=0.123456)
        bar.end_epoch(valid_accuracy=0.5)
    text = out.getvalue()
    last = text.strip().split("\r")[-1]
    assert last.startswith("epoch 1/2: 100%") and "10/10" in last, last
    assert "loss=0.1235" in last and "valid_accuracy=0.5" in last, last


def test_progress_writes_one_line_per_epoch_off_a_terminal():
    out = io.StringIO()  # a log file: no carriage returns, one line per epoch
    with Progress(6, description="training", stream=out) as bar:
        assert bar.mode == "lines"
        for epoch in (1, 2, 3):
            bar.set_description(f"epoch {epoch}/3")
            bar.update(2, loss=1.0 / epoch)
            bar.end_epoch(valid_accuracy=0.25 * epoch)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 3
    assert lines[0].startswith("epoch 1/3: 2/6 steps (33%), elapsed 00:00, ETA 00:00")
    assert lines[0].endswith(", valid_accuracy=0.25")  # the epoch's values
    assert lines[2].startswith("epoch 3/3: 6/6 steps (100%)")
    assert lines[2].endswith(", valid_accuracy=0.75")


def test_progress_eta_follows_the_pace(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("symopt.lab.progress.time.monotonic", lambda: now[0])
    bar = Progress(10, stream=io.StringIO(), mode="lines")
    assert math.isnan(bar.eta()) and "ETA --:--" in bar.render()
    bar.update(4)
    now[0] += 80.0  # 4 steps took 80 s: 6 more take 120 s
    assert bar.eta() == 120.0
    assert "4/10 steps (40%), elapsed 01:20, ETA 02:00" in bar.render()


def test_progress_is_silent_when_off_and_refuses_unknown_modes():
    out = _Terminal()
    for bar in (Progress(5, stream=out, mode="none"), Progress(5, stream=out, enabled=False)):
        with bar:
            bar.update(5)
            bar.end_epoch(loss=1.0)
        assert not bar.enabled
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="mode must be one of"):
        Progress(5, mode="bar")


def test_progress_falls_back_to_lines_without_tqdm(monkeypatch):
    monkeypatch.setattr("symopt.lab.progress._tqdm_class", lambda: None)
    out = _Terminal()
    with Progress(2, stream=out, mode="tqdm") as bar:
        bar.update(2, loss=0.5)
    assert bar.mode == "lines"
    assert out.getvalue().startswith("2/2 steps (100%), elapsed")


def test_train_reports_each_epoch_in_a_log(capsys):
    import pytensor
    import pytensor.tensor as pt

    import symopt
    from symopt.lab import training

    w = pytensor.shared(np.zeros(2), name="w")
    x = pt.matrix("x")
    loss = ((x @ w - 1.0) ** 2).mean()
    step = training.compile_train_step([x], loss, [w], symopt.sgd(learning_rate=0.1))
    data = np.ones((40, 2))
    training.train(step, (data,), epochs=3, batch_size=10, progress="lines")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "12/12 steps (100%)" in lines[-1] and "train_loss=" in lines[-1]


def test_non_finite_metadata_is_written_as_null(tmp_path):
    import json
    import math

    from symopt.lab.history import History

    history = History(meta={"test_accuracy": math.nan, "rule": "sgd"})
    history.log_epoch(loss=1.0)
    history.to_json(tmp_path / "h.json")
    assert json.loads((tmp_path / "h.json").read_text())["meta"] == {
        "test_accuracy": None, "rule": "sgd"}


def test_progress_draws_a_bar_in_jupyter(monkeypatch):
    """In a Jupyter kernel stderr is no terminal, yet a bar renders (tqdm.auto's widget)."""
    import sys
    import types

    pytest.importorskip("tqdm")
    shell = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: shell))
    made = []
    monkeypatch.setattr("symopt.lab.progress._tqdm_class",
                        lambda: lambda **kw: made.append(kw) or _FakeBar())
    with Progress(3, stream=io.StringIO()) as bar:
        bar.update(3, loss=0.5)
    assert bar.mode == "tqdm" and made[0]["total"] == 3


class _FakeBar:
    def set_postfix(self, *args, **kwargs):
        pass

    def update(self, n):
        pass

    def set_description_str(self, text, refresh=False):
        pass

    def close(self):
        pass
