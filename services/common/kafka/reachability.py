"""Whether a Kafka broker is there: a plain TCP connect to the bootstrap addresses.

Every client (topics, producer, consumers) asks this before creating a kafka-python client,
because a kafka-python client whose bootstrap times out leaves its I/O thread behind.
"""

from __future__ import annotations

import socket

from vigil.services.common.kafka.settings import split_host_port


def broker_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """True when any bootstrap address accepts a TCP connection.

    Checked before creating a kafka-python client: a client whose bootstrap times out leaves
    its I/O thread behind (kafka-python 3.0.12), so retry loops must not create one per try.
    """
    for address in bootstrap.split(","):
        host, port = split_host_port(address)
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False
