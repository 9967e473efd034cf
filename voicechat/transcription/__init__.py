"""`voicechat transcribe`: find the inputs, run them through an STT engine, write txt / srt / vtt / json."""
