"""The QA plugin: call sampling, versioned weighted scorecards, evaluations with acknowledge and
dispute, calibration, and QA reports. Tables live in the ctid database (models.py)."""
