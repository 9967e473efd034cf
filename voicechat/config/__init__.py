"""TOML profiles, character cards and voices: validated models and the folders they are read from."""
