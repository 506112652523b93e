"""The Conveyor coordinator: GitLab runner API, pipelines, the job queue and job logs.

May import ``conveyor.protocol``, ``conveyor.ciconfig`` and ``conveyor.pipeline``; never
``conveyor.runner`` (the runner reaches the server only over HTTP). Inside, imports flow
``api -> {queue, trace, archive, viewer} -> {db, storage}``; wiring lives in ``app.py`` only.
"""
