"""Local Apache Kafka for tests and the demo: jars from Maven Central, one KRaft broker."""

from broker.errors import BrokerError, BrokerStartError, BrokerStopError, JarFetchError
from broker.jars import KafkaJars
from broker.local import LocalBroker

__all__ = [
    "BrokerError",
    "BrokerStartError",
    "BrokerStopError",
    "JarFetchError",
    "KafkaJars",
    "LocalBroker",
]
