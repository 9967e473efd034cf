"""`voicechat devices` and `voicechat doctor`."""

from __future__ import annotations

import typer


def devices() -> None:
    """List audio input and output devices (* marks the defaults)."""
    from rich.table import Table

    from voicechat.audio.devices import list_devices
    from voicechat.console import err, out

    found = list_devices()
    if not found:
        err().print("no audio devices found (a headless machine?): use -o FILE.wav / --text / --input FILE.wav")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("index", "name", "api", "in", "out", "rate"):
        table.add_column(column)
    for device in found:
        marks = ("*" if device.is_default_input else "") + ("*" if device.is_default_output else "")
        table.add_row(
            f"{device.index}{marks}",
            device.name,
            device.host_api,
            str(device.max_input_channels),
            str(device.max_output_channels),
            f"{device.default_sample_rate:.0f}",
        )
    out().print(table)


def doctor() -> None:
    """Check every backend (installed, model found, device present, API key set) and print the fixes."""
    from rich.markup import escape

    from voicechat.console import out
    from voicechat.doctor import run_checks

    checks = run_checks()
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else ("[red]FAIL[/]" if check.required else "[yellow]warn[/]")
        line = f"{mark} {escape(check.name)}: {escape(check.detail)}"
        if not check.ok and check.fix:
            line += f"  [dim]-> {escape(check.fix)}[/]"
        out().print(line, soft_wrap=True)
    if any(not check.ok and check.required for check in checks):
        raise typer.Exit(1)
