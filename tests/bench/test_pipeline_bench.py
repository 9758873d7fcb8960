"""The bench's own run folder must be one that predict accepts (timing a refusal would be
worthless). Nothing here is timed: benchmarks are a script, ``gliograde bench``."""


def test_the_timing_run_is_a_complete_run(tiny_run, tmp_path):
    from gliograde.bench.pipeline import timing_run
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    store, _, _ = tiny_run
    run = Run.open(timing_run(store, tmp_path / "timing-run", folds=5))
    models = load_models(run.weights())
    assert run.folds() == [0, 1, 2, 3, 4]  # the 5-fold ensemble users run
    first = [m.tumor_head.weight for m in models]
    assert all(not (first[0] == w).all() for w in first[1:])  # five different models
    assert run.calibration()["seg"]["threshold"] is None
