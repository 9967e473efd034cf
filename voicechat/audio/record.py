"""A fixed-length recording from the microphone, with a countdown and a level meter on stderr."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from voicechat.errors import NoAudioDeviceError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from voicechat.live.sources import MicrophoneSource

COUNTDOWN = 3
METER_WIDTH = 30
FLOOR_DBFS = -60.0


def meter(level: float, elapsed: float, seconds: float) -> str:
    filled = round(METER_WIDTH * min(1.0, max(0.0, (level - FLOOR_DBFS) / -FLOOR_DBFS)))
    bar = "█" * filled + "·" * (METER_WIDTH - filled)
    return f"● recording {elapsed:4.1f} / {seconds:g} s  {bar} {level:6.1f} dBFS"


def record(seconds: float, device: int | str | None = None) -> tuple[npt.NDArray[np.float32], int]:
    """`seconds` of 16 kHz mono audio; fails at once, in one line, when there is no microphone."""
    from voicechat.live.sources import STT_RATE, MicrophoneSource

    try:
        source = MicrophoneSource(device)
    except NoAudioDeviceError:
        raise NoAudioDeviceError("no microphone found to record from: give a recording with --from FILE "
                                 "instead") from None
    return asyncio.run(_capture(source, seconds)), STT_RATE


async def _capture(source: MicrophoneSource, seconds: float) -> npt.NDArray[np.float32]:
    import numpy as np
    from rich.live import Live

    from voicechat.console import err
    from voicechat.live.sources import STT_RATE

    for left in range(COUNTDOWN, 0, -1):
        err().print(f"recording from '{source.device['name']}' in {left}…", markup=False)
        await asyncio.sleep(1.0)
    wanted = int(seconds * STT_RATE) * 2
    pcm = bytearray()
    with Live(meter(FLOOR_DBFS, 0.0, seconds), console=err(), transient=True, refresh_per_second=12) as live:
        async for frame in source.frames():
            pcm += frame.pcm
            live.update(meter(frame.level, len(pcm) / 2 / STT_RATE, seconds))
            if len(pcm) >= wanted:
                break
    err().print(f"recorded {len(pcm) / 2 / STT_RATE:.1f} s", markup=False)
    return np.frombuffer(bytes(pcm[:wanted]), dtype=np.int16).astype(np.float32) / 32768.0
