r"""Every rule of symopt racing on 2-D surfaces, as in Alec Radford's pictures.

Misra's lecture shows Radford's animations of the update rules on two-dimensional
surfaces. This script runs every rule of :data:`symopt.RULES` (the library's forms of
:data:`symopt.lab.forms.FORMS`) from the same start on four surfaces:

- **Beale's function** :math:`(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2`,
  minimum 0 at :math:`(3, 0.5)`, from :math:`(1, 1.5)`: flat plateaus and steep walls;
- **a saddle point** :math:`x^2 - y^2` from :math:`(-1, 10^{-3})`: the rule must leave the
  saddle along :math:`y`, where the gradient starts a thousand times smaller than along
  :math:`x` (the surface has no minimum; the race is how fast the rule escapes);
- **a long narrow valley**: the quadratic :math:`\tfrac12 (0.1\, u^2 + 10\, v^2)` in axes
  :math:`(u, v)` turned 30 degrees from :math:`(x, y)` (condition number 100, not aligned
  with the coordinates that the per-coordinate rules scale), from :math:`(-4, 2)`;
- **Rosenbrock's function** :math:`(1 - x)^2 + 100 (y - x^2)^2`, minimum at :math:`(1, 1)`,
  from :math:`(-1.2, 1)`.

Each rule runs with its kind's learning rate on that surface (plain gradient rules, the
adaptive ones, and AdaDelta's unit-free 1.0; the table in ``race.md`` gives every value),
its other hyperparameters at their defaults, in float64, all rules of a surface compiled
together (:class:`symopt.lab.problems.FormsRun`). Shampoo and SOAP see a vector here, for
which they are AdamW (their fallback for shapes that are not matrices).

Outputs in ``--out``: ``race.png`` (contours with every rule's path, one panel per
surface), ``race.gif`` (the race, animated), ``race.md`` / ``.csv`` / ``.json`` (per
surface and rule: the final cost, the distance to the minimum, the steps to come within
``--tolerance`` of it; for the saddle, how far the rule has moved along :math:`y`),
``paths.json`` (every path).

    python examples/race_2d.py --out docs/results/race_2d
    python examples/race_2d.py --quick --out /tmp/race      # three rules, a few seconds
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from symopt.lab import kit

ANGLE = math.radians(30.0)


def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2 + (2.625 - x + x * y ** 3) ** 2


def saddle(x, y):
    return x ** 2 - y ** 2


def valley(x, y):
    u = math.cos(ANGLE) * x + math.sin(ANGLE) * y
    v = -math.sin(ANGLE) * x + math.cos(ANGLE) * y
    return 0.5 * (0.1 * u ** 2 + 10.0 * v ** 2)


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


@dataclass
class Surface:
    """A 2-D cost written once for NumPy and PyTensor (arithmetic only), its start, its
    minimum (None for the saddle), the plotted window, and the race's settings."""

    name: str
    cost: callable
    start: tuple
    minimum: tuple | None
    window: tuple  # (x_low, x_high, y_low, y_high)
    steps: int
    learning_rates: dict = field(default_factory=dict)  # by kind: gradient, adaptive, unit
    log_levels: bool = True


SURFACES = {
    "beale": Surface("Beale's function", beale, (1.0, 1.5), (3.0, 0.5), (-0.5, 4.0, -1.0, 2.0),
                     steps=400, learning_rates={"gradient": 1e-3, "adaptive": 0.05, "unit": 1.0}),
    "saddle": Surface("saddle point", saddle, (-1.0, 1e-3), None, (-1.5, 1.5, -1.5, 1.5),
                      steps=150, learning_rates={"gradient": 0.01, "adaptive": 0.01, "unit": 1.0},
                      log_levels=False),
    "valley": Surface("long narrow valley", valley, (-4.0, 2.0), (0.0, 0.0),
                      (-5.0, 5.0, -3.0, 3.0), steps=300,
                      learning_rates={"gradient": 0.09, "adaptive": 0.05, "unit": 1.0}),
    "rosenbrock": Surface("Rosenbrock's function", rosenbrock, (-1.2, 1.0), (1.0, 1.0),
                          (-2.0, 2.0, -1.0, 3.0), steps=500,
                          learning_rates={"gradient": 1e-3, "adaptive": 0.02, "unit": 1.0}),
}

QUICK_RULES = ["sgd", "momentum", "adam"]


def library_rules() -> list[str]:
    """The library's rules, in the order of :data:`symopt.lab.forms.FORMS`."""
    from symopt.lab.forms import FORMS

    return [name for name, form in FORMS.items() if form.source == "symopt"]


def problem_of(surface: Surface):
    """The surface as a :class:`symopt.lab.problems.Problem` whose metrics are the point."""
    from symopt.lab.problems import Problem

    def cost(ps, _):
        return surface.cost(ps[0][0], ps[0][1])

    return Problem(surface.name, "float64", [("xy", np.array(surface.start, dtype="float64"))],
                   cost, metrics=lambda ps, _: {"x": ps[0][0], "y": ps[0][1]},
                   steps=surface.steps, learning_rates=surface.learning_rates)


def race(surface: Surface, rules: list[str], steps: int, backend: str = "numba") -> dict:
    """Every rule's path on ``surface``: ``{rule: {"x", "y", "loss"}}``, ``steps + 1``
    points each (the start, then after every step)."""
    from symopt.lab.problems import FormsRun

    run = FormsRun(problem_of(surface), rules, backend=backend)
    curves = run.run(steps=steps + 1)  # the metrics are taken before each step
    return {name: {k: list(curves[name].values[k]) for k in ("x", "y", "loss")}
            | {"learning_rate": curves[name].metadata["hyperparameters"]["learning_rate"]}
            for name in rules}


def steps_to(path: dict, minimum, tolerance: float):
    """The first step after which the point is within ``tolerance`` of ``minimum``."""
    distance = np.hypot(np.asarray(path["x"]) - minimum[0], np.asarray(path["y"]) - minimum[1])
    close = np.flatnonzero(distance < tolerance)
    return int(close[0]) if close.size else None


def summary(key: str, surface: Surface, paths: dict, tolerance: float) -> list[dict]:
    rows = []
    for name, path in paths.items():
        x, y, loss = path["x"][-1], path["y"][-1], path["loss"][-1]
        row = {"surface": key, "rule": name, "learning_rate": path["learning_rate"],
               "final_cost": loss}
        if surface.minimum is None:
            row["final_abs_y"] = abs(y)
            row["steps_to_abs_y_1"] = next((i for i, v in enumerate(path["y"]) if abs(v) > 1),
                                           None)
        else:
            row["final_distance"] = float(np.hypot(x - surface.minimum[0],
                                                   y - surface.minimum[1]))
            row[f"steps_to_{tolerance:g}"] = steps_to(path, surface.minimum, tolerance)
        rows.append(row)
    return rows


def _contours(ax, surface: Surface):
    x0, x1, y0, y1 = surface.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    z = surface.cost(gx, gy)
    if surface.log_levels:
        levels = np.logspace(np.log10(max(z.min(), 1e-3)), np.log10(z.max()), 25)
        ax.contour(gx, gy, z, levels=levels, colors="0.75", linewidths=0.6)
    else:
        ax.contour(gx, gy, z, levels=25, colors="0.75", linewidths=0.6)
    if surface.minimum is not None:
        ax.plot(*surface.minimum, marker="*", ms=12, color="k", zorder=5)
    ax.plot(*surface.start, marker="o", ms=5, color="k", zorder=5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(surface.name)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _figure(surfaces: dict):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(surfaces)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(6.0 * cols + 2.2, 4.8 * rows), dpi=100)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, surface in zip(axes, surfaces.values()):
        _contours(ax, surface)
    return fig, axes[:n]


def _colours(rules):
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {name: cmap(i % 20) for i, name in enumerate(rules)}


def plot(surfaces: dict, results: dict, rules: list[str], path: Path):
    """Contours and every rule's whole path, one panel per surface."""
    fig, axes = _figure(surfaces)
    colours = _colours(rules)
    for ax, key in zip(axes, surfaces):
        for name in rules:
            p = results[key][name]
            ax.plot(p["x"], p["y"], color=colours[name], lw=1.3, label=name)
            ax.plot(p["x"][-1], p["y"][-1], "o", color=colours[name], ms=3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize="small")
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    fig.savefig(path)


def animate(surfaces: dict, results: dict, rules: list[str], path: Path, frames: int = 60,
            dpi: int = 60):
    """The race as an animated GIF: each rule a dot with its trail, all surfaces at once
    (frame ``k`` shows step ``k / frames`` of each surface's race)."""
    from PIL import Image

    fig, axes = _figure(surfaces)
    fig.set_dpi(dpi)
    colours = _colours(rules)
    artists = []
    for ax, key in zip(axes, surfaces):
        for name in rules:
            trail, = ax.plot([], [], color=colours[name], lw=1.3, label=name)
            dot, = ax.plot([], [], "o", color=colours[name], ms=5)
            artists.append((key, name, trail, dot))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize="small")
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    images = []
    for k in range(1, frames + 1):
        for key, name, trail, dot in artists:
            p = results[key][name]
            n = max(1, round(k / frames * (len(p["x"]) - 1)))
            trail.set_data(p["x"][:n + 1], p["y"][:n + 1])
            dot.set_data([p["x"][n]], [p["y"][n]])
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3].copy()).quantize(colors=128))
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0], out="results/race_2d")
    parser.add_argument("--surfaces", default=",".join(SURFACES),
                        help=f"comma-separated, of {', '.join(SURFACES)}")
    parser.add_argument("--rules", default=None,
                        help="comma-separated rule names (default every rule; "
                             f"{','.join(QUICK_RULES)} with --quick)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps on every surface (default: each surface's own)")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="the distance to the minimum counted as arrived")
    parser.add_argument("--frames", type=int, default=60, help="frames of the GIF")
    parser.add_argument("--no-gif", action="store_true")
    parser.add_argument("--backend", default="numba", choices=["numba", "c", "default"])
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Race the rules; return the paths by surface and rule, and the table's rows."""
    args = parse_args(argv)
    keys = [k.strip() for k in args.surfaces.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SURFACES]
    if unknown:
        raise SystemExit(f"unknown surface(s) {unknown}; choose from {list(SURFACES)}")
    everything = library_rules()
    rules = (args.rules.split(",") if args.rules else
             QUICK_RULES if args.quick else everything)
    unknown = [r for r in rules if r not in everything]
    if unknown:
        raise SystemExit(f"unknown rule(s) {unknown}; choose from {everything}")
    surfaces = {k: SURFACES[k] for k in keys}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, rows = {}, []
    for key, surface in surfaces.items():
        steps = args.steps or (min(surface.steps, 100) if args.quick else surface.steps)
        print(f"{surface.name}: {len(rules)} rules, {steps} steps", flush=True)
        results[key] = race(surface, rules, steps, args.backend)
        rows += summary(key, surface, results[key], args.tolerance)
    plot(surfaces, results, rules, out / "race.png")
    if not args.no_gif:
        animate(surfaces, results, rules, out / "race.gif", frames=args.frames)
    (out / "paths.json").write_text(json.dumps(
        {k: {name: {c: p[c] for c in ("x", "y")} for name, p in v.items()}
         for k, v in results.items()}) + "\n")
    notes = ("float64, every rule from the same start with its kind's learning rate on that "
             "surface and its other hyperparameters at their defaults. final_distance: to the "
             f"minimum after the last step; steps_to_{args.tolerance:g}: the first step within "
             f"{args.tolerance:g} of it. Saddle: final_abs_y, how far the rule left the saddle "
             "along y (from 0.001), and steps_to_abs_y_1, when it passed |y| = 1.")
    kit.write_rows(rows, out / "race", title="Every rule on four 2-D surfaces", notes=notes)
    print(kit.markdown_table(rows))
    return {"results": results, "rows": rows, "rules": rules, "out": out}


if __name__ == "__main__":
    with kit.limit_threads(1):
        main()
