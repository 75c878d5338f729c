"""Small applications that the tests in test_apps.py run on the server.

They are imported both by the tests and by worker subprocesses (celery, rq),
which find them through PYTHONPATH=tests/python.
"""
