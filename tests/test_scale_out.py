"""Beyond one process (issue 14): served generators over the OpenAI Images API, several endpoints behind one client,
and `serve-generator` driving a GCR run whose sketch critic and grader still work across the wire."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import free_port, run_cli
from image_servers import ImageFault, ImageServer
from rationalrewards.agents.served_generator import ServedGenerator
from rationalrewards.plumbing.http import HttpEndpoints
from rationalrewards.rewardmodel.errors import RewardRequestError, RewardServerError, RewardTimeoutError
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.schemas import Critique, CritiqueRequest
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.scene import load_scene

PROMPT = "a photo of three red apples"


def _client(url: str | list[str], out: Path, **kw: object) -> ServedGenerator:
    return ServedGenerator(url, out, **({"max_retries": 3, "retry_max_wait": 0.01, "timeout": 5.0} | kw))  # type: ignore[arg-type]


def _generate(client: ServedGenerator, prompts: list[str], seeds: list[int], sources: list | None = None) -> list:
    async def go() -> list:
        try:
            return await client.generate(prompts, seeds, sources)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_served_sketch_images_equal_local_ones_and_carry_their_scene_graphs(tmp_path: Path) -> None:
    with ImageServer(tmp_path / "server") as server:
        [made] = _generate(_client(server.base_url, tmp_path / "client", trust_scenes=True), [PROMPT], [3])
        trusted = _client(server.base_url, tmp_path / "client", trust_scenes=True)
        [edited] = _generate(trusted, ["make the apples blue"], [4], [made.image])
    [local] = asyncio.run(SketchGenerator(tmp_path / "local").generate([PROMPT], [3]))
    assert made.image.sha256 == local.image.sha256  # same prompt and seed: same image, wherever it was made
    assert load_scene(made.image) == load_scene(local.image)  # the scene graph travelled with it
    assert Path(made.image.uri).is_relative_to(tmp_path / "client")
    scene = load_scene(edited.image)
    assert scene.source_sha256 == made.image.sha256 and edited.source_image == made.image
    assert {o.color for o in scene.objects if o.cls == "apple"} <= {"blue"}
    [critique] = asyncio.run(SketchOracle().critique([CritiqueRequest(prompt=PROMPT, image=made.image)]))
    assert isinstance(critique, Critique)  # the sketch critic reads images made across the wire


@pytest.mark.parametrize(
    "fault",
    [
        ImageFault(status=500),
        ImageFault(status=503, body=b"<html>overloaded</html>"),
        ImageFault(status=200, body=b'{"data": [{"b64_json": "bm90IGFuIGltYWdl"}]}'),  # base64 of "not an image"
        ImageFault(status=200, body=b'{"data": []}'),
        ImageFault(status=200, body=b"\xff\xfe garbage"),
        ImageFault(status=200, delay=2.0),  # past the 1 s attempt timeout
    ],
    ids=["500", "503-html", "not-an-image", "no-image", "not-utf8", "timeout"],
)
def test_transient_generator_faults_are_retried_into_a_real_image(tmp_path: Path, fault: ImageFault) -> None:
    with ImageServer(tmp_path / "server") as server:
        server.fail_next(fault)
        [made] = _generate(_client(server.base_url, tmp_path / "client", timeout=1.0), [PROMPT], [3])
        assert server.script.requests == 2
    assert image_ref_from_path(made.image.uri).sha256 == made.image.sha256
    assert len(list((tmp_path / "client").rglob("*.png"))) == 1  # the garbage was never kept as an image


def test_a_rejected_request_is_not_retried_and_a_server_that_stays_down_raises(tmp_path: Path) -> None:
    with ImageServer(tmp_path / "server") as server:
        server.fail_next(ImageFault(status=400, body=b'{"error": {"message": "bad size"}}'))
        with pytest.raises(RewardRequestError, match="bad size"):
            _generate(_client(server.base_url, tmp_path / "client"), [PROMPT], [3])
        assert server.script.requests == 1
        server.fail_next(*[ImageFault(status=500)] * 4)
        with pytest.raises(RewardServerError, match="failed after 4 attempt"):
            _generate(_client(server.base_url, tmp_path / "client"), [PROMPT], [3])
        server.fail_next(*[ImageFault(delay=1.5)] * 2)
        with pytest.raises(RewardTimeoutError):
            _generate(_client(server.base_url, tmp_path / "client", timeout=1.0, max_retries=1), [PROMPT], [3])
    assert not list((tmp_path / "client").rglob("*.png"))  # no placeholder image for a prompt that failed
    with ImageServer(tmp_path / "server") as server:  # the server itself refuses what it cannot honour
        bad = _client(server.base_url, tmp_path / "client", size=512)
        with pytest.raises(RewardRequestError, match="size 256"):
            _generate(bad, [PROMPT], [3])


def test_requests_spread_over_endpoints_and_a_dead_one_is_ejected(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with ImageServer(tmp_path / "a", latency=0.05) as a, ImageServer(tmp_path / "b", latency=0.05) as b:
        client = _client([a.base_url, dead, b.base_url], tmp_path / "client", concurrency=8)
        made = _generate(client, [PROMPT] * 24, list(range(24)))
        assert len({m.image.sha256 for m in made}) == 24  # every prompt has its own real image
        assert a.script.requests + b.script.requests == 24
        assert min(a.script.requests, b.script.requests) >= 6  # the least-busy rule spreads the load
        dead_endpoint = next(e for e in client.http.endpoints if e.url == dead)
        assert dead_endpoint.completed == 0 and dead_endpoint.out_until > 0  # taken out
        assert dead_endpoint.sent <= 6  # ... after a few tries, not one per request


def test_an_ejected_endpoint_comes_back_after_its_cooldown() -> None:
    endpoints = HttpEndpoints(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"], eject_after=2, cooldown=0.05)
    first, second = endpoints.endpoints
    from rationalrewards.plumbing.http import Transient

    for _ in range(2):
        endpoints._failed(first, Transient("down"))
    assert all(endpoints.pick() is second for _ in range(20))
    time.sleep(0.06)
    assert any(endpoints.pick() is first for _ in range(40))  # on probation: it gets requests again
    endpoints._failed(first, Transient("still down"))  # one failure on probation: out again, for longer
    assert first.cooldown == pytest.approx(0.1) and not first.available(time.monotonic())
    with pytest.raises(ValueError, match="twice"):
        HttpEndpoints(["http://127.0.0.1:1", "http://127.0.0.1:1/v1"])


@pytest.mark.slow
def test_refine_through_serve_generator_with_two_servers_keeps_the_sketch_critic_and_grader(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "rationalrewards.cli.main", "serve-generator", "sketch", "--port", str(port),
             "--work-dir", str(tmp_path / f"server{port}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]  # fmt: skip
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        asyncio.run(HttpEndpoints(urls).wait_until_healthy(60, every=True))
        suite = tmp_path / "suite.jsonl"
        run_cli("sketch", "suite", "--n", "6", "--out", str(suite), check=True)
        args = ["refine", "--suite", str(suite), "--generator", urls[0], "--generator", urls[1], "--grader", "sketch",
                "--trust-generator-scenes"]  # fmt: skip
        result = run_cli(*args, "--out", str(tmp_path / "run"), "--json", check=True)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    summary = json.loads(result.stdout)
    assert summary["finished"] == 6 and summary["failed"] == 0
    assert summary["accuracy_final"] is not None  # graded from the scene graphs that came over the wire
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    assert ",".join(url + "/v1" for url in urls) in json.dumps(settings)  # specs as parsed: normalised API roots


@pytest.fixture(scope="module")
def postgres_uri(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A real PostgreSQL 16 (pgserver), its data under a temporary folder (pgserver opens its parents' permissions)."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


def _results(run: Path) -> dict[str, float | None]:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    return {row["sample_id"]: row["reward_final"] for row in rows}


@pytest.mark.slow
def test_two_shards_share_one_postgres_database_resume_and_merge_into_one_run(
    tmp_path: Path, postgres_uri: str
) -> None:
    suite = tmp_path / "suite.jsonl"
    run_cli("sketch", "suite", "--n", "10", "--out", str(suite), check=True)
    common = ["refine", "--suite", str(suite), "--preset", "deep", "--checkpointer", postgres_uri, "--json"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "rationalrewards.cli.main", *common, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]  # fmt: skip
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    assert [json.loads(out)["finished"] for out, _ in outputs] == [5, 5]  # disjoint halves
    again = run_cli(*common, "--shard", "1/2", "--out", str(tmp_path / "s1"), check=True)  # resume: nothing to redo
    assert json.loads(again.stdout)["finished"] == 5
    merged = run_cli("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all"), "--json")
    assert merged.returncode == 0, merged.stderr
    summary = json.loads(merged.stdout)
    assert summary["finished"] == 10 and summary["shards"] == ["0/2", "1/2"]
    assert (tmp_path / "all" / "report.html").exists() and summary["accuracy_final"] is not None
    single = run_cli("refine", "--suite", str(suite), "--preset", "deep", "--out", str(tmp_path / "one"), "--json")
    assert _results(tmp_path / "all") == _results(tmp_path / "one")  # sharded + merged = one run
    import psycopg

    with psycopg.connect(postgres_uri) as conn:
        left = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    assert left == (0,)  # finished threads were pruned from the shared database
    refused = run_cli("merge", str(tmp_path / "s0"), str(tmp_path / "one"), "--out", str(tmp_path / "bad"))
    assert (
        refused.returncode == 2 and "is not a shard i/N of a job" in refused.stderr
    )  # a single run is not a shard of this job
    assert single.returncode == 0


def test_parrot_shards_merge_into_one_export(tmp_path: Path) -> None:
    common = ["parrot", "--world", "sketch", "--pairs-count", "16", "--teacher-noise", "0.3", "--json"]
    cards = [
        json.loads(run_cli(*common, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}"), check=True).stdout)
        for i in range(2)
    ]
    whole = json.loads(run_cli(*common, "--out", str(tmp_path / "one"), check=True).stdout)
    merged = json.loads(
        run_cli(
            "merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all"), "--json", check=True
        ).stdout
    )
    assert cards[0]["finished"] + cards[1]["finished"] == merged["finished"] == whole["finished"]
    assert merged["kept"] == whole["kept"] == cards[0]["kept"] + cards[1]["kept"]

    def answers(run: str) -> list[str]:  # the teacher's rationales (image paths differ between run directories)
        rows = (tmp_path / run / "pairwise.jsonl").read_text().splitlines()
        return sorted(json.dumps(json.loads(row)["messages"][-1]) for row in rows)

    assert answers("all") == answers("one") and len(answers("all")) == merged["kept"]
    assert (tmp_path / "all" / "score_histograms.png").exists()


@pytest.mark.slow
def test_a_ray_pool_of_sketch_replicas_runs_refine_and_survives_a_dead_replica(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import os

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from rationalrewards.agents.factory import generator_from_spec, reward_model_from_spec
    from rationalrewards.agents.ray_pool import RayGeneratorPool

    pool = generator_from_spec("ray:sketch", tmp_path / "images", replicas=2)
    assert isinstance(pool, RayGeneratorPool)
    try:
        made = asyncio.run(pool.generate([PROMPT] * 4, [0, 1, 2, 3]))
        [local] = asyncio.run(SketchGenerator(tmp_path / "local").generate([PROMPT], [2]))
        assert made[2].image.sha256 == local.image.sha256 and load_scene(made[2].image) == load_scene(local.image)
        [edited] = asyncio.run(pool.generate(["make the apples blue"], [5], [made[0].image]))
        assert load_scene(edited.image).source_sha256 == made[0].image.sha256  # the source travelled with its scene

        async def spread() -> list:
            return list(await asyncio.gather(*(pool.generate([PROMPT], [k]) for k in range(8))))

        assert len({m[0].image.sha256 for m in asyncio.run(spread())}) == 8
        import ray

        ray.kill(pool.pool.actors[0], no_restart=True)  # a replica dies: its calls go to the other one
        again = asyncio.run(spread())
        assert [m[0].image.sha256 for m in again] == [m[0].image.sha256 for m in asyncio.run(spread())]
        from rationalrewards.rewardmodel.testing import FakeRewardModel

        critic = reward_model_from_spec(
            "ray:fake", replicas=2
        )  # images cross as data URLs: the replicas read no local path
        request = CritiqueRequest(prompt=PROMPT, image=made[1].image)
        [remote] = asyncio.run(critic.critique([request]))
        [local_critique] = asyncio.run(FakeRewardModel().critique([request]))
        assert isinstance(remote, Critique) and remote.scores == local_critique.scores
    finally:
        import ray

        ray.shutdown()
    refine_with_ray = run_cli(
        "refine", "a photo of two cats", "--generator", "ray:sketch", "--replicas", "2",
        "--out", str(tmp_path / "run"), "--json", env={"RAY_USAGE_STATS_ENABLED": "0"},
    )  # fmt: skip
    assert refine_with_ray.returncode == 0, refine_with_ray.stderr
    result = json.loads(refine_with_ray.stdout)
    assert result["finished"] == 1 and result["accuracy_final"] is not None  # graded: scenes came back from the actors
