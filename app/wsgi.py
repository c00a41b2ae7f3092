"""The app object for gunicorn:  gunicorn --config deploy/gunicorn.conf.py app.wsgi:app
(one worker, many threads; deploy/gunicorn.conf.py also ends this instance's runs with a
message on SIGTERM)."""
from model_server import memory

from . import create_app

app = create_app()
memory.freeze_startup()  # what exists now lives as long as the worker
