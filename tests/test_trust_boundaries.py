"""The trust boundaries: what a hostile file, server, request or shard set can make the project do. Each test here
failed on the code before its fix (docs/reliability.md lists them by finding)."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest

from helpers import run_cli
from rationalrewards.rewardmodel.errors import ImageTooLargeError, InvalidImageError
from rationalrewards.rewardmodel.images import (
    decode_image,
    image_ref_from_path,
    read_image_bytes,
    set_max_image_pixels,
)

# ---------------------------------------------------------------- one image intake ------------------------------------


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    with pytest.raises(InvalidImageError, match="not a regular file \\(a FIFO\\)"):
        read_image_bytes(fifo)
    for special in (fifo, Path("/dev/zero")):
        result = run_cli("critique", str(special), "--prompt", "a cat", timeout=60)
        assert result.returncode == 2 and "not a regular file" in result.stderr and "Traceback" not in result.stderr
    for critic, message in (
        ("py:no_such_module:f", "cannot import the critic module"),
        ("py:os:nothing", "no function"),
    ):
        result = run_cli("critique", str(fifo), "--prompt", "a cat", "--critic", critic, timeout=60)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "link"])
def test_devices_and_links_to_them_are_refused_before_reading(tmp_path: Path, device: str) -> None:
    path = Path(device)
    if device == "link":
        path = tmp_path / "zero.png"
        path.symlink_to("/dev/zero")
    with pytest.raises(InvalidImageError, match="character device"):
        read_image_bytes(path)
    with pytest.raises(InvalidImageError, match="not a regular file"):
        image_ref_from_path(f"file://{path}")


def test_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match=r"not a regular file \(a directory\)"):
        read_image_bytes(tmp_path)


def test_file_and_data_url_bytes_are_capped_from_the_pixel_limit(tmp_path: Path) -> None:
    set_max_image_pixels(1000)  # 8 KB per pixel budget + 1 MiB of headers: ~1.01 MB
    try:
        big = tmp_path / "big.png"
        big.write_bytes(b"\x89PNG" + b"\0" * (2 << 20))
        with pytest.raises(ImageTooLargeError, match="MiB"):
            read_image_bytes(big)
        url = "data:image/png;base64," + base64.b64encode(b"\0" * (2 << 20)).decode()
        with pytest.raises(ImageTooLargeError, match="data URL"):
            read_image_bytes(url)
    finally:
        set_max_image_pixels(None)


@pytest.mark.parametrize("kind", ["EPS", "PDF", "TGA", "PPM", "ICO"])
def test_formats_outside_the_allow_list_never_reach_their_plugin(kind: str) -> None:
    """EPS would run Ghostscript where it is installed; no plugin outside the allow-list gets the bytes."""
    from PIL import Image

    payloads = {
        "EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "PDF": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    }
    if kind in payloads:
        data = payloads[kind]
    else:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), "red").save(buffer, format=kind)
        data = buffer.getvalue()
    with pytest.raises(InvalidImageError, match="not one of PNG, JPEG"):
        decode_image(data, "upload")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), "upload").size == (8, 8)


# ---------------------------------------------------------------- checkpoints load no code ----------------------------


class _Planted:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {os.environ.get('RR_MARKER', '/tmp/rr-planted')}",))


@pytest.mark.slow
def test_a_planted_training_state_runs_no_code(tmp_path: Path) -> None:
    import torch

    out = tmp_path / "gen"
    out.mkdir()
    marker = tmp_path / "pwned"
    os.environ["RR_MARKER"] = str(marker)
    try:
        torch.save({"step": 1, "payload": _Planted()}, out / "train_state.pt")
    finally:
        del os.environ["RR_MARKER"]
    result = run_cli("experiment", "train-sketch-generator", "--out", str(out), "--smoke", timeout=300)
    assert not marker.exists()
    assert result.returncode == 2 and "cannot resume" in result.stderr and "Traceback" not in result.stderr


def test_no_module_loads_a_pickle_that_could_run_code() -> None:
    """Every `torch.load` in the library passes `weights_only=True`; nothing calls `pickle.load`."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in (
        "plumbing",
        "rewardmodel",
        "agents",
        "sketch",
        "graphs",
        "runtime",
        "training",
        "experiments",
        "cli",
    ):
        for path in (root / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "torch.load(" in line and "weights_only=True" not in line:
                    offenders.append(f"{path.relative_to(root)}:{number}")
                if "pickle.load" in line:
                    offenders.append(f"{path.relative_to(root)}:{number}")
    assert offenders == []


# ---------------------------------------------------------------- distillation rows ----------------------------------


@pytest.mark.parametrize("value", ["not bytes", [1, 2, 3], {"nested": 1}, 10**9, 3.5])
def test_distill_row_image_bytes_of_the_wrong_type_are_row_errors_that_allocate_nothing(
    tmp_path: Path, value: object
) -> None:
    from rationalrewards.training.distill_data import RowError, parse_row

    row = {
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "judge"}]},
            {"role": "assistant", "content": "# Summary: fine"},
        ],
        "images": [{"bytes": value, "path": None}],
    }
    with pytest.raises(RowError, match="encoded image bytes"):
        parse_row(row, tmp_path, "rows.jsonl:1")


def test_distillation_reads_images_through_the_pixel_limit(tmp_path: Path) -> None:
    """A small PNG that unpacks to a huge image (a bomb) is refused from its header, in the collator's reader too."""
    from PIL import Image

    from rationalrewards.training._distill_collator import load_image
    from rationalrewards.training.distill_data import image_size

    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # 400 megapixels, a few KB on disk
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000
    for reader in (load_image, image_size):
        with pytest.raises(ImageTooLargeError, match="too large"):
            reader(bomb)


# ---------------------------------------------------------------- secrets ------------------------------------------------


def _every_artefact(folder: Path, *texts: str) -> str:
    written = [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()]
    return "\n".join([*written, *texts])


def _forms(secret: str) -> list[str]:
    import json
    from urllib.parse import quote, quote_plus

    return [secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]]


@pytest.mark.slow
def test_an_api_key_echoed_by_a_server_in_any_encoding_reaches_no_artefact(tmp_path: Path) -> None:
    """The key comes back in error bodies as it is, percent-encoded and JSON-escaped; spans are exported to stderr."""
    import json
    from urllib.parse import quote

    from rationalrewards.rewardmodel.mock_server import Fault, MockServer, free_port

    key = 'sk-ab+cd/ef=gh"ij'
    echo = f"bad key {key} | {quote(key, safe='')} | {quote(key)} | {json.dumps(key)}".encode()
    with MockServer(free_port()) as server:
        for _ in range(40):
            server.state.script.append(Fault(status=500, body=b'{"error": "' + echo.replace(b'"', b"'") + b'"}'))
            server.state.script.append(Fault(status=401, body=echo))
        env = {"RATIONALREWARDS_API_KEY": key, "OTEL_TRACES_EXPORTER": "console"}
        out = tmp_path / "run"
        result = run_cli(
            "refine", "a photo of two cats", "--critic", server.base_url, "--model", "mock-critic", "--out", str(out),
            "--json", env=env,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]  # the prompt failed on a rejected key, and says so
    assert '"name": "node.critique"' in result.stderr  # the spans were exported (with the error's stack), and read here
    everything = _every_artefact(out, result.stdout, result.stderr)
    for form in _forms(key):
        assert form not in everything, form


@pytest.mark.slow
def test_a_password_in_a_url_reaches_no_artefact_no_span_no_lock_file(tmp_path: Path) -> None:
    from rationalrewards.rewardmodel.mock_server import MockServer, free_port

    password = "pa:ss/w+rd%x"
    from urllib.parse import quote

    with MockServer(free_port()) as server:
        url = f"http://alice:{quote(password, safe='')}@127.0.0.1:{server.port}"
        out = tmp_path / "run"
        result = run_cli(
            "refine", "a photo of two cats", "--critic", url, "--generator", "sketch", "--model", "mock-critic",
            "--out", str(out), "--json", env={"OTEL_TRACES_EXPORTER": "console"},
        )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-2000:]
    everything = _every_artefact(out, result.stdout, result.stderr)
    for form in _forms(password):
        assert form not in everything, form


@pytest.mark.parametrize(
    "dsn",
    ["postgres://alice:Pw-12345@[::1/rr", "postgres://alice:Pw-12345@host:notaport/rr", "mysql://alice:Pw-12345@h/db"],
)
def test_a_malformed_checkpointer_url_is_one_line_without_its_password(tmp_path: Path, dsn: str) -> None:
    result = run_cli("refine", "a cat", "--checkpointer", dsn, "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert "Pw-12345" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_redirect_names_only_where_it_points(tmp_path: Path, png_file: Path) -> None:
    from rationalrewards.rewardmodel.mock_server import Fault, MockServer, free_port

    with MockServer(free_port()) as server:
        server.state.script.append(
            Fault(status=302, body=b"", headers={"location": "https://eve:stolen-pw@evil.example/v1?token=abcd1234"})
        )
        result = run_cli("critique", str(png_file), "-p", "a red ball", "--critic", server.base_url, "--model", "m")
    assert result.returncode == 2 and "redirected" in result.stderr and "evil.example/v1" in result.stderr
    assert "stolen-pw" not in result.stderr and "abcd1234" not in result.stderr


def test_an_api_key_and_a_url_login_together_are_refused_once_up_front(tmp_path: Path, png_file: Path) -> None:
    result = run_cli(
        "critique", str(png_file), "-p", "a red ball", "--critic", "http://bob:pw-1234@127.0.0.1:9/v1",
        env={"RATIONALREWARDS_API_KEY": "sk-something"},
    )  # fmt: skip
    # The URL's login wins over the environment's key (one header), so this is a connection error, not a clash...
    assert "pw-1234" not in result.stderr and "sk-something" not in result.stderr
    from rationalrewards.plumbing.http import HttpEndpoints
    from rationalrewards.plumbing.redact import Secret

    with pytest.raises(ValueError, match="not both"):  # ...and in Python, giving both is refused before any request
        HttpEndpoints("http://127.0.0.1:9", api_key="sk-something", credentials=Secret("bob:pw-1234"))


# ---------------------------------------------------------------- serve-generator's edge ------------------------------


class _Server:
    """`serve-generator sketch` in a subprocess on loopback, with its flags; stopped on exit."""

    def __init__(self, tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        import subprocess
        import sys

        from helpers import free_port

        self.port = free_port()
        self.work = tmp_path / f"server{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rationalrewards", "serve-generator", "sketch", "--port", str(self.port),
             "--work-dir", str(self.work), *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ | (env or {}),
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Server:
        from helpers import wait_for_http

        wait_for_http(self.url + "/health", self.process, timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    import httpx

    response = httpx.post(
        url, content=body, headers={"content-type": "application/json", **(headers or {})}, timeout=30
    )
    return response.status_code, response.text


@pytest.mark.slow
def test_serve_generator_needs_a_key_beyond_loopback_and_checks_it(tmp_path: Path) -> None:
    result = run_cli("serve-generator", "sketch", "--host", "0.0.0.0", "--port", "9", "--work-dir", str(tmp_path))
    assert result.returncode == 2 and "--api-key" in result.stderr and "Traceback" not in result.stderr
    with _Server(tmp_path, env={"RATIONALREWARDS_SERVE_API_KEY": "k-123456"}) as server:
        body = b'{"prompt": "a red ball"}'
        assert _post(server.url + "/v1/images/generations", body)[0] == 401
        assert _post(server.url + "/v1/images/generations", body, {"Authorization": "Bearer wrong"})[0] == 401
        status, text = _post(server.url + "/v1/images/generations", body, {"Authorization": "Bearer k-123456"})
        assert status == 200 and '"b64_json"' in text
        import httpx

        assert httpx.get(server.url + "/health").status_code == 200  # a load balancer's probe needs no key


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"prompt": "a red ball", "seed": Infinity}', 400),
        (b'{"prompt": "a red ball", "n": 1.9}', 400),
        (b'{"prompt": "a red ball", "n": true}', 400),
        (b'{"prompt": "a red ball", "seed": "3 "}', 400),
        (b"[" * 50_000 + b"]" * 50_000, 400),
        (b'{"prompt": "' + b"x" * 20_000 + b'"}', 400),
        (b"\xff\xfe not utf-8", 400),
        (b'{"prompt": "' + b"x" * (2 << 20) + b'"}', 413),
    ],
)
def test_malformed_generation_requests_are_4xx_never_500(tmp_path: Path, body: bytes, status: int) -> None:
    with _Server(tmp_path) as server:
        got, text = _post(server.url + "/v1/images/generations", body)
    assert got == status, text[:300]


@pytest.mark.slow
def test_malformed_edit_requests_are_4xx_and_uploads_leave_nothing_behind(tmp_path: Path, png_file: Path) -> None:
    import httpx

    with _Server(tmp_path) as server:
        edits = server.url + "/v1/images/edits"
        broken = httpx.post(
            edits, content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert broken.status_code == 400
        latin = httpx.post(
            edits, files={"image": png_file.read_bytes()}, data={"prompt": "make it blue".encode("utf-16")}
        )
        assert latin.status_code == 400
        garbage = httpx.post(edits, files={"image": b"GIF89a not really"}, data={"prompt": "make it blue"})
        assert garbage.status_code == 400 and str(server.work) not in garbage.text and "<upload>" not in garbage.text
        ok = httpx.post(
            edits, files={"image": png_file.read_bytes()}, data={"prompt": "make the ball blue"}, timeout=30
        )
        assert ok.status_code in (200, 400)  # the sketch world edits only its own images; either way, nothing is kept
        uploads = server.work / "uploads"
        assert not uploads.exists() or list(uploads.rglob("*")) == []


@pytest.mark.slow
def test_a_flood_of_half_sent_requests_neither_exhausts_the_server_nor_blocks_health(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with _Server(tmp_path, "--max-connections", "64", "--request-timeout", "3") as server:
        sockets = []
        try:
            for _ in range(400):  # six times the cap, each stuck half-way through its headers
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                s.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
                sockets.append(s)
            started = time.monotonic()
            assert httpx.get(server.url + "/health", timeout=10).status_code == 200
            assert time.monotonic() - started < 5
            time.sleep(4)  # past the request deadline: the stalled ones are gone
            health = httpx.get(server.url + "/health", timeout=10).json()
            assert health["connections"] <= 2
        finally:
            for s in sockets:
                s.close()
        status, _ = _post(server.url + "/v1/images/generations", b'{"prompt": "a red ball"}')
        assert status == 200


# ---------------------------------------------------------------- served results are checked -------------------------


def _answer(image: bytes, scene: object = None, count: int = 1) -> bytes:
    import json

    item: dict[str, object] = {"b64_json": base64.b64encode(image).decode(), "seed": 0}
    if scene is not None:
        item["scene"] = scene
    return json.dumps({"created": 0, "data": [item] * count}).encode()


def _png(size: int, color: str = "white") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_served_scene_graph_is_ignored_unless_trusted_and_never_restamped(tmp_path: Path) -> None:
    """A server sending blank images with perfect scene graphs: untrusted, the scene is ignored (the sketch critic then
    has nothing to read and abstains; it never scores the blank 1.0); trusted, a scene describing other bytes is refused."""
    import asyncio
    import hashlib

    from image_servers import ImageFault, ImageServer
    from rationalrewards.agents.served_generator import ServedGenerator
    from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest
    from rationalrewards.sketch.failures import FailureModel
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.oracle import SketchOracle

    prompt = "a photo of three red apples"
    blank = _png(256)
    perfect = SketchGenerator(tmp_path / "truth", failures=FailureModel.perfect()).scene_for(prompt, 0)
    lying = perfect.model_copy(update={"image_sha256": hashlib.sha256(blank).hexdigest()}).model_dump(mode="json")
    other = perfect.model_copy(update={"image_sha256": "0" * 64}).model_dump(mode="json")

    async def one(client: ServedGenerator) -> object:
        try:
            return (await client.generate([prompt], [0]))[0]
        finally:
            await client.aclose()

    with ImageServer(tmp_path / "server") as server:
        server.fail_next(ImageFault(status=200, body=_answer(blank, lying)))
        untrusted = asyncio.run(one(ServedGenerator(server.base_url, tmp_path / "a", max_retries=0)))
        assert untrusted.sidecar is None
        [judged] = asyncio.run(SketchOracle().critique([CritiqueRequest(prompt=prompt, image=untrusted.image)]))
        assert isinstance(judged, Abstention)  # no scene to read: no score, certainly not a perfect one
        server.fail_next(*[ImageFault(status=200, body=_answer(blank, other))] * 2)
        from rationalrewards.rewardmodel.errors import RewardServerError

        with pytest.raises(RewardServerError, match="another image"):
            asyncio.run(one(ServedGenerator(server.base_url, tmp_path / "b", max_retries=1, trust_scenes=True)))


@pytest.mark.parametrize(("count", "size", "message"), [(2, 64, "2 images for a request of one"), (1, 32, "32x32")])
def test_a_served_answer_must_match_the_request(tmp_path: Path, count: int, size: int, message: str) -> None:
    import asyncio

    from image_servers import ImageFault, ImageServer
    from rationalrewards.agents.served_generator import ServedGenerator
    from rationalrewards.rewardmodel.errors import RewardServerError

    with ImageServer(tmp_path / "server") as server:
        server.fail_next(*[ImageFault(status=200, body=_answer(_png(size), count=count))] * 2)
        client = ServedGenerator(server.base_url, tmp_path / "c", size=64, max_retries=1)

        async def go() -> None:
            try:
                await client.generate(["a red ball"], [0])
            finally:
                await client.aclose()

        with pytest.raises(RewardServerError, match=message):
            asyncio.run(go())


# ---------------------------------------------------------------- critics from Python functions -----------------------


def _request(tmp_path: Path, prompt: str = "a red ball") -> object:
    from rationalrewards.rewardmodel.images import image_ref_from_path
    from rationalrewards.rewardmodel.schemas import CritiqueRequest

    path = tmp_path / "x.png"
    path.write_bytes(_png(32, "red"))
    return CritiqueRequest(prompt=prompt, image=image_ref_from_path(path))


def _judge(function: object, request: object, **options: object) -> object:
    import asyncio

    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel

    [result] = asyncio.run(FunctionRewardModel(function, **options).critique([request]))  # type: ignore[arg-type, list-item]
    return result


@pytest.mark.parametrize("reward", [0.0, 0.25, 1, 1.0])
def test_a_float_in_the_unit_interval_is_a_scalar_reward_read_back_exactly(tmp_path: Path, reward: float) -> None:
    from rationalrewards import Critique, reward_from_critique

    result = _judge(lambda _: reward, _request(tmp_path))
    assert isinstance(result, Critique) and reward_from_critique(result) == pytest.approx(float(reward))
    assert result.scores["text_rendering"] is None  # nothing asked for text


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (True, "returned bool"),
        (None, "returned None"),
        (1.5, "not a reward in [0, 1]"),
        (-0.1, "not a reward in [0, 1]"),
        (float("nan"), "not a reward in [0, 1]"),
        (float("inf"), "not a reward in [0, 1]"),
        ([0.5], "returned list"),
        ({"text_faithfulness": True, "physical_quality": 3.0, "text_rendering": None}, "not a number"),
        ("not a critique at all", "lacks a readable score"),
    ],
)
def test_a_function_answer_that_is_no_reward_is_an_abstention_naming_why(
    tmp_path: Path, answer: object, why: str
) -> None:
    from rationalrewards import Abstention

    result = _judge(lambda _: answer, _request(tmp_path))
    assert isinstance(result, Abstention) and result.reason == "parse_error" and why in result.detail


def test_a_function_that_raises_abstains_and_one_that_hangs_times_out_without_blocking(tmp_path: Path) -> None:
    import time

    from rationalrewards import Abstention

    def broken(_: object) -> float:
        raise RuntimeError("the model crashed")

    raised = _judge(broken, _request(tmp_path))
    assert isinstance(raised, Abstention) and raised.reason == "server_error" and "the model crashed" in raised.detail
    started = time.monotonic()
    stuck = _judge(lambda _: time.sleep(30), _request(tmp_path), timeout=0.5)
    assert isinstance(stuck, Abstention) and stuck.reason == "timeout"
    assert time.monotonic() - started < 5  # asyncio.run returned: nothing waited for the stuck thread


@pytest.mark.slow
def test_rl_with_a_critic_that_hangs_stops_at_its_reward_deadline(tmp_path: Path) -> None:
    import time

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red ball\n")
    started = time.monotonic()
    result = run_cli(
        "rl", "--tiny", "--prompts", str(prompts), "--critic", "py:rl_rewards:hangs", "--out", str(tmp_path / "rl"),
        "--group-size", "2", "--prompts-per-step", "1", "--sample-steps", "2", "--max-steps", "1", "--eval-every", "0",
        "--reward-timeout", "3", env={"PYTHONPATH": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "no answer within 3 s" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 120


# ---------------------------------------------------------------- merge --------------------------------------------------


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-prompt refine job run as 3 shards (sketch world), each complete."""
    root = tmp_path_factory.mktemp("shards")
    suite = root / "suite.jsonl"
    run_cli("sketch", "suite", "--n", "6", "--out", str(suite), check=True)
    for i in range(3):
        run_cli("refine", "--suite", str(suite), "--shard", f"{i}/3", "--out", str(root / f"s{i}"), check=True)
    return root


def _merge(*args: str) -> object:
    return run_cli("merge", *args)


def test_merge_needs_every_shard_unless_partial(three_shards: Path, tmp_path: Path) -> None:
    import json

    two = [str(three_shards / "s0"), str(three_shards / "s1")]
    refused = _merge(*two, "--out", str(tmp_path / "m"))
    assert refused.returncode == 2 and "shard 2/3 (not given)" in refused.stderr and not (tmp_path / "m").exists()
    partial = _merge(*two, "--out", str(tmp_path / "m"), "--partial", "--json")
    assert partial.returncode == 0, partial.stderr
    summary = json.loads(partial.stdout)
    assert summary["partial"] and summary["missing"] == ["shard 2/3 (not given)"] and summary["finished"] == 4


def test_merge_refuses_a_shard_being_written_and_an_incomplete_one(three_shards: Path, tmp_path: Path) -> None:
    import shutil

    from filelock import FileLock

    shards = [str(three_shards / f"s{i}") for i in range(3)]
    lock = FileLock(three_shards / "s1" / ".lock", thread_local=False, is_singleton=False)
    with lock:
        held = _merge(*shards, "--out", str(tmp_path / "m"))
    assert held.returncode == 2 and "shard 1/3" in held.stderr and "still being written" in held.stderr
    cut = tmp_path / "s2cut"
    shutil.copytree(three_shards / "s2", cut)
    lines = (cut / "results.jsonl").read_text().splitlines()
    (cut / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    short = _merge(shards[0], shards[1], str(cut), "--out", str(tmp_path / "m2"))
    assert short.returncode == 2 and "lacks 1 of 2 items" in short.stderr and not (tmp_path / "m2").exists()


@pytest.mark.parametrize(
    "bad_line",
    [
        '{"stop_reason": "passed"}',
        '["not", "an", "object"]',
        '{"sample_id": null, "stop_reason": "passed"}',
        '{"sample_id": "x"}',
    ],
)
def test_a_crafted_results_file_is_named_and_nothing_is_written(
    three_shards: Path, tmp_path: Path, bad_line: str
) -> None:
    import shutil

    crafted = tmp_path / "s1"
    shutil.copytree(three_shards / "s1", crafted)
    with (crafted / "results.jsonl").open("a") as f:
        f.write(bad_line + "\n")
    result = _merge(str(three_shards / "s0"), str(crafted), str(three_shards / "s2"), "--out", str(tmp_path / "m"))
    if bad_line.startswith("["):  # not an object: skipped as a torn line would be, and the shard is still complete
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2 and "results.jsonl: record" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.merging-*"))


def test_a_merged_report_works_with_the_shards_deleted(three_shards: Path, tmp_path: Path) -> None:
    import re
    import shutil

    copies = []
    for i in range(3):
        shutil.copytree(three_shards / f"s{i}", tmp_path / f"s{i}")
        copies.append(str(tmp_path / f"s{i}"))
    merged = _merge(*copies, "--out", str(tmp_path / "all"))
    assert merged.returncode == 0, merged.stderr
    for copy in copies:
        shutil.rmtree(copy)
    pages = list((tmp_path / "all" / "report").glob("page-*.html"))
    sources = [src for page in pages for src in re.findall(r'src="([^"]+)"', page.read_text())]
    assert sources and all((tmp_path / "all" / "report" / src).resolve().is_file() for src in sources)
    again = _merge(*[str(three_shards / f"s{i}") for i in range(3)], "--out", str(tmp_path / "all"))
    assert again.returncode == 2 and "--force-new" in again.stderr
    replaced = _merge(*[str(three_shards / f"s{i}") for i in range(3)], "--out", str(tmp_path / "all"), "--force-new")
    assert replaced.returncode == 0 and list(tmp_path.glob("all.replaced-*"))


# ---------------------------------------------------------------- numbers and names are never misread -----------------


@pytest.mark.parametrize("score", ["3½", "2¾ (minor flaws)", "3²", "٣", "3 ①", "N/A ½"])
def test_numerals_other_than_ascii_digits_are_refused_not_read_as_their_first_digit(score: str) -> None:
    from rationalrewards import CritiqueParseError, parse_critique, parse_pairwise

    critique = (
        "1. Text Faithfulness:\n## Justification: fine.\n## Score: " + score + "\n"
        "2. Physical and Visual Quality:\n## Justification: fine.\n## Score: 3\n"
        "3. Text Rendering:\n## Justification: none asked.\n## Score: N/A\n"
    )
    with pytest.raises(CritiqueParseError, match="numeral other than the digits 0-9"):
        parse_critique(critique, "t2i")
    pairwise = (
        "1. Text Faithfulness:\n## Justification: close.\n## Score A: "
        + score
        + "\n## Score B: 3\n## Winner: Image A\n"
        "2. Physical and Visual Quality:\n## Justification: same.\n## Score A: 3\n## Score B: 3\n## Winner: It's a tie\n"
        "3. Text Rendering:\n## Justification: none.\n## Score A: N/A\n## Score B: N/A\n## Winner: It's a tie\n"
    )
    with pytest.raises(CritiqueParseError, match="numeral other than the digits 0-9"):
        parse_pairwise(pairwise, "t2i")  # never a tie made from 3½ read as 3


@pytest.mark.parametrize(
    "prompt", ["a photo of a cat zorblax", "a photo of two dog glorbs", "a photo of a clock thing"]
)
def test_the_spec_reader_invents_no_class_around_a_known_one(prompt: str) -> None:
    from rationalrewards.sketch import parse_scene_spec
    from rationalrewards.sketch.spec import SceneSpecError

    with pytest.raises(SceneSpecError, match="is an object of its own"):
        parse_scene_spec(prompt)
    assert parse_scene_spec("a photo of a zorblax").model_dump()["include"] == [{"class": "zorblax", "count": 1}]
