"""``playground landscape``: the loss over two parameters, with the path of the updates.

    playground landscape five-points --steps 100          # the picture, levels and path
    playground landscape noisy-line --steps 10 --json     # grid, levels, path as JSON
    playground landscape xor --steps 50 --mode pca        # a slice along the path's PCs
    playground landscape five-points --steps 20 --race 50 # GD, momentum and Adam from there

Trains ``--steps`` train steps (the session's own), then evaluates the training loss on
a grid over the plane asked for (``--mode params``: two parameter entries, ``--x`` and
``--y``; ``random``: two random filter-normalised directions; ``pca``: the path's first
two principal directions) and prints what the landscape screen draws: the contour
picture, the log-spaced levels, the path (decimated, its turning points kept), the
current point, the least-squares optimum and the race. ``--json`` prints the grid too.
Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_USAGE = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``landscape`` on the main parser's subparsers."""
    p = subparsers.add_parser(
        "landscape",
        help="the loss over two parameters with the optimizer's path, headless",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("preset", help="preset name or .toml file")
    p.add_argument("--steps", type=int, default=0, metavar="N", help="train N steps first")
    p.add_argument(
        "--mode", choices=("params", "random", "pca"), default="params", help="the plane"
    )
    p.add_argument("--x", default="", metavar="ENTRY", help="params mode: the x axis (e.g. w)")
    p.add_argument("--y", default="", metavar="ENTRY", help="params mode: the y axis (e.g. b)")
    p.add_argument("--size", type=int, default=121, help="grid points per axis (default 121)")
    p.add_argument("--race", type=int, default=0, metavar="N", help="race the optimizers N steps")
    p.add_argument("--levels", type=int, default=12, help="contour levels (default 12)")
    p.add_argument(
        "--window",
        type=float,
        nargs=4,
        metavar=("X0", "X1", "Y0", "Y1"),
        help="the window of the plane (default: fitted to the path and the optimum)",
    )
    p.add_argument("--width", type=int, default=80, help="the picture's columns (default 80)")
    p.add_argument("--height", type=int, default=24, help="the picture's rows (default 24)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda ... (default: cpu)")
    p.add_argument("--seed", type=int, default=None, help="seed for data and initial weights")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")


def _fail(message: str) -> int:
    print(f"playground: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    """Run ``playground landscape``; 0 on success, 2 on bad input."""
    if args.steps < 0:
        return _fail(f"--steps: {args.steps} must be >= 0")
    if not (10 <= args.width <= 1000 and 4 <= args.height <= 1000):
        return _fail(f"--width {args.width} --height {args.height}: too small or too large")
    # torch loads here, not at import: `playground --help` stays fast
    from playground.training.catalog import PresetError
    from playground.training.devices import DeviceError
    from playground.training.landscape import landscape_of
    from playground.training.landscape_canvas import as_text, draw, plot_size
    from playground.training.landscape_view import LandscapeRequest, Window, as_json, summary
    from playground.training.presets import find_preset
    from playground.training.session import Session

    cols, rows = plot_size(args.width, args.height)
    window = Window(*args.window) if args.window else None
    request = LandscapeRequest(
        mode=args.mode,
        x=args.x,
        y=args.y,
        window=window,
        size=args.size,
        dots=(2 * cols, 4 * rows),
        race=args.race,
        levels=args.levels,
    )
    try:
        session = Session(find_preset(args.preset), device=args.device or "cpu", seed=args.seed)
        if args.steps:
            session.run(args.steps)
        view = landscape_of(session, request)
    except (PresetError, DeviceError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(as_json(view)))
        return 0
    print(f"{session.preset.title}")
    print("\n".join(summary(view)))
    print(as_text(draw(view, args.width, args.height)))
    print("○ start  ● now  ★ least squares  ◆ where a racer ends")
    print("levels: " + "  ".join(f"{v:.4g}" for v in view.levels))
    print("path (update, step, x, y):")
    for i, s, (x, y) in zip(view.path_index, view.path_steps, view.path, strict=True):
        print(f"  {int(i):>7} {int(s):>7}  {x:.6g}  {y:.6g}")
    return 0
