"""The app object for gunicorn:  gunicorn -w 1 --threads 64 app.wsgi:app"""
from . import create_app

app = create_app()
