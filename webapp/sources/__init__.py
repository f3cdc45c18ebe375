"""Alert sources: Prometheus Alertmanager, Grafana, generic webhooks and heartbeats feeding Herald's alerts.

models (Source), formats (parsing each kind's payload), matchers (routes), service (create, change, rotate,
delete; receive a payload), heartbeats (the worker's check). Views and the API call service.
"""
