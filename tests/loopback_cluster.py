"""A real two-node Ray cluster on loopback, for the cluster tests: run as a script, it starts a
head node (GCS, dashboard with the Jobs API) and a second node joining it, prints one JSON line
(the dashboard address and each node's CPUs), and stops both when its stdin closes.

Why not two ``ray start`` commands: with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, the only setting
under which Ray 2.60 keeps a node's servers on loopback, ``ray start --address`` refuses to join
("multi-node clusters are not supported"); with it unset, the joining node rewrites 127.0.0.1 to
the machine's address and listens on every interface. Ray's own multi-node-on-one-machine tool
(``ray.cluster_utils.Cluster``) starts the same processes (gcs_server, raylets, dashboard,
agents) without that check. The caller sets the environment: the loopback switch, token auth
(RAY_AUTH_MODE, RAY_AUTH_TOKEN) and RAY_TMPDIR, so that nothing lands in the shared /tmp/ray.
"""

import json
import os
import socket
import sys
import time
import urllib.request

from ray.cluster_utils import Cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_jobs_api(dashboard: str, deadline: float) -> None:
    request = urllib.request.Request(f"{dashboard}/api/jobs/",
                                     headers={"Authorization": f"Bearer {os.environ['RAY_AUTH_TOKEN']}"})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main() -> None:
    # Every listening port is chosen here: Ray's fixed defaults (8265, 52365 for the agent, 6379)
    # collide with other Ray instances on the machine.
    # Waits are generous (Ray's default is 30 s): test machines are shared, 2 cores, load averages of 10-50 seen.
    node = {"num_cpus": 1, "object_store_memory": 200 * 2**20, "wait": False}
    cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
        **node, "gcs_server_port": free_port(), "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": free_port(), "dashboard_agent_listen_port": free_port(),
    })
    cluster.add_node(**node, dashboard_agent_listen_port=free_port())
    cluster.wait_for_nodes(timeout=180)
    dashboard = f"http://{cluster.webui_url}"
    wait_for_jobs_api(dashboard, time.monotonic() + 180)
    print(json.dumps({"dashboard": dashboard, "gcs": cluster.address, "node_cpus": [node["num_cpus"]] * 2}), flush=True)
    sys.stdin.read()
    cluster.shutdown()


if __name__ == "__main__":
    main()
