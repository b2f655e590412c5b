"""The `fab` command line: every task option typed, a wrong value refused in one line.

    from netfab.cli import task                      # in fabfile.py, instead of fabric's

    @task(help={"port": "TCP port (default 8501)", "gpus": "GPUs per host (default: all)"})
    def serve(c, model, port=8501, max_wait_ms=2.0, gpus: int | None = None): ...

Fabric's @task, changing three things in how invoke 2.2 reads options:
- a value that does not fit the option's type (`--port=abc`) is a ParseError, which `fab`
  prints as one `error:` line with exit code 1; invoke lets the ValueError of its cast escape
  as a traceback;
- `fab --help TASK` names every option's type: invoke names only STRING and INT, and shows a
  FLOAT or a repeatable option like an on/off flag;
- no automatic short flags: invoke takes each from the first free character of the option's
  name, so they shift when an option is added and can even be the dash (`--max-queue-rows`
  showed as `--=INT`).
An option's type is its default's, or its annotation's when the default is None (as above).
"""
import typing

import fabric
import invoke.collection
from invoke.exceptions import ParseError
from invoke.parser import Argument, ParserContext

TYPE_NAMES = {str: "STRING", int: "INT", float: "FLOAT", list: "STRING"}  # list: repeatable, a STRING each
EXPECTED = {int: "a whole number", float: "a number"}  # the casts that can fail


def task(*args, **kwargs):
    """Fabric's @task with typed options (see the module docstring); takes the same arguments."""
    kwargs.setdefault("klass", TypedTask)
    kwargs.setdefault("auto_shortflags", False)
    return fabric.task(*args, **kwargs)


class TypedTask(fabric.Task):
    def get_arguments(self, ignore_unknown_help=None) -> list[Argument]:
        hints = typing.get_type_hints(self.body)
        return [_checked(argument, hints.get(argument.name))
                for argument in super().get_arguments(ignore_unknown_help)]


class CheckedArgument(Argument):
    """An option whose value is cast to its type, or refused with a ParseError that says what it expects."""

    def set_value(self, value, cast: bool = True) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            flag = f"--{self.names[0]}"
            expected = EXPECTED.get(self.kind, f"a valid {self.kind.__name__}")
            example = f" (e.g. {flag}={self.default})" if self.default is not None else ""
            raise ParseError(f"error: {flag}: {value!r} is not {expected}{example}") from None


def _checked(argument: Argument, hint) -> CheckedArgument:
    kind = argument.kind
    if argument.default is None and kind is str and hint is not None:  # the default gave no type
        declared = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
        if len(declared) == 1 and declared[0] in TYPE_NAMES:
            kind = declared[0]
    return CheckedArgument(names=argument.names, kind=kind, default=argument.default, help=argument.help,
                           positional=argument.positional, optional=argument.optional,
                           incrementable=argument.incrementable, attr_name=argument.attr_name)


class TypedParserContext(ParserContext):
    """A task's parser context whose help names the type of every option that takes a value."""

    def help_for(self, flag: str) -> tuple[str, str]:
        names, text = super().help_for(flag)
        argument = self.flags[flag]
        if argument.takes_value and argument.kind not in (str, int):  # the two invoke names itself
            names += f"={TYPE_NAMES.get(argument.kind, argument.kind.__name__.upper())}"
        return names, text


# invoke builds each task's parser context in Collection.to_contexts from this name, and offers
# no other way to change how --help shows an option.
invoke.collection.ParserContext = TypedParserContext
