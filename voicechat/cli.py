"""The `voicechat` command line. Each command lives in voicechat/commands/ and imports its backends lazily."""

from __future__ import annotations

import sys

import typer

from voicechat import __version__
from voicechat.commands import config_cmds, history_cmd, say_cmd, serve_cmd, status_cmds, talk_cmd, transcribe_cmd
from voicechat.errors import VoicechatError

app = typer.Typer(
    name="voicechat",
    help="Talk to LLM characters from your terminal and hear them answer, each in its own voice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"voicechat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Talk to LLM characters from your terminal and hear them answer, each in its own voice."""


app.command("talk")(talk_cmd.talk)
app.command("say")(say_cmd.say)
app.command("transcribe")(transcribe_cmd.transcribe)
app.add_typer(config_cmds.voices_app, name="voices")
app.add_typer(config_cmds.profiles_app, name="profiles")
app.add_typer(config_cmds.characters_app, name="characters")
app.command("devices")(status_cmds.devices)
app.command("doctor")(status_cmds.doctor)
app.command("serve")(serve_cmd.serve)
app.add_typer(history_cmd.history_app, name="history")


def main() -> None:
    from voicechat import notices

    notices.send_to(_print_notice)
    try:
        app()
    except VoicechatError as error:
        from voicechat.console import fail

        fail(str(error))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def _print_notice(text: str) -> None:
    from voicechat.console import err

    err().print(text, soft_wrap=True, markup=False)


if __name__ == "__main__":
    main()
