"""Higgs Audio v2 through boson-multimodal: a lazily loaded engine, cached voice references, windowed streaming.

Nothing heavy is imported here; `voicechat.tts.higgs.engine:HiggsTTS` is what the registry loads.
"""
