"""Bridges: a board's changes sent to things outside (OSC desks, MQTT brokers), theirs taken in.

One process runs them (the runner), fed by the same notices as the web processes, so each
change goes out once per target however many web processes run:

- `runner`: the runner: notices in, each change to the outboxes of its board's targets (not
  back to the target it came from), settings reloaded without a restart;
- `outbox`: one target's outgoing queue: latest value per slider, at most `rate` sends a
  second, retries with back-off, the target's state (logged, stored for the admin, metrics);
- `base`: what a kind of bridge implements (`Bridge`, `Target`) and what it is given
  (`Change`, `set_from_outside`);
- `osc`: OSC over UDP (python-osc): targets, and a listening port per board;
- `mqtt`: MQTT (aiomqtt): a connection per broker line, retained state topics, set topics,
  Home Assistant discovery; `mqtt_messages`: its topics and payloads, without I/O.

Adding a kind is one module with a `Bridge` subclass, named in `runner.bridge_kinds()`; see
docs/integrations.md. Nothing here imports the socket side's server.
"""
