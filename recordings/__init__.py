"""Recordings: catalog, offline transcription (Vosk), QA rules and scoring, access and audit.

Other packages use :mod:`recordings.service` (wiring) and :mod:`recordings.routes` (the web).
"""
