"""The socket side: Socket.IO events in; service calls, acks and broadcasts out.

Imports nothing, so that importing one of its modules (the metrics collector reads
`connections.clients_per_board()`) never builds the Socket.IO server. What lives where:

- `app`: the ASGI app around Django's (used by sliderproject/asgi.py);
- `server`: the one python-socketio server of the process, its configuration and hardening;
- `internals`: every use of a python-socketio, python-engineio, uvicorn or Django detail that
  is private or undocumented, with the versions it was written against;
- `lifecycle`: start-up and shutdown;
- `handlers`: the Socket.IO events (parse, call a service, answer);
- `admission`: who may connect, and leaving;
- `connections`: the registry of this process's connections;
- `state`: `board:state`, batched and per viewer;
- `boards`: this process's boards: sending to their connections, update feeds, presence and hands;
- `dispatch`: cluster notices (sliders.cluster) to what each kind does here;
- `fanout`, `presence`, `hands`, `changequeue`, `acks`: the parts they use.

Every module here logs as "sliders.realtime", so log lines read as they always have.
"""
