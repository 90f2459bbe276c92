"""The trainer service: retrain requests and scheduled checks -> train -> validate -> promote.

``driftline trainer`` runs :class:`trainer.service.TrainerService`. Nothing here is imported
by the worker; the model families (and their frameworks) are imported when a job trains.
"""
