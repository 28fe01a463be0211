"""fal's own Python client works against the relay unchanged: only its host is configured.

fal-client always dials `wss://{FAL_RUN_HOST}/...`, so the relay serves TLS here with a
certificate from a throwaway CA, and the client runs in its own process with FAL_RUN_HOST,
FAL_KEY (a relay key, not fal's) and SSL_CERT_FILE set, exactly as a user would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import trustme

from .conftest import serve_relay

# Its sync client, then its async one. `use_jwt=False` sends FAL_KEY as `Authorization: Key`; the
# default (True) first asks fal's REST host, which fal-client does not let one configure, for a token.
CLIENT_SCRIPT = """
import asyncio, json, sys
import fal_client

def summary(result):
    image = result["images"][0]
    return {"magic": image["content"][:3].hex(), "size": len(image["content"]),
            "seed": result["seed"], "renderer": result["renderer"]}

results = []
with fal_client.realtime("local/preview", use_jwt=False) as connection:
    for prompt in ("a red cat", "a red cat on a blue boat"):
        connection.send({"prompt": prompt, "seed": 42})
        results.append(summary(connection.recv()))

async def main():
    async with fal_client.AsyncClient().realtime("local/preview", use_jwt=False) as connection:
        await connection.send({"prompt": "a red cat", "seed": 7})
        results.append(summary(await connection.recv()))

asyncio.run(main())
print(json.dumps(results))
"""


async def test_fal_client_realtime_through_relay(relay_settings, tmp_path: Path) -> None:
    """fal_client.realtime() and AsyncClient.realtime() receive JPEG frames from the embedded app through the relay."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(key_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    ca.cert_pem.write_to_path(ca_file)
    async with serve_relay(relay_settings, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as relay:
        env = {
            **os.environ,
            "FAL_RUN_HOST": f"127.0.0.1:{relay.port}",
            "FAL_KEY": "relay-key-1",
            "SSL_CERT_FILE": str(ca_file),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT_SCRIPT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    results = json.loads(stdout)
    assert [r["magic"] for r in results] == ["ffd8ff"] * 3
    assert [r["seed"] for r in results] == [42, 42, 7]
    assert results[0]["size"] != results[1]["size"]
    assert results[0]["renderer"].startswith("local/preview")
