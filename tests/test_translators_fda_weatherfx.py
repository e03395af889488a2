"""FDA and weatherfx on the real KITTI fixture frames: values, determinism, size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from translators.fda import FourierDomainAdaptation, low_frequency_swap
from translators.io import load_image, write_rgb
from translators.weatherfx import UnknownWeatherError, WeatherEffects, WeatherEffectsConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KITTI = FIXTURES / "kitti" / "detection" / "training" / "image_2"
FRAMES = [KITTI / "000000.png", KITTI / "000001.png"]  # 1224×370 and 1242×375


def _write_png(path: Path, image: torch.Tensor) -> Path:
    write_rgb(path, image.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    return path


@pytest.fixture
def foggy_targets(tmp_path: Path) -> list[Path]:
    """Two 'real weather' frames: a KITTI frame washed towards grey-blue, and a flat grey one."""
    targets = tmp_path / "targets"
    targets.mkdir()
    frame = load_image(FRAMES[1])
    haze = torch.tensor([0.70, 0.74, 0.80]).view(3, 1, 1)
    washed = _write_png(targets / "washed.png", 0.4 * frame + 0.6 * haze)
    grey = _write_png(targets / "grey.png", torch.full((3, 90, 160), 0.6))
    return [washed, grey]


def _fda(tmp_path: Path, targets: list[Path], **cfg) -> FourierDomainAdaptation:
    out = tmp_path / "fog"
    translator = FourierDomainAdaptation()
    torch.manual_seed(0)
    translator.fit(FRAMES, targets, out, FourierDomainAdaptation.Config(**cfg))
    loaded = FourierDomainAdaptation()
    loaded.load(out, torch.device("cpu"))
    return loaded


def test_fda_beta_zero_is_identity_on_real_frames(tmp_path, foggy_targets):
    translator = _fda(tmp_path, foggy_targets, beta=0.0)
    for path in FRAMES:
        image = load_image(path)[None]
        out = translator(image)
        assert out.shape == image.shape
        assert (out - image).abs().max() < 1e-5


def test_fda_swaps_only_the_low_frequency_amplitude():
    torch.manual_seed(1)
    source, target = torch.rand(2, 3, 40, 64), torch.rand(2, 3, 40, 64) * 0.5 + 0.4
    out = low_frequency_swap(source, target, beta=0.05)  # b = floor(40·0.05) = 2: a 5×5 window
    spec_src, spec_trg, spec_out = (torch.fft.fft2(x.double()) for x in (source, target, out))
    window = torch.zeros(40, 64, dtype=torch.bool)
    window[18:23, 30:35] = True
    window = torch.fft.ifftshift(window)
    assert window.sum() == 25 and window[0, 0]  # the DC term is in the window
    assert torch.allclose(spec_out.abs()[..., window], spec_trg.abs()[..., window], atol=1e-6)
    assert torch.allclose(spec_out.abs()[..., ~window], spec_src.abs()[..., ~window], atol=1e-6)
    assert torch.allclose(
        torch.polar(torch.ones(1).double(), spec_out.angle()),
        torch.polar(torch.ones(1).double(), spec_src.angle()),
        atol=1e-6,
    )
    # DC amplitude swapped, DC phase kept (0 for positive images): the mean colour is the target's
    assert torch.allclose(out.mean(dim=(2, 3)), target.mean(dim=(2, 3)), atol=1e-6)


def test_fda_fit_keeps_a_seeded_subset_of_the_target_frames(tmp_path, foggy_targets):
    out = tmp_path / "rain"
    torch.manual_seed(0)
    FourierDomainAdaptation().fit(
        FRAMES, foggy_targets, out, FourierDomainAdaptation.Config(n_references=1)
    )
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"] == {"beta": 0.01, "n_references": 1}
    [name] = saved["references"]
    chosen = [p for p in foggy_targets if p.read_bytes() == (out / name).read_bytes()]
    assert len(chosen) == 1
    with pytest.raises(ValueError, match="beta"):
        FourierDomainAdaptation().fit(
            FRAMES, foggy_targets, out, FourierDomainAdaptation.Config(beta=0.7)
        )
    with pytest.raises(FileNotFoundError, match="config.json"):
        FourierDomainAdaptation().load(tmp_path / "missing", "cpu")


def translate_twice(translator, path, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(a batch of two copies of the frame, its translation), after checking that a second
    translation under the same seed is byte-equal and of the same size."""
    image = load_image(path)[None].repeat(2, 1, 1, 1)
    torch.manual_seed(seed)
    first = translator(image)
    torch.manual_seed(seed)
    assert torch.equal(first, translator(image))
    assert first.shape == image.shape
    return image, first


def test_fda_is_seeded_keeps_size_and_takes_the_target_look(tmp_path, foggy_targets):
    translator = _fda(tmp_path, foggy_targets, beta=0.01)
    for path in FRAMES:
        image, first = translate_twice(translator, path, seed=7)
        # both targets are brighter than KITTI: every frame's mean moves up, geometry stays
        assert (first.mean(dim=(1, 2, 3)) > image.mean(dim=(1, 2, 3)) + 0.1).all()
        assert 0.0 <= first.min() and first.max() <= 1.0
    # the target is drawn per image: a batch of 8 copies uses both references
    small = torch.nn.functional.interpolate(load_image(FRAMES[0])[None], size=(97, 320))
    torch.manual_seed(3)
    out = translator(small.repeat(8, 1, 1, 1))
    assert len({round(float(m), 4) for m in out.mean(dim=(1, 2, 3))}) == 2


@pytest.mark.parametrize("weather", ["fog", "rain", "overcast"])
def test_weatherfx_is_seeded_and_keeps_size(tmp_path, weather):
    out = tmp_path / weather  # the weather comes from the directory name, as in the pipeline
    WeatherEffects().fit(FRAMES, [], out, WeatherEffectsConfig())
    translator = WeatherEffects()
    translator.load(out, torch.device("cpu"))
    assert translator.weather == weather
    for path in FRAMES:
        image, first = translate_twice(translator, path, seed=0)
        assert not torch.equal(first[0], first[1])  # a fresh draw per frame
        assert (first - image).abs().mean() > 0.02


def test_weatherfx_looks(tmp_path):
    """Overcast flattens colour and contrast; fog brightens and flattens; rain darkens."""
    image = load_image(FRAMES[1])[None]
    stats = {}
    for weather in ("fog", "rain", "overcast"):
        translator = WeatherEffects()
        translator.fit([], [], tmp_path / weather, WeatherEffectsConfig())
        translator.load(tmp_path / weather, "cpu")
        torch.manual_seed(0)
        out = translator(image)
        saturation = (out.amax(1) - out.amin(1)).mean()
        stats[weather] = (float(out.mean()), float(out.std()), float(saturation))
    mean, std, saturation = (
        float(image.mean()),
        float(image.std()),
        float((image.amax(1) - image.amin(1)).mean()),
    )
    assert stats["overcast"][1] < 0.85 * std and stats["overcast"][2] < 0.75 * saturation
    assert stats["fog"][0] > mean + 0.05 and stats["fog"][1] < 0.85 * std
    assert stats["rain"][0] < mean


def test_weatherfx_weather_field_and_errors(tmp_path):
    out = tmp_path / "model"
    cfg = WeatherEffectsConfig(weather="rain")
    cfg.rain.rain_type = "heavy"
    WeatherEffects().fit([], [], out, cfg)
    translator = WeatherEffects()
    translator.load(out, "cpu")
    assert translator.weather == "rain" and translator.cfg.rain.rain_type == "heavy"
    assert translator.cfg.fog.grade.brightness == [1.15, 1.35]  # nested config round-trips
    with pytest.raises(UnknownWeatherError, match="snow"):
        WeatherEffects().fit([], [], tmp_path / "snow", WeatherEffectsConfig())
    with pytest.raises(ValueError, match="sunny"):
        WeatherEffects().fit([], [], tmp_path / "fog", WeatherEffectsConfig(weather="sunny"))
    bad = WeatherEffectsConfig()
    bad.fog.fog_coef_range = [0.9, 0.2]
    with pytest.raises(ValueError, match="translators.weatherfx.fog"):
        WeatherEffects().fit([], [], tmp_path / "fog", bad)
    assert np.isclose(WeatherEffectsConfig().rain.brightness_coefficient, 0.8)


def test_weatherfx_cli_with_an_output_dir_not_named_after_a_weather(tmp_path, capsys):
    """`python -m translators train --translator weatherfx`: one line and exit 2, no traceback;
    naming the directory after the weather, or --set weather=, is what it asks for."""
    from translators.__main__ import main as cli

    args = ["train", "--translator", "weatherfx", "--source", str(KITTI), "--target", str(KITTI)]
    assert cli([*args, "--out", str(tmp_path / "model")]) == 2
    assert capsys.readouterr().err == (
        f"error: weatherfx: weather 'model' (from the name of the output directory "
        f"{tmp_path / 'model'}) is not one of fog, rain, overcast; name the output directory "
        "after the weather or set translators.weatherfx.weather (python -m translators: "
        "--set weather=fog)\n")
    assert not (tmp_path / "model").exists()
    assert cli([*args, "--out", str(tmp_path / "model"), "--set", "weather=fog"]) == 0
    assert cli([*args, "--out", str(tmp_path / "rain")]) == 0
    assert [json.loads((tmp_path / name / "config.json").read_text())["weather"]
            for name in ("model", "rain")] == ["fog", "rain"]
