from voicechat.cli import main

# Guarded: RealtimeSTT switches multiprocessing to "spawn", whose children import this module again.
if __name__ == "__main__":
    main()
