"""pipeline.progress and reset_after_play: GitLab's job progression, step by step."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import pytest

from conveyor.pipeline import InvalidJobStates, JobState, Progress, progress, reset_after_play
from conveyor.protocol import JobStatus, When

pytestmark = pytest.mark.unit

S = JobStatus


def job(
    name: str,
    stage: int = 0,
    status: JobStatus = S.CREATED,
    needs: list[str] | None = None,
    when: When = When.ON_SUCCESS,
    allow_failure: bool | None = None,
) -> JobState:
    if allow_failure is None:
        allow_failure = when is When.MANUAL
    return JobState(name, stage, needs, when, allow_failure, status)


def apply(jobs: Sequence[JobState], result: Progress) -> list[JobState]:
    new = {name: S.PENDING for name in result.enqueue}
    new |= {name: S.SKIPPED for name in result.skip}
    new |= {name: S.MANUAL for name in result.manual}
    return [replace(j, status=new.get(j.name, j.status)) for j in jobs]


def set_status(jobs: Sequence[JobState], **statuses: JobStatus) -> list[JobState]:
    return [replace(j, status=statuses.get(j.name, j.status)) for j in jobs]


def statuses(jobs: Sequence[JobState]) -> dict[str, JobStatus]:
    return {j.name: j.status for j in jobs}


def simulate(
    jobs: Sequence[JobState], outcomes: dict[str, JobStatus] | None = None
) -> tuple[list[list[str]], dict[str, JobStatus], JobStatus]:
    """Run to the end: each wave of enqueued jobs finishes with its outcome (default success).

    Also checks at every step that a second call on the applied result changes nothing.
    """
    outcomes = outcomes or {}
    waves: list[list[str]] = []
    current = list(jobs)
    for _ in range(len(jobs) + 1):
        result = progress(current)
        current = apply(current, result)
        assert progress(current) == Progress([], [], result.status, [])
        if not result.enqueue:
            return waves, statuses(current), result.status
        waves.append(result.enqueue)
        current = [
            replace(j, status=outcomes.get(j.name, S.SUCCESS)) if j.status is S.PENDING else j
            for j in current
        ]
    raise AssertionError("the pipeline did not settle")


# --- stages --------------------------------------------------------------------------------------


def test_linear_stages() -> None:
    jobs = [job("compile", 1), job("unit", 2), job("lint", 2), job("ship", 3)]
    waves, final, status = simulate(jobs)
    assert waves == [["compile"], ["unit", "lint"], ["ship"]]
    assert set(final.values()) == {S.SUCCESS}
    assert status is S.SUCCESS


def test_first_call_enqueues_the_first_stage_and_the_pipeline_is_pending() -> None:
    jobs = [job("pre", 0), job("compile", 1), job("unit", 2)]
    assert progress(jobs) == Progress(enqueue=["pre"], skip=[], status=S.PENDING)


def test_a_later_stage_waits_for_every_job_of_the_earlier_stages() -> None:
    jobs = [job("a", 1, S.SUCCESS), job("b", 1, S.RUNNING), job("c", 2)]
    assert progress(jobs) == Progress([], [], S.RUNNING)
    assert progress(set_status(jobs, b=S.SUCCESS)) == Progress(["c"], [], S.RUNNING)


def test_allowed_failure_lets_the_pipeline_continue_and_pass() -> None:
    jobs = [job("flaky", 1, allow_failure=True), job("next", 2)]
    waves, final, status = simulate(jobs, {"flaky": S.FAILED})
    assert waves == [["flaky"], ["next"]]
    assert final == {"flaky": S.FAILED, "next": S.SUCCESS}
    assert status is S.SUCCESS


def test_failure_skips_on_success_and_runs_on_failure_and_always() -> None:
    jobs = [
        job("unit", 1),
        job("deploy", 2),
        job("report", 2, when=When.ON_FAILURE),
        job("cleanup", 3, when=When.ALWAYS),
        job("notify_ok", 3),
    ]
    waves, final, status = simulate(jobs, {"unit": S.FAILED})
    assert waves == [["unit"], ["report"], ["cleanup"]]
    assert final == {
        "unit": S.FAILED,
        "deploy": S.SKIPPED,
        "report": S.SUCCESS,
        "cleanup": S.SUCCESS,
        "notify_ok": S.SKIPPED,
    }
    assert status is S.FAILED


def test_on_failure_and_always_after_success() -> None:
    jobs = [
        job("unit", 1),
        job("report", 2, when=When.ON_FAILURE),
        job("cleanup", 2, when=When.ALWAYS),
    ]
    waves, final, status = simulate(jobs)
    assert waves == [["unit"], ["cleanup"]]
    assert final["report"] is S.SKIPPED
    assert status is S.SUCCESS


def test_skipping_cascades_in_one_call() -> None:
    jobs = [
        job("unit", 1, S.FAILED),
        job("package", 2),
        job("deploy", 3),
        job("cleanup", 4, when=When.ALWAYS),
    ]
    result = progress(jobs)
    assert result == Progress(enqueue=["cleanup"], skip=["package", "deploy"], status=S.RUNNING)


def test_skipped_earlier_jobs_count_as_success_without_needs() -> None:
    jobs = [job("a", 1, S.SKIPPED), job("b", 2)]
    assert progress(jobs).enqueue == ["b"]


def test_canceled_job_skips_later_stages_even_always() -> None:
    jobs = [
        job("a", 1, S.CANCELED),
        job("b", 1, S.SUCCESS),
        job("c", 2),
        job("d", 2, when=When.ALWAYS),
    ]
    assert progress(jobs) == Progress([], ["c", "d"], S.CANCELED)


# --- needs ---------------------------------------------------------------------------------------


def test_needs_start_a_job_before_its_stage() -> None:
    jobs = [
        job("slow", 1, S.RUNNING),
        job("fast", 1, S.SUCCESS),
        job("after_fast", 2, needs=["fast"]),
        job("stage_based", 2),
        job("deploy_fast", 3, needs=["after_fast"]),
    ]
    assert progress(jobs) == Progress(["after_fast"], [], S.RUNNING)


def test_empty_needs_start_at_once() -> None:
    jobs = [job("compile", 1), job("docs", 3, needs=[]), job("ship", 3)]
    waves, _, status = simulate(jobs)
    assert waves == [["compile", "docs"], ["ship"]]
    assert status is S.SUCCESS


def test_needs_in_the_same_stage_are_ordered() -> None:
    jobs = [job("second", 1, needs=["first"]), job("first", 1), job("third", 1, needs=["second"])]
    waves, _, _ = simulate(jobs)
    assert waves == [["first"], ["second"], ["third"]]


def test_needs_ignore_unrelated_failures() -> None:
    jobs = [job("a", 1, S.FAILED), job("b", 1, S.SUCCESS), job("c", 2, needs=["b"]), job("d", 2)]
    assert progress(jobs) == Progress(["c"], ["d"], S.RUNNING)


def test_skipped_need_skips_the_dependent_but_not_always() -> None:
    jobs = [
        job("unit", 1, S.FAILED),
        job("package", 2),
        job("deploy", 3, needs=["package"]),
        job("cleanup", 3, needs=["package"], when=When.ALWAYS),
    ]
    assert progress(jobs) == Progress(["cleanup"], ["package", "deploy"], S.RUNNING)


def test_needs_with_on_failure() -> None:
    failed = [job("a", 1, S.FAILED), job("rescue", 2, needs=["a"], when=When.ON_FAILURE)]
    assert progress(failed).enqueue == ["rescue"]
    passed = [job("a", 1, S.SUCCESS), job("rescue", 2, needs=["a"], when=When.ON_FAILURE)]
    assert progress(passed) == Progress([], ["rescue"], S.SUCCESS)


def test_allowed_failure_of_a_need_counts_as_success() -> None:
    jobs = [job("a", 1, S.FAILED, allow_failure=True), job("b", 2, needs=["a"])]
    assert progress(jobs).enqueue == ["b"]


def test_needs_missing_from_the_pipeline_are_ignored() -> None:
    assert progress([job("a", 1, needs=["not-added"])]).enqueue == ["a"]


# --- manual --------------------------------------------------------------------------------------


def test_optional_manual_job_becomes_playable_and_does_not_block() -> None:
    jobs = [job("compile", 1, S.SUCCESS), job("approve", 2, when=When.MANUAL), job("ship", 3)]
    result = progress(jobs)
    assert result == Progress(enqueue=["ship"], skip=[], status=S.RUNNING, manual=["approve"])
    done = set_status(apply(jobs, result), ship=S.SUCCESS)
    assert progress(done) == Progress([], [], S.SUCCESS)


def test_manual_job_waits_for_earlier_stages() -> None:
    jobs = [job("compile", 1, S.RUNNING), job("approve", 2, when=When.MANUAL)]
    assert progress(jobs) == Progress([], [], S.RUNNING)


def test_manual_job_after_a_failure_is_skipped() -> None:
    jobs = [job("compile", 1, S.FAILED), job("approve", 2, when=When.MANUAL)]
    assert progress(jobs) == Progress([], ["approve"], S.FAILED)


def test_blocking_manual_job_holds_later_stages_and_the_pipeline_is_blocked() -> None:
    jobs = [
        job("compile", 1, S.SUCCESS),
        job("approve", 2, when=When.MANUAL, allow_failure=False),
        job("ship", 3),
    ]
    result = progress(jobs)
    assert result == Progress([], [], S.MANUAL, manual=["approve"])
    played = set_status(apply(jobs, result), approve=S.SUCCESS)
    assert progress(played) == Progress(["ship"], [], S.RUNNING)


def test_manual_job_left_created_by_the_caller_is_reported_again() -> None:
    jobs = [job("compile", 1, S.SUCCESS), job("approve", 2, when=When.MANUAL)]
    assert progress(jobs) == progress(jobs) == Progress([], [], S.SUCCESS, manual=["approve"])


def test_job_created_as_manual_counts_as_playable() -> None:
    jobs = [job("approve", 1, S.MANUAL, when=When.MANUAL), job("compile", 1), job("ship", 2)]
    waves, final, status = simulate(jobs)
    assert waves == [["compile"], ["ship"]]
    assert (final["approve"], status) == (S.MANUAL, S.SUCCESS)


def test_only_optional_manual_jobs_is_a_skipped_pipeline() -> None:
    assert progress([job("approve", 1, S.MANUAL, when=When.MANUAL)]).status is S.SKIPPED


def test_dependent_of_an_unplayed_manual_job_is_skipped_then_reset_when_played() -> None:
    jobs = [
        job("compile", 1, S.SUCCESS),
        job("deploy", 2, when=When.MANUAL),
        job("smoke", 2, needs=["deploy"]),
        job("audit", 3, needs=["smoke"], when=When.ALWAYS),
        job("unrelated", 3),
    ]
    result = progress(jobs)
    assert result == Progress(["audit", "unrelated"], ["smoke"], S.RUNNING, manual=["deploy"])
    settled = set_status(apply(jobs, result), audit=S.SUCCESS, unrelated=S.SUCCESS)
    assert progress(settled).status is S.SUCCESS

    assert reset_after_play(settled, "deploy") == ["smoke"]
    played = set_status(settled, deploy=S.PENDING, smoke=S.CREATED)
    assert progress(played) == Progress([], [], S.RUNNING)
    assert progress(set_status(played, deploy=S.SUCCESS)) == Progress(["smoke"], [], S.RUNNING)


def test_reset_after_play_takes_later_stages_and_needs_descendants() -> None:
    jobs = [
        job("play_me", 1, S.MANUAL, when=When.MANUAL),
        job("same_stage", 1, S.SKIPPED),
        job("child", 1, S.SKIPPED, needs=["play_me"]),
        job("grandchild", 1, S.SKIPPED, needs=["child"]),
        job("later", 2, S.SKIPPED),
        job("later_done", 2, S.SUCCESS),
    ]
    assert reset_after_play(jobs, "play_me") == ["child", "grandchild", "later"]


# --- statuses and contract -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([S.PENDING, S.CREATED], S.PENDING),
        ([S.SUCCESS, S.PENDING], S.RUNNING),
        ([S.RUNNING, S.CREATED], S.RUNNING),
        ([S.CANCELING, S.SUCCESS], S.CANCELING),  # GitLab >= 16.x: a pipeline being canceled
        ([S.SUCCESS, S.SUCCESS], S.SUCCESS),
        ([S.SUCCESS, S.SKIPPED], S.SUCCESS),
        ([S.SKIPPED, S.SKIPPED], S.SKIPPED),
        ([S.SUCCESS, S.FAILED], S.FAILED),
        ([S.CANCELED, S.FAILED], S.FAILED),
        ([S.CANCELED, S.SUCCESS, S.SKIPPED], S.CANCELED),
    ],
)
def test_pipeline_status(states: list[JobStatus], expected: JobStatus) -> None:
    # One job per stage, all decided already, so progress only computes the status.
    jobs = [job(f"j{i}", 0, status) for i, status in enumerate(states)]
    assert progress(jobs).status is expected


def test_empty_pipeline_is_skipped() -> None:
    assert progress([]) == Progress([], [], S.SKIPPED)


def test_jobs_already_decided_are_left_alone() -> None:
    jobs = [job("a", 0, S.PENDING), job("b", 0, S.RUNNING), job("c", 0, S.SUCCESS)]
    assert progress(jobs) == Progress([], [], S.RUNNING)


def test_lists_are_in_stage_then_input_order() -> None:
    jobs = [job("z", 2, needs=[]), job("y", 1), job("x", 2, needs=[])]
    assert progress(jobs).enqueue == ["y", "z", "x"]


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ([job("a"), job("a")], "duplicate job names"),
        ([job("a", 1, needs=["b"]), job("b", 2)], "a needs b, which is in a later stage"),
        ([job("a", needs=["b"]), job("b", needs=["a"])], "the needs of these jobs form a cycle"),
    ],
)
def test_states_build_cannot_produce_are_refused(jobs: list[JobState], message: str) -> None:
    with pytest.raises(InvalidJobStates, match=message):
        progress(jobs)


def random_pipeline(rng: random.Random) -> list[JobState]:
    jobs: list[JobState] = []
    for index in range(rng.randint(1, 12)):
        stage = rng.randint(0, 4)
        candidates = [j.name for j in jobs if j.stage_idx <= stage]
        needs = None
        if candidates and rng.random() < 0.4:
            needs = rng.sample(candidates, rng.randint(0, min(3, len(candidates))))
        when = rng.choice([When.ON_SUCCESS] * 4 + [When.ON_FAILURE, When.ALWAYS, When.MANUAL])
        allow_failure = rng.random() < 0.3 if when is not When.MANUAL else rng.random() < 0.8
        jobs.append(job(f"j{index}", stage, needs=needs, when=when, allow_failure=allow_failure))
    return jobs


@pytest.mark.parametrize("seed", range(200))
def test_random_pipelines_settle_and_progress_is_idempotent(seed: int) -> None:
    rng = random.Random(seed)
    jobs = random_pipeline(rng)
    outcomes = {j.name: rng.choice([S.SUCCESS, S.SUCCESS, S.FAILED, S.CANCELED]) for j in jobs}
    waves, final, status = simulate(jobs, outcomes)  # checks idempotence at every step
    if S.CREATED in final.values():  # only a blocking manual job can hold jobs back
        assert status is S.MANUAL
    ran = {name for wave in waves for name in wave}
    assert all(final[name] is outcomes[name] for name in ran)
    assert all(final[name] in (S.SKIPPED, S.MANUAL, S.CREATED) for name in final if name not in ran)
    assert status in (S.SUCCESS, S.FAILED, S.CANCELED, S.SKIPPED, S.MANUAL)


# --- delayed -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "needs", "expected"),
    [
        (S.SUCCESS, None, "schedule"),
        (S.SKIPPED, None, "schedule"),
        (S.FAILED, None, "skip"),
        (S.CANCELED, None, "skip"),
        (S.RUNNING, None, "wait"),
        (S.SUCCESS, ["compile"], "schedule"),
        (S.SKIPPED, ["compile"], "skip"),
        (S.FAILED, ["compile"], "skip"),
        (S.CANCELING, ["compile"], "wait"),
    ],
)
def test_delayed_job_is_scheduled_when_an_on_success_job_would_run(
    before: JobStatus, needs: list[str] | None, expected: str
) -> None:
    jobs = [job("compile", 1, before), job("later", 2, needs=needs, when=When.DELAYED)]
    result = progress(jobs)
    decided = {"schedule": result.schedule, "skip": result.skip, "wait": []}[expected]
    assert decided == (["later"] if expected != "wait" else [])
    assert result.enqueue == [] and result.manual == []
    if expected == "schedule":
        assert result.status is S.SCHEDULED


def test_scheduled_job_holds_later_stages_until_it_runs() -> None:
    jobs = [job("compile", 1, S.SUCCESS), job("rollout", 2, S.SCHEDULED, when=When.DELAYED), job("verify", 3)]
    assert progress(jobs) == Progress([], [], S.SCHEDULED)
    running = set_status(jobs, rollout=S.PENDING)
    assert progress(running) == Progress([], [], S.RUNNING)
    done = set_status(jobs, rollout=S.SUCCESS)
    assert progress(done) == Progress(["verify"], [], S.RUNNING)


def test_canceled_scheduled_job_skips_what_follows() -> None:
    jobs = [job("compile", 1, S.SUCCESS), job("rollout", 2, S.CANCELED, when=When.DELAYED), job("verify", 3)]
    assert progress(jobs) == Progress([], ["verify"], S.CANCELED)


# --- waiting for a resource and canceling --------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "alone", "with_created"),
    [
        (S.WAITING_FOR_RESOURCE, S.WAITING_FOR_RESOURCE, S.WAITING_FOR_RESOURCE),
        (S.CANCELING, S.CANCELING, S.RUNNING),
        (S.PENDING, S.PENDING, S.PENDING),
        (S.SCHEDULED, S.SCHEDULED, S.SCHEDULED),
    ],
)
def test_unfinished_states_hold_the_next_stage(active: JobStatus, alone: JobStatus, with_created: JobStatus) -> None:
    jobs = [job("deploy", 1, active), job("after", 2), job("dag", 2, needs=["deploy"])]
    assert progress(jobs) == Progress([], [], with_created)
    assert progress(jobs[:1]).status is alone


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"a": S.CANCELING, "b": S.CANCELED}, S.CANCELING),
        ({"a": S.CANCELED, "b": S.CANCELED}, S.CANCELED),
        ({"a": S.WAITING_FOR_RESOURCE, "b": S.SUCCESS}, S.WAITING_FOR_RESOURCE),
        ({"a": S.WAITING_FOR_RESOURCE, "b": S.RUNNING}, S.RUNNING),
        ({"a": S.SCHEDULED, "b": S.FAILED}, S.SCHEDULED),
        ({"a": S.FAILED, "b": S.SUCCESS}, S.FAILED),
    ],
)
def test_pipeline_status_of_one_stage(statuses: dict[str, JobStatus], expected: JobStatus) -> None:
    jobs = [job(name, 1, status) for name, status in statuses.items()]
    assert progress(jobs).status is expected


# --- the whole table: one earlier job in every state x every when x stages or needs ---------------
# An oracle written from GitLab's tables, not from progress.py: what the earlier job summarises to
# (Gitlab::Ci::Status::Composite; None = not complete, the job waits), and which summaries let a
# job run (Ci::ProcessBuildService#valid_statuses_for_build).

WAIT = None
# earlier job (status, allow_failure) -> (summary for a stage-based job, summary for a needs job)
SUMMARY: dict[tuple[JobStatus, bool], tuple[JobStatus | None, JobStatus | None]] = {
    (S.SUCCESS, False): (S.SUCCESS, S.SUCCESS),
    (S.FAILED, False): (S.FAILED, S.FAILED),
    (S.FAILED, True): (S.SUCCESS, S.SUCCESS),  # success_with_warnings
    (S.CANCELED, False): (S.CANCELED, S.CANCELED),
    (S.CANCELED, True): (S.SUCCESS, S.SUCCESS),
    (S.SKIPPED, False): (S.SKIPPED, S.SKIPPED),
    (S.MANUAL, True): (S.SKIPPED, S.SKIPPED),  # an optional manual job that was not played
    (S.MANUAL, False): (WAIT, WAIT),  # a blocking one holds everything after it
    (S.PENDING, False): (WAIT, WAIT),
    (S.RUNNING, False): (WAIT, WAIT),
    (S.CANCELING, False): (WAIT, WAIT),
    (S.SCHEDULED, False): (WAIT, WAIT),
    (S.WAITING_FOR_RESOURCE, False): (WAIT, WAIT),
}
RUNS_ON = {  # when -> (summaries that let it run with stages, with needs)
    When.ON_SUCCESS: ({S.SUCCESS, S.SKIPPED}, {S.SUCCESS}),
    When.MANUAL: ({S.SUCCESS, S.SKIPPED}, {S.SUCCESS}),
    When.DELAYED: ({S.SUCCESS, S.SKIPPED}, {S.SUCCESS}),
    When.ON_FAILURE: ({S.FAILED}, {S.FAILED}),
    When.ALWAYS: ({S.SUCCESS, S.FAILED, S.SKIPPED}, {S.SUCCESS, S.FAILED, S.SKIPPED}),
}
RUNS_AS = {When.MANUAL: "manual", When.DELAYED: "schedule"}


def _table() -> list[tuple[JobStatus, bool, When, bool, str]]:
    rows = []
    for (status, allow_failure), summaries in SUMMARY.items():
        for when, runs_on in RUNS_ON.items():
            for dag in (False, True):
                summary = summaries[dag]
                if summary is WAIT:
                    outcome = "wait"
                elif summary in runs_on[dag]:
                    outcome = RUNS_AS.get(when, "enqueue")
                else:
                    outcome = "skip"
                rows.append((status, allow_failure, when, dag, outcome))
    return rows


@pytest.mark.parametrize(("earlier", "allow_failure", "when", "dag", "outcome"), _table())
def test_every_earlier_state_for_every_when(
    earlier: JobStatus, allow_failure: bool, when: When, dag: bool, outcome: str
) -> None:
    jobs = [
        job("before", 1, earlier, when=When.MANUAL if earlier is S.MANUAL else When.ON_SUCCESS, allow_failure=allow_failure),
        job("this", 2, needs=["before"] if dag else None, when=when),
    ]
    result = progress(jobs)
    decided = {"enqueue": result.enqueue, "skip": result.skip, "manual": result.manual, "schedule": result.schedule}
    assert {key: names for key, names in decided.items() if names} == ({} if outcome == "wait" else {outcome: ["this"]})
