"""The flow's ETA: each stage's expected time (recorded seed times, else what the flow has seen), less
what a running stage has taken times its workers, over the commands that run at once; read from the
progress line the scheduler logs as each stage is recorded."""
from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import Future
from types import SimpleNamespace

import pytest

from flows.estimates import STARTUP_S, recorded_seconds
from flows.scheduler import Scheduler

# x and validate@d start together on 4 cores (2 workers each); train@b, ready when validate@d is recorded,
# starts beside x alone and gets 2 workers; evaluate@b follows it
ORDER = ["x", "validate@d", "train@b", "evaluate@b"]
UPSTREAM = {"x": [], "validate@d": [], "train@b": ["validate@d"], "evaluate@b": ["train@b"]}


class Book:
    """DVC's part, as the scheduler sees it: every stage must run; recording always succeeds."""

    def prepare(self, name):
        return "run", ([["true"]], ".", {})

    def record(self, names):
        return {}


class Runner:
    """A task runner whose commands finish when the test says; ``submitted`` gets (stage, CH11_WORKERS)."""

    def __init__(self):
        self.futures, self.submitted = {}, queue.Queue()

    def submit(self, job, params):
        self.futures[params["stage"]] = Future()
        self.submitted.put((params["stage"], params["env"]["CH11_WORKERS"]))
        return self.futures[params["stage"]]


class Log:
    """A logger keeping the lines 'stage: done and recorded ...; <progress>'."""

    def __init__(self):
        self.done = queue.Queue()

    def info(self, message, *args):
        if "done and recorded" in message:
            self.done.put(message % args)

    error = info


@pytest.fixture
def flow(monkeypatch):
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr("flows.scheduler.time", SimpleNamespace(monotonic=lambda: clock.now))
    runner, log = Runner(), Log()
    estimates = {"train@b": 1200.0}
    scheduler = Scheduler(book=Book(), order=ORDER, upstream=UPSTREAM, runner=runner, concurrency=2, cores=4,
                          gpus=[], keep_going=False, logger=log, estimate=estimates.get)
    result = []
    thread = threading.Thread(target=lambda: result.append(scheduler.run()), daemon=True)
    thread.start()

    def finish(stage: str, at: float) -> str:
        """``stage``'s command ends at ``at`` s: the progress line logged when it is recorded."""
        clock.now = at
        runner.futures[stage].set_result("")
        return log.done.get(timeout=30)

    def started(count: int = 1) -> set[tuple[str, str]]:
        """The next ``count`` stages submitted, with their CH11_WORKERS; then none more for now."""
        found = {runner.submitted.get(timeout=30) for _ in range(count)}
        assert runner.submitted.empty()
        return found

    yield SimpleNamespace(finish=finish, started=started, result=result, thread=thread)
    thread.join(timeout=30)


def test_eta_adds_expected_times_over_the_commands_at_once(flow):
    assert flow.started(2) == {("x", "2"), ("validate@d", "2")}
    # left: x, whose 80 s at 2 workers already did its 80 s (the mean seen); train@b 1200; evaluate@b 80; 4 cores
    assert flow.finish("validate@d", at=80).endswith("1 of 4 run, 1 min so far, ETA ~5.3 min")  # 1280 / 4 s
    assert flow.started() == {("train@b", "2")}
    # train@b did 2 workers x 300 s of its 1200 s; evaluate@b the mean seen, (80 + 380) / 2 = 230 s: 830 / 4 s
    assert flow.finish("x", at=380).endswith("2 of 4 run, 6 min so far, ETA ~3.5 min")
    assert flow.finish("train@b", at=900).endswith("3 of 4 run, 15 min so far, ETA ~1.0 min")   # 230 / 4 s
    assert flow.started() == {("evaluate@b", "4")}   # alone: every core
    assert flow.finish("evaluate@b", at=940).endswith("4 of 4 run, 16 min so far, ETA ~0.0 min")
    flow.thread.join(timeout=30)
    assert flow.result[0]["ran"] == ORDER


def test_recorded_seed_times_make_a_training_estimate(tmp_path):
    timing = tmp_path / "metrics" / "fashion_mnist" / "timing"
    timing.mkdir(parents=True)
    (timing / "e04_elu.json").write_text(json.dumps({str(s): {"train_time_s": 60.0} for s in range(1, 11)}))
    (timing / "broken.json").write_text("{not json")
    estimate = recorded_seconds(tmp_path)   # seeds one after another: the work, whatever the workers
    assert estimate("train@e04_elu") == STARTUP_S + 600
    assert estimate("evaluate@e04_elu") is None and estimate("train@broken") is None
