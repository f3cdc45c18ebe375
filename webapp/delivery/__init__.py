"""The delivery path: notifications, the outbox and its dispatcher, HTTP and SMTP transport, the outbound policy.

Nothing here knows of views or requests; alerts.py stages deliveries and the notifier sends them.
"""
