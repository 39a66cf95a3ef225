"""Plain helpers of the tests (fixtures stay in conftest.py files).

- env: the repository's paths and the clean environment of an app process a test starts;
- processes: the one harness that starts, waits for and stops app processes (gunicorn,
  Celery worker and beat, nginx, moto), for the browser tests, the topology test and bench/;
- api, shares: assertions on API errors, shares ended or files stored;
- browser, production: what the browser tests and the production tests share;
- app_server: one gunicorn through the entrypoint and raw HTTP to it, for the shares tests
  that watch what the WSGI server decodes or a killed worker leaves behind.

Nothing is imported here, so that bench/ can import the harness without Django or pytest.
"""
