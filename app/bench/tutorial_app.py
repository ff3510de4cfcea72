"""The tutorial's example app, rebuilt for a side-by-side benchmark: Flask + prometheus_client,
one process. GET / on :8080 counts requests{host,deployment} and answers "ok"; :8000 serves the
metrics. Ports come from argv so the benchmark can pick free ones."""
import os
import socket
import sys

from flask import Flask
from prometheus_client import Counter, start_http_server

app_port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
metrics_port = int(sys.argv[2]) if len(sys.argv) > 2 else 8000

REQUESTS = Counter("requests", "Total number of requests served", ["host", "deployment"])
HOST = socket.gethostname()
DEPLOYMENT = os.environ.get("APP_DEPLOYMENT", "app")
app = Flask(__name__)


@app.route("/")
def root():
    REQUESTS.labels(host=HOST, deployment=DEPLOYMENT).inc()
    return "ok"


if __name__ == "__main__":
    start_http_server(metrics_port, addr="127.0.0.1")
    app.run(host="127.0.0.1", port=app_port)
