"""Airflow layer of the Hyperband tuner: operators, triggers, sensors, links and the UI plugin.

This package translates Airflow concepts (connections, templating, XCom,
deferral) into calls on :mod:`hb_core`; it holds no tuning logic of its own.
"""
