"""python -m app: the playground on http://127.0.0.1:5000, one process, no other service."""
from . import create_app, socketio_of

app = create_app()
settings = app.config["SETTINGS"]
print(f"Dropout Playground on http://{settings.host}:{settings.port}", flush=True)
socketio_of(app).run(app, host=settings.host, port=settings.port, allow_unsafe_werkzeug=True)
