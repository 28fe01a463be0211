"""Debian's nginx as a WebSocket reverse proxy on loopback, tuned the way ops would tune it.

`proxy_buffering off` so frames are not held back, and `proxy_buffer_size` at least one frame so
a large frame is not read in 4 KB slices (the default makes nginx look slower than it is).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def find_nginx(explicit: str | None = None) -> str | None:
    """The nginx binary (`explicit` if given), or None when it is not installed (`apt-get install nginx`)."""
    for candidate in (explicit,) if explicit else NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass(frozen=True)
class NginxConfig:
    """A self-contained config: everything nginx writes stays in `prefix`."""

    prefix: Path
    listen_port: int
    upstream_port: int
    buffer_bytes: int  # proxy_buffer_size: at least the largest frame
    worker_processes: int = 1
    worker_connections: int = 4096

    def render(self) -> str:
        kb = -(-self.buffer_bytes // 1024)
        p = self.prefix
        return f"""\
daemon off;
master_process on;
worker_processes {self.worker_processes};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections {self.worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    tcp_nodelay on;
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    upstream realtime_upstream {{ server 127.0.0.1:{self.upstream_port}; }}
    server {{
        listen 127.0.0.1:{self.listen_port};
        location / {{
            proxy_pass http://realtime_upstream;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size {kb}k;
            proxy_buffers 4 {kb}k;
            proxy_busy_buffers_size {kb}k;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""

    def write(self) -> Path:
        self.prefix.mkdir(parents=True, exist_ok=True)
        path = self.prefix / "nginx.conf"
        path.write_text(self.render())
        return path
