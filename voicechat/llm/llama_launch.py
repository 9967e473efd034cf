"""The embedded model's server process: llama-cpp-python's OpenAI-compatible app, locked down for one client.

Run as `python -m voicechat.llm.llama_launch` by `LocalServer`, never imported by the CLI. Unlike
`python -m llama_cpp.server` it needs the API key that voicechat generated (read from the environment, so
it never shows in `ps`), sends no CORS headers (a web page cannot read its answers), and on a CPU with
AMX leaves out llama.cpp's "extra buffer" weight repacking, which crashes native builds there.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

KEY_VARIABLE = "VOICECHAT_LLAMA_KEY"


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        return "amx_int8" in cpuinfo.read_text(errors="replace")
    except OSError:
        return False


def without_extra_buffers() -> None:
    """Make every model load with use_extra_bufts off (the AMX repack path segfaults in llama_decode)."""
    import llama_cpp.llama_cpp as native

    default_params = native.llama_model_default_params
    if getattr(default_params, "without_extra_buffers", False):
        return  # already in place (the turn judge and a server in one process)

    def params():  # type: ignore[no-untyped-def]
        made = default_params()
        if hasattr(made, "use_extra_bufts"):
            made.use_extra_bufts = False
        return made

    params.without_extra_buffers = True  # type: ignore[attr-defined]
    native.llama_model_default_params = params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings
    from starlette.middleware.cors import CORSMiddleware

    if cpu_has_amx():
        without_extra_buffers()
    server = ServerSettings(host="127.0.0.1", port=args.port, api_key=os.environ[KEY_VARIABLE])
    verbose = bool(os.environ.get("VOICECHAT_LLAMA_VERBOSE"))  # llama.cpp's timings (and cache hits) to its log
    model = ModelSettings(model=args.model, model_alias=args.alias, n_threads=args.threads,
                          n_threads_batch=args.threads, n_ctx=args.n_ctx, verbose=verbose)
    app = create_app(server_settings=server, model_settings=[model])
    app.user_middleware = [entry for entry in app.user_middleware if entry.cls is not CORSMiddleware]
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
