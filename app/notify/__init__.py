"""MNS-style notifications: queues, topics and subscriptions in Redis, HTTP push delivery with
MNS retry strategies, job completion messages and the notifier process that sends them."""
