"""`voicechat serve`: the voice loop over a WebSocket, one `Session` per connection, models shared per process.

protocol: the messages and their validation; engines: the models loaded once per process; sink: reply audio
as binary frames; hearing: a connection's microphone audio to its recognizer; connection: one client's
Session and its cleanup; auth: the token; app: the FastAPI app.
"""
