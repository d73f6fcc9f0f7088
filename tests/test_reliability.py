"""What a hostile pass broke (issue 10), one test each: ambiguous scores, N/A where it is not allowed, numeric labels,
misread prompts, oversized images and answers, redirects, echoed secrets, markup injection, two writers on one run,
resumes with other inputs, and errors a user can act on. The linear-time parsing tests live in test_linear_parsing."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers import free_port
from helpers import run_cli as _cli
from rationalrewards.agents.suite import SuiteRow, read_suite, write_jsonl
from rationalrewards.rewardmodel import CritiqueParseError, CritiqueRequest, parse_critique, parse_pairwise
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.errors import (
    ImageTooLargeError,
    InvalidImageError,
    RewardRequestError,
    RewardServerError,
)
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.mock_server import Fault, MockServer
from rationalrewards.runtime.rundir import RunDirectory, RunDirectoryError
from rationalrewards.sketch.spec import SceneSpecError, parse_scene_spec

CRITIQUE = """# User Request Analysis
Four clocks.
# Detailed Judgement
1. Text Faithfulness:
## Justification: Three clocks.
## Score: {tf}
2. Physical and Visual Quality:
## Justification: Clean.
## Score: {pq}
3. Text Rendering:
## Justification: No text.
## Score: {tr}
# Summary: Count is off.
"""


# ------------------------------------------------------------------ wrong numbers ---------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "1e1",
        "3,5",
        "2-3",
        "2 - 3",
        "3 or 4",
        "3/4/5",
        "3/10",
        "3 out of 5",
        "75%",
        "3/0",
        "two",
        "-1",
        "7",
        "10",
        "3 (2 minor flaws)",
        "N/A 3",
    ],
)
def test_ambiguous_score_spellings_are_parse_errors(spelling: str) -> None:
    text = CRITIQUE.format(tf=spelling, pq="3.5", tr="N/A")
    with pytest.raises(CritiqueParseError) as info:
        parse_critique(text, "t2i")
    assert info.value.raw_text == text


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("3", 3.0),
        ("**3.5**", 3.5),
        ("3.5/4", 3.5),
        ("3.5 / 4.0", 3.5),
        ("3 out of 4", 3.0),
        ("2.5 (clear anatomical flaw)", 2.5),
        ("4.5", 4.0),
        ("`2`", 2.0),
    ],
)
def test_one_number_on_the_scale_is_read(spelling: str, value: float) -> None:
    critique = parse_critique(CRITIQUE.format(tf=spelling, pq="3.5", tr="N/A"), "t2i")
    assert critique.scores["text_faithfulness"] == value


def test_repeated_score_lines_must_agree() -> None:
    twice = CRITIQUE.format(tf="2\n## Score: 3", pq="3.5", tr="N/A")
    with pytest.raises(CritiqueParseError, match="written 2 times with different values"):
        parse_critique(twice, "t2i")
    same = parse_critique(CRITIQUE.format(tf="3\n## Score: 3", pq="3.5", tr="N/A"), "t2i")
    assert same.scores["text_faithfulness"] == 3.0 and any("written 2 times" in w for w in same.warnings)


def test_na_is_only_allowed_for_text_rendering() -> None:
    with pytest.raises(CritiqueParseError, match="Text Faithfulness is N/A"):
        parse_critique(CRITIQUE.format(tf="N/A", pq="4", tr="N/A"), "t2i")
    with pytest.raises(CritiqueParseError, match="Physical and Visual Quality is N/A"):
        parse_critique(CRITIQUE.format(tf="3", pq="n/a", tr="N/A"), "t2i")
    pairwise = (
        "1. Text Faithfulness:\n## Score A: N/A\n## Score B: 3\n2. Physical and Visual Quality:\n## Score A: 3\n"
        "## Score B: 3\n3. Text Rendering:\n## Score A: N/A\n## Score B: N/A\n# Summary: x"
    )
    with pytest.raises(CritiqueParseError, match="only Text Rendering may be N/A"):
        parse_pairwise(pairwise, "t2i")
    assert parse_critique(CRITIQUE.format(tf="3", pq="4", tr="N/A"), "t2i").scores["text_rendering"] is None


# ------------------------------------------------------------------ the sketch world's ground truth -----------------


@pytest.mark.parametrize(
    "prompt",
    [
        "hello four clocks",
        "x a photo of four clocks",
        "one million clocks",
        "-3 clocks",
        "3.5 clocks",
        "a clock that is blue and red",
        "a red",
        "four hundred dogs",
    ],
)
def test_the_spec_reader_refuses_what_it_cannot_read_exactly(prompt: str) -> None:
    with pytest.raises(SceneSpecError):
        parse_scene_spec(prompt)


# ------------------------------------------------------------------ images ----------------------------------------


def _bomb(path: Path, side: int = 20_000) -> Path:
    """A 20000x20000 1-bit PNG of about 50 KB: small on disk, 400 megapixels decoded."""
    raw = zlib.compress(b"\x00" * ((side // 8 + 1) * side), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_a_clear_error_with_exit_2(tmp_path: Path, png_file: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.png")
    with pytest.raises(ImageTooLargeError, match="too large"):
        image_ref_from_path(bomb)
    for args in (["critique", str(bomb)], ["compare", str(bomb), str(png_file)]):
        result = _cli(*args, "--prompt", "a cat", "--critic", "fake")
        assert result.returncode == 2 and "too large" in result.stderr and "Traceback" not in result.stderr, (
            result.stderr
        )
    limited = _cli("critique", str(png_file), "--prompt", "a cat", "--critic", "fake", "--max-image-pixels", "100")
    assert limited.returncode == 2 and "over the limit" in limited.stderr  # the limit is configurable


def test_bad_image_files_are_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InvalidImageError) as info:
        image_ref_from_path(junk)
    assert str(junk) in str(info.value) and "BytesIO" not in str(info.value)


# ------------------------------------------------------------------ the HTTP client --------------------------------


def _request(png_file: Path) -> CritiqueRequest:
    return CritiqueRequest(prompt="a red ball", image=image_ref_from_path(png_file))


def test_oversized_answers_abstain_and_redirects_are_not_followed(png_file: Path) -> None:
    async def critique(url: str, **options: Any) -> Any:
        async with OpenAICompatibleRewardModel(url, "m", **options) as client:
            [result] = await client.critique([_request(png_file)])
            return result

    with MockServer(free_port()) as server:
        big = json.dumps({"choices": [{"message": {"content": "x" * 3_000_000}, "finish_reason": "stop"}]}).encode()
        server.state.script.append(Fault(body=big))
        result = asyncio.run(critique(server.base_url, max_response_bytes=1_000_000))
        assert result.kind == "abstention" and result.reason == "too_large"
        server.state.script.append(Fault(text="y" * 300_000))  # a readable body, but a text no critique needs
        result = asyncio.run(critique(server.base_url))
        assert result.kind == "abstention" and result.reason == "too_large"
        seen = len(server.state.requests)
        server.state.script.append(Fault(status=302, headers={"location": "http://192.0.2.1/v1/chat/completions"}))
        with pytest.raises(RewardRequestError, match=r"redirected .* not followed"):
            asyncio.run(critique(server.base_url))
        assert len(server.state.requests) == seen + 1  # asked once, never re-sent anywhere


def test_a_body_that_is_not_utf8_is_a_server_fault_retried_then_named(png_file: Path) -> None:
    with MockServer(free_port()) as server:
        server.state.script.extend([Fault(body=b"\xff\xfe\xfa not utf-8")] * 3)
        client = OpenAICompatibleRewardModel(server.base_url, "m", max_retries=2, retry_max_wait=0.01)
        with pytest.raises(RewardServerError, match=r"failed after 3 attempt.*not UTF-8") as info:
            asyncio.run(client.critique([_request(png_file)]))
        assert server.base_url in str(info.value)


def test_a_hung_server_is_bounded_by_the_deadline(png_file: Path) -> None:
    import time

    with MockServer(free_port()) as server:
        server.state.script.extend([Fault(delay=5)] * 10)  # longer than the deadline; short enough to stop quickly
        started = time.monotonic()
        result = _cli(
            "critique",
            str(png_file),
            "--prompt",
            "a red ball",
            "--critic",
            server.base_url,
            "--model",
            "m",
            "--timeout",
            "2",
            "--json",
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1 and json.loads(result.stdout)["reason"] == "timeout"
    assert elapsed < 20, f"took {elapsed:.1f}s with --timeout 2"


def test_an_echoed_api_key_is_written_nowhere(tmp_path: Path, png_file: Path) -> None:
    key = "sk-test-0123456789abcdef"
    echo = json.dumps({"error": f"invalid credentials: Authorization: Bearer {key} (key {key})"}).encode()
    env = {"RATIONALREWARDS_API_KEY": key}
    logs = ["--log-json", "--log-level", "DEBUG"]
    run = tmp_path / "run"
    with MockServer(free_port()) as server:
        server.state.script.extend([Fault(status=401, body=echo)] * 50)
        single = _cli(
            *logs,
            "critique",
            str(png_file),
            "--prompt",
            "a red ball",
            "--critic",
            server.base_url,
            "--model",
            "m",
            env=env,
        )
        batch = _cli(
            *logs,
            "refine",
            "a photo of two dogs",
            "--critic",
            server.base_url,
            "--model",
            "m",
            "--out",
            str(run),
            "--keep-history",  # every step saved: the failed thread's state (and its error) is in the database
            "--json",
            env=env,
        )
        sent = server.state.requests
    assert single.returncode == 2 and "HTTP 401" in " ".join(single.stderr.split()), single.stderr
    assert batch.returncode == 1 and "1 of 1 prompts failed" in " ".join(batch.stderr.split()), batch.stderr
    assert sent  # the key did go to the server (as a header): it is only kept out of what we write
    written = [single.stdout, single.stderr, batch.stdout, batch.stderr]
    written += [
        p.read_text(errors="replace")
        for p in run.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl", ".html")
    ]
    with sqlite3.connect(run / "checkpoints.sqlite") as db:
        written += [repr(row) for table in ("checkpoints", "writes") for row in db.execute(f"SELECT * FROM {table}")]
    for text in written:
        assert key not in text
    assert any("***" in text for text in written)  # redacted, not simply absent


# ------------------------------------------------------------------ the report ------------------------------------


def test_the_report_escapes_every_value_by_construction(tmp_path: Path) -> None:
    from rationalrewards.agents.refiner import CriticRefiner
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.runtime.gcr_runner import GCRRunner
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.grader import SketchGrader

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"

    def critic(request: CritiqueRequest) -> str:
        return (
            CRITIQUE.format(tf=2, pq=3, tr="N/A").replace("Three clocks.", evil)
            + f"# User Request Refinement:\n## Refinement Comments: {evil}\n## Refined Request: two dogs {evil}\n"
        )

    class Breaks(SketchGenerator):
        async def generate(self, prompts: Any, seeds: Any, source_images: Any = None) -> Any:
            if "zebra" in prompts[0]:
                raise RuntimeError(f"generator fell over {evil}")
            return await super().generate(prompts, seeds, source_images)

    rows = [
        {
            "prompt": f"a photo of two dogs {evil}",
            "id": f"id-{evil}",
            "tag": evil,
            "include": [{"class": "dog", "count": 2}],
        },
        {"prompt": f"a photo of a zebra {evil}", "id": "zebra"},
    ]
    runner = GCRRunner(
        tmp_path / "run",
        generator=Breaks(tmp_path / "run" / "images"),
        critic=FunctionRewardModel(critic),
        refiner=CriticRefiner(),
        config=GCRConfig.preset("paper"),
        grader=SketchGrader(),
        progress=False,
        settings={"critic": evil},
    )
    asyncio.run(runner.run(rows))
    pages = [tmp_path / "run" / "report.html", *sorted((tmp_path / "run" / "report").glob("*.html"))]
    html = "\n".join(p.read_text() for p in pages)
    assert "<script>alert" not in html and "<img src=x" not in html  # the pages' own scripts aside, nothing raw
    assert (
        html.count("&lt;script&gt;") >= 5
    )  # shown, escaped: prompt, id, tag, justification, refinement, failure, critic
    # The index's table rows are data for its script (JSON, shown with textContent): no value can end the script.
    rows = "\n".join(p.read_text() for p in (tmp_path / "run" / "report").glob("rows-*.js"))
    assert "</script>" not in rows and "alert(1)<\\/script>" in rows


# ------------------------------------------------------------------ run directories ---------------------------------


def test_two_processes_on_one_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunDirectory(out).open("gcr", {"config": "held by this test"}):
        result = _cli("refine", "a photo of two dogs", "--out", str(out))
        assert result.returncode == 2 and f"pid {os.getpid()}" in result.stderr and "in use" in result.stderr
        with pytest.raises(RunDirectoryError, match="in use by pid"):
            RunDirectory(out).open("gcr", {})
    assert RunDirectory(out).open("gcr", {"config": "held by this test"}) is not None  # released with the holder


@pytest.mark.slow
def test_resume_with_other_inputs_is_refused_with_the_differences(tmp_path: Path) -> None:
    suite = write_jsonl([{"prompt": "a photo of two dogs"}, {"prompt": "a photo of a cat"}], tmp_path / "suite.jsonl")
    other = write_jsonl(
        [{"prompt": "a photo of two dogs"}, {"prompt": "a photo of a red car"}], tmp_path / "other.jsonl"
    )
    out = str(tmp_path / "run")
    assert _cli("refine", "--suite", str(suite), "--out", out).returncode == 0
    critic = _cli("refine", "--suite", str(suite), "--out", out, "--critic", "fake")
    assert critic.returncode == 2 and "critic: 'sketch' -> 'fake'" in critic.stderr
    assert "other inputs" in _cli("refine", "--suite", str(other), "--out", out).stderr
    assert "other inputs" in _cli("refine", "a photo of two dogs", "--out", out).stderr
    fresh = _cli("refine", "--suite", str(other), "--out", out, "--force-new", "--json")
    assert fresh.returncode == 0 and json.loads(fresh.stdout)["finished"] == 2
    assert len(list((tmp_path / "run" / "archive").iterdir())) == 1  # the old run is kept, not deleted
    parrot = str(tmp_path / "parrot")
    assert _cli("parrot", "--world", "sketch", "--pairs-count", "6", "--out", parrot).returncode == 0
    seed = _cli("parrot", "--world", "sketch", "--pairs-count", "6", "--seed", "1", "--out", parrot)
    assert seed.returncode == 2 and "seed: 0 -> 1" in seed.stderr
    count = _cli("parrot", "--world", "sketch", "--pairs-count", "7", "--out", parrot)
    assert count.returncode == 2 and "pairs_count: 6 -> 7" in count.stderr


# ------------------------------------------------------------------ errors a user can act on -------------------------


def test_refine_exits_non_zero_and_counts_failed_prompts(tmp_path: Path) -> None:
    with MockServer(free_port()) as server:
        server.state.script.extend([Fault(status=400)] * 20)
        suite = write_jsonl([{"prompt": "a photo of two dogs"}, {"prompt": "a photo of a cat"}], tmp_path / "s.jsonl")
        result = _cli(
            "refine",
            "--suite",
            str(suite),
            "--critic",
            server.base_url,
            "--model",
            "m",
            "--out",
            str(tmp_path / "run"),
            "--json",
        )
    assert (
        result.returncode == 1 and json.loads(result.stdout)["failed"] == 2 and "2 of 2 prompts failed" in result.stderr
    )


def test_a_critic_that_judges_everything_na_abstains_instead_of_crashing(png_file: Path) -> None:
    # Item 2: every score N/A left no reward and crashed the table view (TypeError). Such a judgement is now an
    # abstention with its reason, in table and JSON mode alike.
    for extra in ([], ["--json"]):
        result = _cli(
            "critique", str(png_file), "--prompt", "a red ball", "--critic", "py:tests.helpers:every_score_na", *extra
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "only Text Rendering may be N/A" in result.stderr


def test_corrupt_inputs_are_named_with_file_and_line(tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    suite.write_bytes(b'{"prompt": "a cat"}\n\xff\xfe garbage\n')
    with pytest.raises(ValueError, match=rf"{suite}:2: not UTF-8"):
        read_suite(suite)
    suite.write_bytes(b'{"prompt": "a cat"}\n{"prompt": 5}\n')
    with pytest.raises(ValueError, match=rf"{suite}:2: prompt"):
        read_suite(suite)
    for bad, why in [
        ({"prompt": "x", "tag": "counting", "include": [{"class": "dog", "count": 0}]}, "count 0"),
        ({"prompt": "x", "tag": "counting", "include": [{"count": 2}]}, "include"),
        ({"prompt": "x", "tag": "position", "include": [{"class": "dog", "position": ["left of", 3]}]}, "object 3"),
        ({"prompt": "x", "tag": "counting"}, "without 'include'"),
        ({"prompt": None}, "prompt"),
        ({"prompt": ["a", "b"]}, "prompt"),
    ]:
        suite.write_text(json.dumps(bad) + "\n")
        with pytest.raises(ValueError, match=rf"{suite}:1:.*{why}"):
            read_suite(suite)
    result = _cli("refine", "--suite", str(suite), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and f"{suite}:1" in result.stderr
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(b"\x00\x01\x02 binary")
    assert "binary file" in _cli("parrot", "--pairs", str(pairs), "--out", str(tmp_path / "p")).stderr
    run = tmp_path / "broken"
    run.mkdir()
    (run / "run.json").write_text("{ not json")
    broken = _cli("refine", "a photo of a cat", "--out", str(run))
    assert broken.returncode == 2 and str(run / "run.json") in broken.stderr


def test_a_suite_is_held_compactly_and_reads_back_every_field(tmp_path: Path) -> None:
    # Issue 15: a suite is held as JSON text per row, rebuilt on access; what comes back must be the row that went in
    # (defaults, ground truth, extra fields), and the run's identity (content hash) must not change with the holding.
    from rationalrewards.agents.suite import Suite, suite_rows
    from rationalrewards.runtime.batch import content_hash
    from rationalrewards.sketch.suites import make_suite

    dicts = [row | {"seed": i, "note": {"kept": [i]}} for i, row in enumerate(make_suite(40, seed=3))]
    dicts[0] |= {"seed": 0, "source_seed": 0}  # values equal to the defaults
    write_jsonl(dicts, tmp_path / "suite.jsonl")
    suite = read_suite(tmp_path / "suite.jsonl")
    validated = [SuiteRow.model_validate(row) for row in dicts]
    assert isinstance(suite, Suite) and len(suite) == 40
    assert [row.model_dump() for row in suite] == [row.model_dump() for row in validated]
    assert suite[7].note == {"kept": [7]} and suite[-1].sample_id(39) == validated[-1].sample_id(39)
    assert content_hash(row.model_dump() for row in suite) == content_hash([row.model_dump() for row in validated])
    shard = suite[1::4]
    assert isinstance(shard, Suite) and [row.seed for row in shard] == list(range(1, 40, 4))
    assert suite_rows(suite) is suite and len(suite_rows(dicts)) == 40
    assert sum(len(line) for line in suite._lines) < 40 * 400  # text, not objects: a few hundred bytes per row


def test_suite_source_images_resolve_against_the_suite_folder(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    made = _cli("sketch", "render", "a photo of a cat and a dog", "--out", str(folder / "source.png"))
    assert made.returncode == 0, made.stderr
    write_jsonl([{"prompt": "make the cat blue", "source_image": "source.png"}], folder / "edits.jsonl")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = _cli(
        "refine", "--suite", str(folder / "edits.jsonl"), "--out", str(tmp_path / "run"), "--json", cwd=elsewhere
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["finished"] == 1


def test_sketch_outputs_must_be_image_paths(tmp_path: Path) -> None:
    for args in (
        ["sketch", "sheet", "--out", str(tmp_path)],
        ["sketch", "render", "a cat", "--out", str(tmp_path / "x.txt")],
    ):
        result = _cli(*args)
        assert result.returncode == 2 and "--out" in result.stderr and "unknown file extension" not in result.stderr


def test_bare_number_labels_are_refused_on_the_command_line(tmp_path: Path) -> None:
    for name, color in (("a.png", "red"), ("b.png", "blue")):
        Image.new("RGB", (16, 16), color).save(tmp_path / name)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "a cat", "image_a": "a.png", "image_b": "b.png", "label": 0}) + "\n")
    refused = _cli("eval", "--pairs", str(pairs), "--critic", "fake", "--json")
    assert refused.returncode == 2 and "no valid preference pairs" in refused.stderr
    mapped = _cli("eval", "--pairs", str(pairs), "--critic", "fake", "--label-map", "0=A,1=B", "--json")
    assert mapped.returncode == 0 and json.loads(mapped.stdout)["n"] == 1


def test_a_password_in_a_backend_url_is_sent_as_basic_auth_and_written_nowhere(tmp_path: Path, png_file: Path) -> None:
    """`--critic http://user:password@host` logs in with HTTP Basic; the password reaches no file of the run, no
    output, and the spec the manifest records holds no credential."""
    import base64

    from rationalrewards.rewardmodel.mock_server import MockServer, free_port

    password = "s3cret-Pw-9"
    with MockServer(free_port()) as server:
        url = f"http://alice:{password}@127.0.0.1:{server.port}"
        out = tmp_path / "run"
        refined = _cli("refine", "a photo of two cats", "--critic", url, "--model", "mock-critic", "--out", str(out),
                       "--json")  # fmt: skip
        critiqued = _cli("critique", str(png_file), "-p", "a red ball", "--critic", url, "--json")
        expected = "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()
        assert expected in server.state.authorizations
    assert refined.returncode in (0, 1), refined.stderr  # 1: a prompt may fail; never a traceback
    for result in (refined, critiqued):
        assert password not in result.stdout + result.stderr
    written = [p for p in out.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert written == []
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["settings"]["critic"] == f"http://127.0.0.1:{server.port}/v1"
