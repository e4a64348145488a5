"""``python -m lossviz check ...`` and ``python -m lossviz probe ...``.

``check LOSS --y-true FILE --y-pred FILE ...`` puts your own tensors through a
lossviz loss and the closest Keras built-in, and prints the per-sample loss,
the gradient with respect to ``y_pred`` and every non-finite value with the
inputs behind it (``--json`` for a machine). Exit status: 0 when every input,
loss value and gradient entry is finite, 1 when any is not, 2 on bad input or
bad arguments (the message on stderr).

``probe TARGET --task TASK [--outputs O] [--y-true F --y-pred F] [--json]``
runs ``lossviz.probe``'s battery of checks on your own loss, named as
``path/to/file.py:NAME`` or ``package.module:NAME``. Exit status: 0 when no
check fails, 1 when one does, 2 on bad usage, a missing file or a target that
cannot be imported (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys

from lossviz import check, probe, registry


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
    _add_probe(commands)
    return parser


def _add_probe(commands) -> None:
    run = commands.add_parser(
        "probe",
        help="run a battery of sanity checks on your own loss",
        description=(
            "Run lossviz.probe's checks on your own loss: a function "
            "(y_true, y_pred) -> values, or a keras.losses.Loss instance or class. "
            "The checks, in order: " + ", ".join(probe.CHECKS) + "."
        ),
        epilog=(
            "TARGET is path/to/file.py:NAME (imported by its path, its folder on "
            "sys.path while it imports) or package.module:NAME.\n"
            "Files for --y-true/--y-pred: .npy or .npz (allow_pickle=False), .csv, "
            "or text.\n"
            "Exit status: 0 no check fails, 1 a check fails, 2 bad usage or a "
            "target that cannot be imported."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "target", metavar="TARGET", help="path/to/file.py:NAME or package.module:NAME"
    )
    run.add_argument(
        "--task",
        required=True,
        choices=probe.TASKS,
        help="what y_true is: one-hot (categorical), class ids (sparse), "
        "multi-hot (multilabel) or real values (regression)",
    )
    run.add_argument(
        "--outputs",
        choices=probe.OUTPUTS,
        default="logits",
        help="what y_pred is (default logits)",
    )
    run.add_argument("--y-true", metavar="FILE", help="your own typical targets")
    run.add_argument("--y-pred", metavar="FILE", help="your own typical predictions")
    run.add_argument("--json", action="store_true", help="print the report as JSON")


def _probe(args) -> int:
    loss = probe.load_target(args.target)
    arrays = {}
    for name in ("y_true", "y_pred"):
        path = getattr(args, name)
        if path is not None:
            arrays[name] = check.load_path(path, name)
    report = probe.probe(loss, args.task, outputs=args.outputs, **arrays)
    if args.json:
        print(json.dumps({"target": args.target, **report.to_dict()}, indent=2))
    else:
        print(probe.format_report(report, target=args.target))
    return 0 if report.ok else 1


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
        if args.command == "probe":
            return _probe(args)
        return _check(args)
    except (check.CheckError, probe.ProbeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
