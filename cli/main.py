"""The `interp` command group. Thin and lazy: `interp --help` imports neither torch nor any analysis;
each command's module is imported only when that command runs."""

from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:attribute"; the module is imported on first use
COMMANDS = {
    "models": "cli.commands.models:models",
    "generate": "cli.commands.generate:generate",
    "inspect": "cli.commands.inspect:inspect_cmd",
    "induction": "cli.commands.induction:induction",
    "lost-in-middle": "cli.commands.recall:lost_in_middle",
    "trace": "cli.commands.facts:trace",
    "neurons": "cli.commands.facts:neurons",
    "edit": "cli.commands.edit:edit",
    "edit-eval": "cli.commands.edit:edit_eval",
    "run": "cli.commands.report:run",
    "report": "cli.commands.report:report",
    "serve": "cli.commands.serve:serve",
    "patch": "cli.commands.patch:patch",
}

HELP = {
    "models": "List the registered models, installed or not.",
    "generate": "Continue a prompt (greedy or sampled, with a KV cache).",
    "inspect": "Config, top next tokens and a logit-lens table for a prompt.",
    "induction": "Find induction heads, their circuit, and prove them by ablation.",
    "lost-in-middle": "Recall by position of the relevant item, and the attention behind it.",
    "trace": "Causal tracing: where in (token, layer) a fact is recalled.",
    "neurons": "Knowledge neurons by integrated gradients, with controls.",
    "edit": "Rewrite a fact with a rank-one (ROME) edit; save, load, undo.",
    "edit-eval": "CounterFact-style evaluation of ROME / MEMIT over a fact file.",
    "run": "Run one experiment from experiments/.",
    "report": "Run every experiment and write reports/<model>/.",
    "serve": "Open a local lab page: predict, attention, trace and edit facts live.",
    "patch": "Activation / attribution patching of a clean vs corrupted prompt pair.",
}


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
