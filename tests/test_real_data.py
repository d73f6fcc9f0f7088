"""Real data in: preference sets and critic benchmarks written the way their owners publish them (the exact column
names and types: image bytes in Parquet structs, `Image()` features in a saved datasets directory, JSON with an image
folder), read by `eval --bench` with a known critic, and the accuracy each must produce.

The known critic is a Python function (`py:brightness:score`): an image's reward is its red channel's mean, so each
fixture's expected accuracy follows from the colours it is built from."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rationalrewards.agents.benchmarks import choose_layout, eval_rows
from rationalrewards.agents.columns import ColumnMap
from rationalrewards.agents.labels import normalise_label, parse_label_map
from rationalrewards.agents.preferences import load_preferences
from rationalrewards.agents.rows import iter_rows
from rationalrewards.runtime.jobs import EvalJob, eval_job

CRITIC = """
from PIL import ImageStat
import rationalrewards as rr

def score(request):
    return ImageStat.Stat(rr.load_pil(request.image)).mean[0] / 255
"""
IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png(red: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (red, 90, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def struct(red: int) -> dict[str, object]:
    return {"bytes": png(red), "path": None}


@pytest.fixture
def critic_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "brightness.py").write_text(CRITIC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def evaluate(data: Path, out: Path, **options: Any) -> dict[str, Any]:
    return eval_job(EvalJob(data=data, critic="py:brightness:score", out=out, progress=False, **options))


def write_parquet(path: Path, columns: dict[str, list[object]], types: dict[str, pa.DataType]) -> Path:
    fields = [pa.field(name, types.get(name, pa.string())) for name in columns]
    pq.write_table(pa.table(columns, schema=pa.schema(fields)), path, row_group_size=2)
    return path


# Four pairs whose brightness says A, B, A and a tie: right, right, wrong (label B), right (a tie label).
BRIGHT = [(200, 50), (50, 200), (200, 50), (120, 120)]


def test_genai_bench_image_generation_parquet(critic_dir: Path) -> None:
    data = write_parquet(
        critic_dir / "genai.parquet",
        {
            "prompt": ["a red ball"] * 4,
            "left_model": ["m1"] * 4,
            "right_model": ["m2"] * 4,
            "left_image": [struct(a) for a, _ in BRIGHT],
            "right_image": [struct(b) for _, b in BRIGHT],
            "vote_type": ["leftvote", "rightvote", "rightvote", "tievote"],
        },
        {"left_image": IMAGE_STRUCT, "right_image": IMAGE_STRUCT},
    )
    result = evaluate(data, critic_dir / "out")
    assert result["bench"] == "genai-bench" and result["n"] == 4
    assert result["accuracy"] == 0.75 and result["accuracy_decisive"] == pytest.approx(2 / 3)
    assert result["release_accuracy"] == 0.75 and result["categories"]["image_generation"]["n"] == 4
    assert (critic_dir / "out" / "report.html").read_text().count("data:image/png;base64,") >= 2


def test_genai_bench_image_edition_saved_datasets_directory(critic_dir: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pil = [Image.open(io.BytesIO(png(r))) for r in (200, 50, 120)]
    features = datasets.Features(
        {
            "source_prompt": datasets.Value("string"),
            "target_prompt": datasets.Value("string"),
            "instruct_prompt": datasets.Value("string"),
            "source_image": datasets.Image(),
            "left_output_image": datasets.Image(),
            "right_output_image": datasets.Image(),
            "left_model": datasets.Value("string"),
            "right_model": datasets.Value("string"),
            "vote_type": datasets.Value("string"),
        }
    )
    rows = {
        "source_prompt": ["a ball"] * 3,
        "target_prompt": ["a red ball"] * 3,
        "instruct_prompt": ["make the ball red"] * 3,
        "source_image": [pil[2]] * 3,
        "left_output_image": [pil[0], pil[1], pil[0]],
        "right_output_image": [pil[1], pil[0], pil[1]],
        "left_model": ["m1"] * 3,
        "right_model": ["m2"] * 3,
        "vote_type": ["leftvote", "rightvote", "bothbad_vote"],  # right, right, wrong (a tie counted as such)
    }
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(critic_dir / "edit"))
    result = evaluate(critic_dir / "edit", critic_dir / "out")
    assert result["bench"] == "genai-bench" and result["n"] == 3 and result["accuracy"] == pytest.approx(2 / 3)
    assert result["label_ties"] == 1 and "image_edition" in result["categories"]


def test_release_parquet_view_with_image_lists(critic_dir: Path) -> None:
    image_list = pa.list_(IMAGE_STRUCT)
    data = write_parquet(
        critic_dir / "release.parquet",
        {
            "pair_id": [f"p{i}" for i in range(4)],
            "prompt_text": ["a red ball"] * 4,
            "prompt_images": [[], [], [struct(90)], [struct(90)]],
            "response_a_images": [[struct(a)] for a, _ in BRIGHT],
            "response_b_images": [[struct(b)] for _, b in BRIGHT],
            "chosen": ["1", "model_2", "B", "tie"],  # the release's spellings
            "response_a_model": ["m1"] * 4,
            "response_b_model": ["m2"] * 4,
        },
        {"prompt_images": image_list, "response_a_images": image_list, "response_b_images": image_list},
    )
    result = evaluate(data, critic_dir / "out", bench="mmrb2")
    assert result["bench"] == "release" and result["accuracy"] == 0.75
    assert set(result["categories"]) == {"t2i", "edit"}


def test_mmrb2_upstream_json_with_an_image_folder(critic_dir: Path) -> None:
    (critic_dir / "images").mkdir()
    pairs = []
    for i, ((a, b), chosen) in enumerate(zip(BRIGHT[:3], ["A", "B", "B"], strict=True)):
        for side, red in (("0", a), ("1", b)):
            (critic_dir / "images" / f"p{i}_{side}.jpg").write_bytes(png(red))
        pairs.append(
            {
                "id": f"p{i}",
                "response_a": {"model_name": "m1", "response_content": [["image", f"images/p{i}_0.jpg"]]},
                "response_b": {"model_name": "m2", "response_content": [["image", f"images/p{i}_1.jpg"]]},
                "chosen": chosen,
                "human_annotations": [1, 2, 1],
                "prompt_source": "oneigbench",
                "prompt_metadata": {"id": str(i)},
                "prompt_content": [["text", "a red ball"]],
            }
        )
    (critic_dir / "t2i.json").write_text(json.dumps({"pairs": pairs}, indent=2))
    result = evaluate(critic_dir / "t2i.json", critic_dir / "out")
    assert result["bench"] == "mmrb2" and result["n"] == 3 and result["accuracy"] == pytest.approx(2 / 3)
    assert result["categories"]["oneigbench"]["n"] == 3


def test_editreward_bench_groups_and_exact_ranking(critic_dir: Path) -> None:
    # Group g1 (3 candidates A=200, B=120, C=50): all three pairs right. Group g2 (2 candidates): its one pair wrong.
    red = {"A": 200, "B": 120, "C": 50}
    rows = [
        ("g1_0", "AvsB", "A>B", red["A"], red["B"], "3pair"),
        ("g1_1", "AvsC", "A>C", red["A"], red["C"], "3pair"),
        ("g1_2", "BvsC", "C<B".replace("C<B", "B>C"), red["B"], red["C"], "3pair"),
        ("g2_0", "AvsB", "B>A", 200, 50, "2pair"),
    ]
    data = write_parquet(
        critic_dir / "erb.parquet",
        {
            "id": [r[0] for r in rows],
            "instruction": ["make it red"] * 4,
            "source_image": [struct(90)] * 4,
            "candidate_1": [struct(r[3]) for r in rows],
            "candidate_2": [struct(r[4]) for r in rows],
            "ranking": [r[2] for r in rows],
            "comparison_type": [r[1] for r in rows],
            "dataset": [r[5] for r in rows],
            "model_1": ["m"] * 4,
            "model_2": ["n"] * 4,
        },
        {"source_image": IMAGE_STRUCT, "candidate_1": IMAGE_STRUCT, "candidate_2": IMAGE_STRUCT},
    )
    result = evaluate(data, critic_dir / "out")
    assert result["bench"] == "editreward-bench" and result["accuracy"] == 0.75
    assert result["groups"] == 2 and result["exact_ranking_accuracy"] == 0.5
    assert result["categories"]["3pair"]["accuracy"] == 1.0 and result["categories"]["2pair"]["accuracy"] == 0.0


def test_pickapic_bytes_columns_and_vote_shares(critic_dir: Path) -> None:
    data = write_parquet(
        critic_dir / "pick.parquet",
        {
            "caption": ["a red ball"] * 5,
            "jpg_0": [png(a) for a, _ in BRIGHT] + [png(10)],
            "jpg_1": [png(b) for _, b in BRIGHT] + [png(20)],
            "label_0": [1.0, 0.0, 0.0, 0.5, 0.5],
            "label_1": [0.0, 1.0, 1.0, 0.5, 0.5],
            "model_0": ["m"] * 5,
            "model_1": ["n"] * 5,
            "has_label": [True] * 4 + [False],  # the last: no human preference, not a tie
            "are_different": [True] * 5,
            "best_image_uid": ["x"] * 5,
        },
        {
            "jpg_0": pa.binary(),
            "jpg_1": pa.binary(),
            "label_0": pa.float64(),
            "label_1": pa.float64(),
            "has_label": pa.bool_(),
            "are_different": pa.bool_(),
        },
    )
    result = evaluate(data, critic_dir / "out")
    assert result["bench"] == "pickapic" and result["accuracy"] == 0.75 and result["label_ties"] == 1
    assert result["bad_rows"] == 1 and "has_label is false" in result["bad_row_examples"][0]["reason"]


def test_hpd_test_json_ranked_lists(critic_dir: Path) -> None:
    (critic_dir / "hpd").mkdir()
    for name, red in (("a.png", 220), ("b.png", 140), ("c.png", 60)):
        (critic_dir / "hpd" / name).write_bytes(png(red))
    rows = [
        {"prompt": "a red ball", "image_path": ["hpd/a.png", "hpd/b.png", "hpd/c.png"], "rank": [1, 2, 3]},  # all right
        {"prompt": "a red cube", "image_path": ["hpd/a.png", "hpd/c.png"], "rank": [2, 1]},  # wrong
    ]
    (critic_dir / "test.json").write_text(json.dumps(rows))
    result = evaluate(critic_dir / "test.json", critic_dir / "out")
    assert result["bench"] == "hpd" and result["n"] == 4 and result["accuracy"] == 0.75
    assert result["groups"] == 2 and result["exact_ranking_accuracy"] == 0.5


def test_any_columns_any_encoding_through_a_column_map(critic_dir: Path) -> None:
    """Held-out shapes: CSV with data URLs and file:// paths, other column names and label spellings."""
    import base64

    (critic_dir / "b.png").write_bytes(png(50))
    data_url = "data:image/png;base64," + base64.b64encode(png(200)).decode()
    import csv

    with (critic_dir / "pairs.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [
                ["caption", "left", "right", "winner"],
                ["a red ball", data_url, f"file://{critic_dir / 'b.png'}", "model_a"],
                ["a red ball", "b.png", data_url, "right"],
                ["a red ball", data_url, "b.png", "Image B"],
            ]
        )
    columns = "prompt=caption,image_a=left,image_b=right,label=winner"
    result = evaluate(critic_dir / "pairs.csv", critic_dir / "out", columns=columns)
    assert result["bench"] == "pairs" and result["n"] == 3 and result["accuracy"] == pytest.approx(2 / 3)


def test_bad_rows_are_named_by_number(critic_dir: Path) -> None:
    rows = [
        {"prompt": "a red ball", "image_a": "missing.png", "image_b": "missing.png", "label": "A"},
        {"prompt": "a red ball", "image_a": "a.png", "image_b": "a.png", "label": "maybe"},
        {"prompt": "a red ball", "image_a": "a.png", "image_b": "a.png", "label": "A"},
    ]
    (critic_dir / "a.png").write_bytes(png(100))
    (critic_dir / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    result = evaluate(critic_dir / "p.jsonl", critic_dir / "out")
    bad = {b["row"]: b["reason"] for b in result["bad_row_examples"]}
    assert result["n"] == 1 and set(bad) == {1, 2, 4}
    assert "not found" in bad[1] and "unknown label 'maybe'" in bad[2] and "not JSON" in bad[4]


def test_auto_names_what_it_needs_when_nothing_fits(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text(json.dumps({"question": "?", "answer": "!"}) + "\n")
    with pytest.raises(ValueError, match=r"fit no known layout .*--columns"):
        choose_layout("auto", tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="unknown benchmark 'hpsv9'"):
        choose_layout("hpsv9", tmp_path / "x.jsonl")


def test_label_spellings() -> None:
    cases = {"leftvote": "A", "rightvote": "B", "tievote": "tie", "bothbad_vote": "tie", "A>B": "A", "model_b": "B"}
    for value, expected in cases.items():
        assert normalise_label(value) == expected
    assert [normalise_label(v) for v in (1.0, 0.0, 0.5)] == ["A", "B", "tie"]  # a float is A's share
    assert normalise_label([2, 1]) == "B" and normalise_label((3, 3)) == "tie"  # ranks, lower is better
    assert normalise_label("jpg_1", image_columns=("jpg_0", "jpg_1")) == "B"  # `chosen` names a column
    assert normalise_label(1, from_list=True) == "B"  # an index into the pair's list
    assert normalise_label(1.0, parse_label_map("1=B")) == "B"  # a map wins over the share reading
    for refused in (1, "0", 1.5, [1, 2, 3], "maybe"):
        with pytest.raises(ValueError):
            normalise_label(refused)


def test_parrot_reads_datasets_directories_and_parquet_structs(tmp_path: Path) -> None:
    """`parrot --pairs` keeps and exports rows from image structs and `Image()` columns (the sketch world's teacher
    finds its scenes by content, so the pairs are sketch images stored inline)."""
    datasets = pytest.importorskip("datasets")
    from helpers import run_cli
    from rationalrewards.plumbing.files import read_jsonl
    from rationalrewards.sketch.world import SketchWorld

    pairs_file = SketchWorld().pairs(tmp_path / "world", 6, label_noise=0.0, seed=3)
    tmp_path = pairs_file.parent  # the data beside the world's `images/` folder, where its scenes are found
    rows = read_jsonl(pairs_file)
    table = {
        "caption": [r["prompt"] for r in rows],
        "jpg_0": [{"bytes": Path(r["image_a"]).read_bytes(), "path": None} for r in rows],
        "jpg_1": [{"bytes": Path(r["image_b"]).read_bytes(), "path": None} for r in rows],
        "preferred": [{"A": "jpg_0", "B": "jpg_1"}.get(r["label"], "tie") for r in rows],  # `chosen` names a column
    }
    write_parquet(tmp_path / "pairs.parquet", table, {"jpg_0": IMAGE_STRUCT, "jpg_1": IMAGE_STRUCT})
    features = datasets.Features(
        {
            "caption": datasets.Value("string"),
            "jpg_0": datasets.Image(),
            "jpg_1": datasets.Image(),
            "preferred": datasets.Value("string"),
        }
    )
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "saved"))
    columns = "prompt=caption,image_a=jpg_0,image_b=jpg_1,label=preferred"
    for source in ("pairs.parquet", "saved"):
        out = tmp_path / f"parrot-{source}"
        done = run_cli(
            "parrot", "--pairs", str(tmp_path / source), "--columns", columns, "--teacher", "sketch", "--out", str(out),
            "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        card = json.loads(done.stdout)
        assert card["valid_pairs"] == 6 and card["kept"] > 0, card
        assert len(read_jsonl(out / "pairwise.jsonl")) == card["kept"]


def test_rows_stream_in_flat_memory(tmp_path: Path) -> None:
    """A Parquet file of image structs ten times the memory the reader may hold is read a batch at a time (the images
    are distinct, so the file cannot be dictionary-encoded small)."""
    path = tmp_path / "big.parquet"
    schema = pa.schema([("prompt", pa.string()), ("jpg_0", IMAGE_STRUCT)])
    with pq.ParquetWriter(path, schema) as writer:
        for _ in range(40):
            images = [{"bytes": os.urandom(20_000), "path": None} for _ in range(100)]
            writer.write_table(pa.table({"prompt": ["x"] * 100, "jpg_0": images}, schema=schema), row_group_size=100)
    assert path.stat().st_size > 75_000_000  # 4,000 rows of 20 kB
    peak = count = 0
    for _ in iter_rows(path):
        count += 1
        peak = max(peak, pa.total_allocated_bytes())
    assert count == 4000 and peak < 8_000_000, peak  # 80 MB of images; under 8 MB held at once


def test_a_killed_evaluation_resumes_without_judging_twice(critic_dir: Path) -> None:
    slow = CRITIC.replace("def score(request):", "def score(request):\n    import time; time.sleep(0.05)")
    (critic_dir / "slow.py").write_text(slow)
    rows = [{"prompt": "a red ball", "image_a": f"a{i}.png", "image_b": "b.png", "label": "A"} for i in range(60)]
    for i in range(60):
        (critic_dir / f"a{i}.png").write_bytes(png(100 + i))
    (critic_dir / "b.png").write_bytes(png(30))
    (critic_dir / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = critic_dir / "out"
    command = [sys.executable, "-m", "rationalrewards", "eval", "--data", "p.jsonl", "--critic", "py:slow:score",
               "--concurrency", "2", "--out", str(out), "--json"]  # fmt: skip
    process = subprocess.Popen(command, cwd=critic_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    judgements = out / "judgements.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not judgements.exists() or judgements.read_bytes().count(b"\n") < 10):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = judgements.read_bytes().count(b"\n")
    assert 10 <= before < 60
    resumed = subprocess.run(command + ["--resume"], cwd=critic_dir, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout)
    ids = [json.loads(line)["pair_id"] for line in judgements.read_text().splitlines() if line.strip().startswith("{")]
    assert len(ids) == len(set(ids)) == 60 and result["n"] == 60 and result["accuracy"] == 1.0
    assert result["judged_this_run"] == 60 - before


def test_columns_and_column_map_errors() -> None:
    assert ColumnMap.parse("prompt=caption, image_a=jpg_0")["image_a"] == "jpg_0"
    assert ColumnMap.parse(None)["label"] == "label"
    for bad in ("prompt", "colour=x", "prompt=a,prompt=b"):
        with pytest.raises(ValueError, match="--columns"):
            ColumnMap.parse(bad)


def test_preferences_from_python_objects_and_eval_rows_from_a_list(tmp_path: Path) -> None:
    pil_a, pil_b = (Image.open(io.BytesIO(png(r))) for r in (200, 50))
    report = load_preferences([{"prompt": "x", "image_a": pil_a, "image_b": png(50), "label": "A"}])
    assert len(report.pairs) == 1 and report.pairs[0].image_b.uri.startswith("data:image/png")
    kept = load_preferences([{"prompt": "x", "image_a": pil_a, "image_b": pil_b, "label": "B"}], image_dir=tmp_path)
    assert Path(kept.pairs[0].image_a.uri).is_file()  # inline images written once, content-addressed
    (tmp_path / "rows.jsonl").write_text(
        json.dumps({"prompt": "x", "image_a": "a.png", "image_b": "a.png", "label": "A"})
    )
    assert eval_rows(tmp_path / "rows.jsonl").layout.name == "pairs"


def test_self_ensemble_means_spreads_and_quorum() -> None:
    import asyncio

    from rationalrewards.rewardmodel.backends.ensemble import SelfEnsemble
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.rewardmodel.schemas import Abstention, CompareRequest, CritiqueRequest, ImageRef

    image = ImageRef.model_validate({"uri": "data:image/png;base64,", "sha256": "0" * 64, "width": 8, "height": 8})
    request = CritiqueRequest(prompt="a red ball", image=image)
    scorers = [FunctionRewardModel(lambda r, s=s: s) for s in (0.0, 1.0, 1.0)]  # rewards 0, 1, 1 -> scores 1, 4, 4
    [mean] = asyncio.run(SelfEnsemble(scorers, 3).critique([request]))
    assert not isinstance(mean, Abstention) and mean.samples == 3
    assert mean.scores["text_faithfulness"] == pytest.approx(3.0) and mean.spread["text_faithfulness"] == pytest.approx(
        2.0**0.5
    )
    failing = [FunctionRewardModel(lambda r: None)] * 2 + [scorers[1]]
    [refused] = asyncio.run(SelfEnsemble(failing, 3).critique([request]))  # 1 of 3 parse; the quorum is 2
    assert isinstance(refused, Abstention) and "1 of 3 answers parsed" in refused.detail
    [kept] = asyncio.run(SelfEnsemble(failing, 3, quorum=1).critique([request]))
    assert not isinstance(kept, Abstention) and kept.samples == 1
    compare = CompareRequest(prompt="a red ball", image_a=image, image_b=image)
    [judgement] = asyncio.run(SelfEnsemble(scorers, 3).compare([compare]))
    assert judgement.samples == 3 and judgement.raw_text == ""  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="samples must be at least 1"):
        SelfEnsemble(scorers, 0)


def test_self_ensembling_steadies_a_noisy_critic(tmp_path: Path) -> None:
    """The sketch oracle with perception noise, one answer against the mean of eight (seeds in turn), on the same
    ground-truth pairs: the ensemble is right more often on decisive pairs (the curve: benchmarks/self_ensembling.py)."""
    import asyncio

    from rationalrewards.rewardmodel.backends.ensemble import SelfEnsemble
    from rationalrewards.rewardmodel.schemas import CompareRequest
    from rationalrewards.rewardmodel.scoring import pairwise_accuracy
    from rationalrewards.sketch.oracle import SketchOracle
    from rationalrewards.sketch.world import SketchWorld

    pairs = load_preferences(SketchWorld().pairs(tmp_path, 150, label_noise=0.0, seed=11)).pairs
    requests, labels = [CompareRequest.like(p) for p in pairs], [p.label for p in pairs]
    accuracy = {}
    for n in (1, 8):
        critics = [SketchOracle(perception_noise=0.3, seed=i) for i in range(n)]
        figures = pairwise_accuracy(asyncio.run(SelfEnsemble(critics, n).compare(requests)), labels)
        accuracy[n] = figures.accuracy_decisive
    assert accuracy[8] > accuracy[1], accuracy  # on decisive pairs: exact ties grow rarer as means replace integers


def test_every_format_reads_the_same_rows(tmp_path: Path) -> None:
    """JSONL, a JSON array, CSV, TSV, Parquet, an Arrow IPC file and stream, a folder of shards: the same rows, with
    row numbers."""
    import csv

    rows = [{"prompt": f"p{i}", "label": "A" if i % 2 else "B"} for i in range(5)]
    table = pa.Table.from_pylist(rows)
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "r.json").write_text(json.dumps(rows, indent=1))
    for name, delimiter in (("r.csv", ","), ("r.tsv", "\t")):
        with (tmp_path / name).open("w", newline="") as f:
            writer = csv.DictWriter(f, ["prompt", "label"], delimiter=delimiter)
            writer.writeheader()
            writer.writerows(rows)
    pq.write_table(table, tmp_path / "r.parquet", row_group_size=2)
    with pa.ipc.new_file(str(tmp_path / "r.arrow"), table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    with pa.ipc.new_stream(str(tmp_path / "s.arrow"), table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    (tmp_path / "shards" / "data").mkdir(parents=True)
    pq.write_table(table.slice(0, 3), tmp_path / "shards" / "data" / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(3), tmp_path / "shards" / "data" / "train-00001-of-00002.parquet")
    for name in ("r.jsonl", "r.json", "r.csv", "r.tsv", "r.parquet", "r.arrow", "s.arrow", "shards"):
        read = list(iter_rows(tmp_path / name))
        assert [row for _, row in read] == rows, name
        assert next(n for n, _ in read) in (1, 2) and len({n for n, _ in read}) == 5, name
    from rationalrewards.agents.rows import count_rows

    assert count_rows(tmp_path / "r.parquet") == count_rows(tmp_path / "shards") == 5


def test_suites_and_limits_read_any_format(critic_dir: Path) -> None:
    from rationalrewards.agents.suite import read_suite

    pq.write_table(
        pa.table({"prompt": ["a red ball", "a blue cube"], "source_image": [None, struct(90)]},
                 schema=pa.schema([("prompt", pa.string()), ("source_image", IMAGE_STRUCT)])),
        critic_dir / "suite.parquet",
    )  # fmt: skip
    suite = read_suite(critic_dir / "suite.parquet")
    assert [row.prompt for row in suite] == ["a red ball", "a blue cube"]
    assert suite[0].source_image is None and Path(str(suite[1].source_image)).is_file()  # inline: written once
    data = write_parquet(
        critic_dir / "pick.parquet",
        {"caption": ["x"] * 4, "jpg_0": [png(a) for a, _ in BRIGHT], "jpg_1": [png(b) for _, b in BRIGHT],
         "label_0": [1.0, 0.0, 0.0, 0.5], "label_1": [0.0, 1.0, 1.0, 0.5]},
        {"jpg_0": pa.binary(), "jpg_1": pa.binary(), "label_0": pa.float64(), "label_1": pa.float64()},
    )  # fmt: skip
    limited = evaluate(data, critic_dir / "out", limit=2)
    assert limited["n"] == 2 and limited["accuracy"] == 1.0
