"""A real HTTP server on 127.0.0.1 for the zoo tests, and handlers that misbehave on model.keras."""
import contextlib
import functools
import http.server
import pathlib
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging each request."""

    def log_message(self, *args):
        pass


class ModelKerasHandler(QuietHandler):
    """Serves every file normally except model.keras, which goes to :meth:`send_model`."""

    def do_GET(self):
        if not self.path.endswith("model.keras"):
            return super().do_GET()
        data = pathlib.Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))  # the whole size is announced
        self.end_headers()
        self.send_model(data)

    def send_model(self, data):
        raise NotImplementedError


@contextlib.contextmanager
def serve(folder, handler_class=None):
    """A threaded HTTP server on 127.0.0.1 (free port) serving ``folder``; yields its URL."""
    handler = functools.partial(handler_class or QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
