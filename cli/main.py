"""The `interp` command group. Thin and lazy: `interp --help` imports neither torch nor any analysis;
each command's module is imported only when that command runs."""

from __future__ import annotations

import importlib
import sys

import click

from interp.analysis.registry import ANALYSES

# the commands that are not analyses: command name -> ("module:attribute", one line of help)
TOOLS = {
    "models": ("cli.commands.models:models", "List the registered models, installed or not."),
    "generate": ("cli.commands.generate:generate", "Continue a prompt (greedy or sampled, with a KV cache)."),
    "run": ("cli.commands.report:run", "Run one experiment from experiments/."),
    "report": ("cli.commands.report:report", "Run every experiment and write reports/<model>/."),
    "serve": ("cli.commands.serve:serve", "Open a local lab page: predict, attention, trace and edit facts live."),
}

# command name -> "module:attribute"; the module is imported on first use. Analyses come from their one
# registration (interp.analysis.registry), which imports nothing.
COMMANDS = {name: TOOLS[name][0] for name in ("models", "generate")}
COMMANDS |= {name: a.command for name, a in ANALYSES.items()}
COMMANDS |= {name: TOOLS[name][0] for name in ("run", "report", "serve")}

HELP = {name: TOOLS[name][1] if name in TOOLS else ANALYSES[name].help for name in COMMANDS}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="interp")
def cli() -> None:
    """interp: open up a real language model and see how it works.

    Models load offline from PyPI packages (smollm2-135m by default, gemma3-270m).

    \b
    Example:
      interp induction --model smollm2-135m --json
    """


def main() -> None:
    """Console entry point: user errors become one sentence on stderr and exit status 1."""
    from cli.common import run_cli

    sys.exit(run_cli(cli))


if __name__ == "__main__":
    main()
