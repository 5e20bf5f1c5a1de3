"""The composition root: the `switchboard` command and the processes it runs (web, worker, clock, the embedded
default). The one package that wires core, connectors, flows, webhooks and sandbox together; nothing imports it."""
