"""Options dataclasses -> command lines that accept the Lua originals' `-flag` and `--flag`.

    @options
    class Opts:
        rnn_size: int = flag(128, "size of LSTM internal state")

    opt = parse(Opts)          # -rnn_size 512, --rnn_size 512 and -h all work
"""
import dataclasses
import sys
from types import MappingProxyType

from argparse_dataclass import ArgumentParser


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 1, no traceback."""


def flag(default, help, positional=False, min=None, max=None, **metadata):
    """A dataclass field with a help string; `positional=True` makes it an argument like `model`.

    `min`/`max` bound a number where the option is declared (`min=1`: a size; `min=0`: a count that
    may be zero); `parse` refuses a value outside them with one line naming the flag.
    """
    bounds = ", ".join(s for s in (f">= {min}" if min is not None else "",
                                   f"<= {max}" if max is not None else "") if s)
    if bounds:
        help = f"{help}; {bounds}"
        metadata["bounds"] = (min, max)
    metadata["help"] = help if positional else f"{help} (default: {default!r})"
    if positional:
        metadata["nargs"] = "?"
    return dataclasses.field(default=default, metadata=metadata)


def options(cls):
    """Make `cls` a dataclass whose every field is spelled `-name` and `--name` on the command line."""
    cls = dataclasses.dataclass(cls)
    for f in dataclasses.fields(cls):
        if "args" not in f.metadata:
            positional = f.metadata.get("nargs", False) is not False
            meta = dict(f.metadata)
            meta["args"] = [f.name] if positional else [f"-{f.name}", f"--{f.name}"]
            if positional:
                meta.setdefault("type", f.type)  # argparse-dataclass would read nargs as a list type
            f.metadata = MappingProxyType(meta)
    if cls.__module__ == "__main__" and any(a in ("-h", "--help") for a in sys.argv[1:]):
        parse(cls)  # a script's -h is answered here (argparse prints it and exits): before its heavy imports
    return cls


def parse(options_cls, argv=None, description=None, spelling="-{}"):
    """Parse argv into the options dataclass; bounds are checked (`spelling` formats a name in the message)."""
    doc = options_cls.__doc__ or ""
    if doc.startswith(options_cls.__name__ + "("):  # dataclass's generated signature, not a description
        doc = ""
    parser = ArgumentParser(options_cls, description=description or doc.strip(), allow_abbrev=False)
    opt = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    # positional fields with nargs='?' come back as None when omitted: use the dataclass default
    for f in dataclasses.fields(options_cls):
        if getattr(opt, f.name) is None and f.default is not None:
            setattr(opt, f.name, f.default)
    try:
        check_bounds(opt, spelling)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return opt


def check_bounds(opt, spelling="-{}"):
    """Raise UserError for the first option outside the `min`/`max` its `flag` declared.

    `spelling` formats the name in the message (dcgan's environment variables pass "{}=").
    """
    for f in dataclasses.fields(opt):
        lo, hi = f.metadata.get("bounds", (None, None))
        v = getattr(opt, f.name)
        if v is None or (lo is None and hi is None):
            continue
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            want = " and ".join(s for s in (f">= {lo}" if lo is not None else "",
                                            f"<= {hi}" if hi is not None else "") if s)
            raise UserError(f"{spelling.format(f.name)} must be {want} (got {v!r})")


def run(main, *args):
    """Call main(*args); a UserError or Ctrl-C becomes one line on stderr and a non-zero exit."""
    try:
        return main(*args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
