"""A file server on 127.0.0.1 for the download tests (zoo teachers, Fashion-MNIST)."""

import http.server
import threading
import time


class Server:
    """Serves ``files`` (name -> bytes); ``truncate`` names files whose body is cut in half
    while Content-Length announces the full size; ``pause`` (name -> seconds) sends half the
    body, waits, then the rest, so that a file is half-written for that long. Counts requests
    per path."""

    def __init__(self):
        self.files, self.truncate, self.pause, self.hits = {}, set(), {}, {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.split("?")[0].lstrip("/")
                outer.hits[name] = outer.hits.get(name, 0) + 1
                if name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                half = len(body) // 2
                if name in outer.truncate:
                    body = body[:half]
                elif name in outer.pause:
                    self.wfile.write(body[:half])
                    self.wfile.flush()
                    time.sleep(outer.pause[name])
                    body = body[half:]
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
