"""The size guard: one warning line before training when the fuser is far larger than the data can train, with
the fix; silence for the paper's own configurations."""
from __future__ import annotations

import pytest

from gmf_repro.guards import MAX_PARAMS_PER_SAMPLE, oversize_warning
from gmf_repro.run import run


def test_raw_clips_without_extractors_are_named_with_the_fix():
    # data=clips without extractors: flattened frames and spectrogram rows into GMF, 37 training clips
    text = oversize_warning("gmf", 440_140_000, {"audio": 3072, "video": 6400}, 37)
    assert text.startswith("warning: gmf has inputs wider than the 37 training samples (audio 3,072 and video 6,400 "
                           "values per sample) and 440.14M parameters, 11.90M per training sample")
    assert "extractor@extractors.video=r2plus1d_18" in text and "data=features" in text and "\n" not in text


@pytest.mark.parametrize("fuser, params, dims, n_train", [
    ("gmf", 119_202_816, {"image": 128, "video": 4096}, 10_024),  # Table 3's GMF at 128/4096 on ActivityNet
    ("perceiver", 45_050_000, {"audio": 512, "video": 512}, 15_096),  # FakeAVCeleb's largest fuser
    ("mbt", 37_830_000, {"text": 768, "image": 512, "audio": 128}, 1_600),  # the README's own-data sweep
    ("gmf", 5_250_048, {"audio": 512, "video": 512}, 147_000),  # Table 2 on VGGSound
])
def test_the_papers_configurations_pass(fuser, params, dims, n_train):
    assert oversize_warning(fuser, params, dims, n_train) is None


def test_too_many_parameters_per_sample_names_a_smaller_fuser():
    n = 100
    assert oversize_warning("mbt", MAX_PARAMS_PER_SAMPLE * n, {"a": 64, "v": 64}, n) is None
    text = oversize_warning("mbt", MAX_PARAMS_PER_SAMPLE * n + 1, {"a": 64, "v": 64}, n)
    assert "per training sample" in text and "choose fuser=demo/mbt or train on more data" in text
    assert "a smaller fuser" in oversize_warning("clip", 10**9, {"a": 64, "v": 64}, n)  # no demo/clip


def test_a_run_warns_once_before_training_and_trains_on(cfg_factory, capfd):
    # 60 training samples of 64-d inputs: wider than the set; the same run on 1500 samples says nothing
    for n_train, warned in ((60, True), (1500, False)):
        results = run(cfg_factory("fuser=concat", "trainer.max_epochs=1", f"data.n_train={n_train}",
                                  "data.n_test=100", name=f"n{n_train}"))
        lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: concat")]
        assert results["status"] == "ok"
        assert lines == ([f"warning: concat has inputs wider than the {n_train} training samples (audio 64 and "
                          f"video 64 values per sample): it will memorise its training samples; give the "
                          f"modalities extractors (e.g. extractor@extractors.video=r2plus1d_18 "
                          f"extractor@extractors.audio=resnet18_audio) or train on extracted features "
                          f"(data=features) (remove this check with ~callbacks.size_guard)"] if warned else [])
