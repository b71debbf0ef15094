"""Helpers the tests share; fixtures stay in tests/conftest.py.

- `servers`: live uvicorn processes serving the real ASGI app (`LiveServer`, `ProductionServer`),
  and `manage.py run_bridges` as a process (`BridgeRunner`).
- `clients`: Socket.IO clients that record what they receive (`BoardClient`), a client loop for
  sync tests (`ClientLoop`).
- `proxies`: TCP in-betweens: a controllable fault proxy (`TcpProxy`) and a load balancer
  (`Balancer`).
- `osc`: OSC desks on real UDP sockets that record what they get and send (`OscPeer`).
- `http`: a browser-like admin session on a live server (`AdminSession`).
- `services`: fresh PostgreSQL databases and Redis prefixes for multi-process tests.
- `accounts`: the test password, users who may sign in to a live server, session cookies.
- `database`: what the database holds now (`stored`, `trail`, `slider_row`).
- `waiting`: the one way to wait for a condition (`wait_until`, `wait_until_blocking`).
- `checks`: assertions on what the server answers and stores (`assert_error`, ...).
- `strategies`: Hypothesis strategies for hostile payloads (`json_like`).
"""
