"""extract's local Dask cluster speaks TLS with credentials of its own: another user cannot join it."""
import pytest

from extract import pipeline

pytestmark = pytest.mark.slow


def test_the_local_cluster_listens_on_tls_and_refuses_strangers():
    from distributed import Client
    from distributed.security import Security
    client, cluster = pipeline.make_client(pipeline.Options(workers=1, threads_per_worker=1, device="cpu"))
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        assert all(w.startswith("tls://") for w in client.scheduler_info()["workers"])
        assert client.submit(sum, [1, 2], pure=False).result(timeout=60) == 3       # our own client works
        # Another user of the machine: without credentials, over plain TCP, or with certificates of
        # their own making, they get no connection and so run nothing in our workers.
        for attempt in (lambda: Client(address, timeout="5s"),
                        lambda: Client(address.replace("tls://", "tcp://"), timeout="5s"),
                        lambda: Client(address, security=Security.temporary(), timeout="5s")):
            try:
                stranger = attempt()
            except Exception:   # refused (how depends on the attempt: TLS handshake, timeout, no context)
                continue
            stranger.close()
            pytest.fail("a client without this run's credentials connected to the local cluster")
    finally:
        client.close()
        cluster.close()
