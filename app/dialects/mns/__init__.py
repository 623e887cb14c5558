"""Alibaba MNS dialect: the MNS REST API over openmps's queues, topics and push deliveries."""

from app.dialects.mns.routes import MnsServices, create_mns_blueprint

__all__ = ["MnsServices", "create_mns_blueprint"]
