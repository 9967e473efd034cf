"""Building a Session from a profile: the one place where conversation, speech, playback and listener meet.

`talk` (typed, scripted and live), and each `serve` connection, make their Session here, so a setting
or a fix applies to every mode at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicechat.audio.sinks import AudioSink
    from voicechat.config.models import Character, Profile, STTSettings
    from voicechat.conversation_log import ConversationLog
    from voicechat.history.resume import Resumed
    from voicechat.live.listener import RealtimeListener
    from voicechat.llm.base import ChatModel
    from voicechat.session import Session, SessionOptions
    from voicechat.tts.base import TextToSpeech


def open_chat(settings: Profile, notify: Callable[[str], None]) -> ChatModel:
    """The profile's chat model (blocking: the embedded server starts here); its notices go to `notify`."""
    from voicechat.llm.registry import create_chat_model

    chat = create_chat_model(settings.llm)
    for notice in chat.notices:
        notify(notice)
    return chat


def new_listener(stt: STTSettings, model_dir: Path | None = None) -> RealtimeListener:
    """A live recognizer for the profile's speech settings (`model_dir`: stt.model already resolved)."""
    from voicechat.live.listener import RealtimeListener, listener_settings
    from voicechat.stt.models import resolve_model

    return RealtimeListener(listener_settings(stt, model_dir or resolve_model(stt.model)))


def build_session(
    settings: Profile,
    characters: Sequence[Character],
    chat: ChatModel,
    *,
    tts: TextToSpeech | None,
    sink: AudioSink | None,
    pace: bool = False,
    listener: RealtimeListener | None = None,
    transcript: ConversationLog | None = None,
    options: SessionOptions | None = None,
    resume: Resumed | None = None,
    greet: bool = False,
) -> Session:
    """A Session over `chat` with these characters; `tts`/`sink` None: replies are shown, not spoken.

    `pace`: play at real-time pace into a sink that does not block like a speaker (a WAV, a socket), so
    barge-in bookkeeping matches what a listener would have heard.
    `resume`: go on with that earlier conversation (its history in the context, its id on new turns);
    `greet`: a new conversation (not a resumed one, which has turns) opens with the characters' greetings
    when the caller calls `Session.greet()`, and so does each one after a reset.
    """
    from dataclasses import replace

    from voicechat.live.playback import Playback
    from voicechat.llm.budget import ReplyBudget
    from voicechat.llm.conversation import Conversation
    from voicechat.session import Session, SessionOptions

    conversation = Conversation(chat, characters, settings.user_name, settings.llm.history_turns,
                                settings.llm.history_tokens, ReplyBudget.from_settings(settings.llm))
    if resume is not None:
        conversation.resume(resume.conversation_id, resume.turns, resume.next_index)
    speaking = tts is not None and sink is not None
    voices = {c.name: c.voice for c in characters}
    return Session(
        conversation=conversation,
        listener=listener,
        tts=tts if speaking else None,
        playback=Playback(sink, pace=pace) if speaking and sink is not None else None,
        voices=voices,
        default_voice=voices[characters[0].name],
        transcript=transcript,
        options=replace(options or SessionOptions(), reply_timeout=settings.llm.timeout, greet=greet),
    )
