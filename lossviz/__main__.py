"""``python -m lossviz check LOSS --y-true FILE --y-pred FILE ...``.

Puts your own tensors through a lossviz loss and the closest Keras built-in,
and prints the per-sample loss, the gradient with respect to ``y_pred`` and
every non-finite value with the inputs behind it (``--json`` for a machine).

Exit status: 0 when every input, loss value and gradient entry is finite, 1
when any is not, 2 on bad input or bad arguments (the message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from lossviz import check, registry


def _losses_help() -> str:
    blocks = [entry.summary() for entry in registry.LOSSES.values()]
    return (
        "losses, their inputs and parameters:\n\n"
        + "\n\n".join(blocks)
        + "\n\nFiles: .npy or .npz (read with allow_pickle=False), .csv, or text "
        "(numbers, or a JSON nested list).\n"
        f"Each file may be at most {check.MAX_UPLOAD_MB} MB.\n"
        "Exit status: 0 all finite, 1 some value is NaN/Inf, 2 bad input."
    )


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``--help`` lists the losses from the registry."""
    parser = argparse.ArgumentParser(
        prog="python -m lossviz",
        description="lossviz: custom Keras losses, numerically careful.",
        epilog=_losses_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "check",
        help="put your own y_true / y_pred through a loss and find NaN/Inf",
        description=(
            "Put your own tensors through a lossviz loss and the closest Keras "
            "built-in: per-sample loss, gradient w.r.t. y_pred, and every "
            "non-finite value with the inputs that produced it."
        ),
        epilog=_losses_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "loss",
        metavar="LOSS",
        choices=registry.names(),
        help="one of: " + ", ".join(registry.names()),
    )
    run.add_argument("--y-true", metavar="FILE", help="the targets")
    run.add_argument(
        "--y-pred",
        metavar="FILE",
        required=True,
        help="the model outputs (the gradient is taken w.r.t. them)",
    )
    run.add_argument(
        "--input",
        metavar="NAME=FILE",
        type=_name_value,
        action="append",
        default=[],
        help="an extra input the loss takes (e.g. embedding=E.npy)",
    )
    run.add_argument(
        "--param",
        metavar="NAME=VALUE",
        type=_name_value,
        action="append",
        default=[],
        help="a loss parameter (e.g. margin=0.2)",
    )
    run.add_argument(
        "--dtype",
        choices=check.DTYPES,
        default="float32",
        help="compute in this precision (default float32, as Keras)",
    )
    run.add_argument(
        "--json", action="store_true", help="print the full report as JSON"
    )
    return parser


def _check(args) -> int:
    entry = registry.get(args.loss)
    files = {"y_pred": args.y_pred}
    if args.y_true is not None:
        files["y_true"] = args.y_true
    for name, path in args.input:
        if name in files:
            raise check.CheckError(f"{name} is given twice.")
        files[name] = path
    for name in files:
        if name not in entry.input_names:
            raise check.CheckError(
                f"{args.loss} takes no input {name!r}; its inputs: "
                f"{', '.join(entry.input_names)}."
            )
    params = {}
    for name, text in args.param:
        if name not in {spec.name for spec in entry.params}:
            params[name] = text  # resolve_params names the known ones
            continue
        try:
            params[name] = entry.param(name).parse(text)
        except ValueError as error:
            raise check.CheckError(str(error)) from None
    arrays = {name: check.load_path(path, name) for name, path in files.items()}
    report = check.run_check(args.loss, arrays, params, dtype=args.dtype)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(check.format_report(report))
    return 0 if report.all_finite else 1


def main(argv=None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _check(args)
    except check.CheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
