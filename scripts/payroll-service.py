"""A tiny payroll service for the main job: answers GET /employees only to a
bearer JWT (three base64url parts), 401 otherwise. Writes its port to argv[1]."""
import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

EMPLOYEES = [
    {"id": "e-1", "monthlySalaryCents": 512_000},
    {"id": "e-2", "monthlySalaryCents": 431_050},
    {"id": "e-3", "monthlySalaryCents": 389_990},
]


def claims_of(token):
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        claims = claims_of(auth[7:]) if auth.startswith("Bearer ") else None
        if self.path != "/employees" or claims is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.end_headers()
            return
        sys.stderr.write(f"payroll service: request from sub={claims.get('sub')}\n")
        body = json.dumps(EMPLOYEES).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_port))
server.serve_forever()
