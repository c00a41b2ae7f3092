"""The app object for gunicorn:  gunicorn --config deploy/gunicorn.conf.py app.wsgi:app
(one worker, many threads; deploy/gunicorn.conf.py also ends this instance's runs with a
message on SIGTERM)."""
from . import create_app, socketio_of
from .broadcast import atomic_sends

app = create_app()
atomic_sends(socketio_of(app))
