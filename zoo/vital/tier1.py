"""The Tier-1 parameter table: the Vital controls that shape one held note.

Oscillators 1-3, filters 1-2, envelopes 1-2 and the main knobs of the eight effects. LFOs, random
generators, envelopes 3-6, free modulations and macros are outside Tier 1. Ranges are the ones Vital
reports (``vita.Synth().get_control_details(name)``, vita 0.1.0); a test holds this table to them.

Routing is Vital's init patch: osc 1 -> filter 1, osc 2 -> filter 2, osc 3 -> effects. Envelope 1 is the
amplitude envelope. Envelope 2 is heard through one fixed modulation, env_2 -> filter 1 cutoff, whose
depth is the Tier-1 control ``modulation_1_amount``. The delay runs free (``delay_sync`` = seconds) so its
rate knob counts. The three oscillators play a four-frame wavetable, sine -> triangle -> saw -> square at
frames 0, 85, 170, 256, so ``wave_frame`` morphs between basic shapes (``zoo.vital.wavetable``).
"""

from __future__ import annotations

from zoo.vital.spec import CategoricalParam, ContinuousParam, VitalParamSpec

# Ranges Vital reports, as float32 values widened to float64.
_ENV_TIME_MAX = 2.378420114517212  # quartic: 2.3784 ** 4 = 32 s
_ENV_SHORT_MAX = 1.4142135381698608  # quartic: 4 s (delay, hold)

OFF_ON = ("Off", "On")
SPECTRAL_MORPH_TYPES = (
    "None", "Vocode", "Formant Scale", "Harmonic Stretch", "Inharmonic Stretch", "Smear", "Random Amplitudes",
    "Low Pass", "High Pass", "Phase Disperse", "Shepard Tone", "Spectral Time Skew",
)  # fmt: skip
OSC_DISTORTION_TYPES = (
    "None", "Sync", "Formant", "Quantize", "Bend", "Squeeze", "Pulse", "FM <- Osc", "FM <- Osc", "FM <- Sample",
    "RM <- Osc", "RM <- Osc", "RM <- Sample",
)  # fmt: skip
FILTER_MODELS = ("Analog", "Dirty", "Ladder", "Digital", "Diode", "Formant", "Comb", "Phaser")
FILTER_STYLES = ("12dB", "24dB", "Notch Blend", "Notch Spread", "B/P/N")
DISTORTION_TYPES = ("Soft Clip", "Hard Clip", "Linear Fold", "Sine Fold", "Bit Crush", "Down Sample")

# Controls every Tier-1 preset sets to the same value: 0 = "Seconds" (free-running delay).
FIXED = {"delay_sync": 0.0}
# Modulation slot 1: envelope 2 drives filter 1's cutoff; its depth is `modulation_1_amount`.
MODULATIONS = (("env_2", "filter_1_cutoff"),)


def _oscillator(i: int) -> list[ContinuousParam]:
    g, on = f"osc_{i}", f"osc_{i}_on"
    return [
        ContinuousParam(f"{g}_level", g, 0.0, 1.0, "quadratic", on),
        ContinuousParam(f"{g}_pan", g, -1.0, 1.0, "linear", on, "%"),
        ContinuousParam(f"{g}_transpose", g, -48.0, 48.0, "indexed", on, "semitones"),
        ContinuousParam(f"{g}_tune", g, -1.0, 1.0, "linear", on, "semitones"),
        ContinuousParam(f"{g}_wave_frame", g, 0.0, 256.0, "linear", on, "frame"),
        ContinuousParam(f"{g}_unison_voices", g, 1.0, 16.0, "indexed", on, "voices"),
        ContinuousParam(f"{g}_unison_detune", g, 0.0, 10.0, "quadratic", on, "%"),
        ContinuousParam(f"{g}_spectral_morph_amount", g, 0.0, 1.0, "linear", on, "%"),
        ContinuousParam(f"{g}_distortion_amount", g, 0.0, 1.0, "linear", on, "%"),
    ]


def _filter(i: int) -> list[ContinuousParam]:
    g, on = f"filter_{i}", f"filter_{i}_on"
    return [
        ContinuousParam(f"{g}_cutoff", g, 8.0, 136.0, "linear", on, "semitones"),
        ContinuousParam(f"{g}_resonance", g, 0.0, 1.0, "linear", on, "%"),
        ContinuousParam(f"{g}_drive", g, 0.0, 20.0, "linear", on, "dB"),
        ContinuousParam(f"{g}_blend", g, 0.0, 2.0, "linear", on),
        ContinuousParam(f"{g}_keytrack", g, -1.0, 1.0, "linear", on, "%"),
    ]


def _envelope_1() -> list[ContinuousParam]:
    g = "env_1"
    return [
        ContinuousParam("env_1_delay", g, 0.0, _ENV_SHORT_MAX, "quartic", None, "secs"),
        ContinuousParam("env_1_attack", g, 0.0, _ENV_TIME_MAX, "quartic", None, "secs"),
        ContinuousParam("env_1_hold", g, 0.0, _ENV_SHORT_MAX, "quartic", None, "secs"),
        ContinuousParam("env_1_decay", g, 0.0, _ENV_TIME_MAX, "quartic", None, "secs"),
        ContinuousParam("env_1_sustain", g, 0.0, 1.0, "linear", None),
        ContinuousParam("env_1_release", g, 0.0, _ENV_TIME_MAX, "quartic", None, "secs"),
        ContinuousParam("env_1_attack_power", g, -20.0, 20.0, "linear", None, "curve"),
        ContinuousParam("env_1_decay_power", g, -20.0, 20.0, "linear", None, "curve"),
        ContinuousParam("env_1_release_power", g, -20.0, 20.0, "linear", None, "curve"),
    ]


def _envelope_2() -> list[ContinuousParam]:
    # Heard only through filter 1's cutoff, so filter 1's switch gates it.
    g, on = "env_2", "filter_1_on"
    return [
        ContinuousParam("env_2_attack", g, 0.0, _ENV_TIME_MAX, "quartic", on, "secs"),
        ContinuousParam("env_2_decay", g, 0.0, _ENV_TIME_MAX, "quartic", on, "secs"),
        ContinuousParam("env_2_sustain", g, 0.0, 1.0, "linear", on),
        ContinuousParam("env_2_release", g, 0.0, _ENV_TIME_MAX, "quartic", on, "secs"),
        ContinuousParam("modulation_1_amount", g, -1.0, 1.0, "linear", on, modulation=MODULATIONS[0]),
    ]


def _effects() -> list[ContinuousParam]:
    return [
        ContinuousParam("chorus_dry_wet", "chorus", 0.0, 1.0, "linear", "chorus_on", "%"),
        ContinuousParam("chorus_mod_depth", "chorus", 0.0, 1.0, "linear", "chorus_on", "%"),
        ContinuousParam("delay_dry_wet", "delay", 0.0, 1.0, "linear", "delay_on", "%"),
        ContinuousParam("delay_feedback", "delay", -1.0, 1.0, "linear", "delay_on", "%"),
        ContinuousParam("delay_frequency", "delay", -2.0, 9.0, "exponential", "delay_on"),
        ContinuousParam("reverb_dry_wet", "reverb", 0.0, 1.0, "linear", "reverb_on", "%"),
        ContinuousParam("reverb_size", "reverb", 0.0, 1.0, "linear", "reverb_on", "%"),
        ContinuousParam("reverb_decay_time", "reverb", -6.0, 6.0, "exponential", "reverb_on", "secs"),
        ContinuousParam("distortion_drive", "distortion", -30.0, 30.0, "linear", "distortion_on", "dB"),
        ContinuousParam("distortion_mix", "distortion", 0.0, 1.0, "linear", "distortion_on"),
        ContinuousParam("phaser_dry_wet", "phaser", 0.0, 1.0, "linear", "phaser_on", "%"),
        ContinuousParam("phaser_feedback", "phaser", 0.0, 1.0, "linear", "phaser_on", "%"),
        ContinuousParam("flanger_dry_wet", "flanger", 0.0, 0.5, "linear", "flanger_on", "%"),
        ContinuousParam("flanger_feedback", "flanger", -1.0, 1.0, "linear", "flanger_on", "%"),
        ContinuousParam("compressor_mix", "compressor", 0.0, 1.0, "linear", "compressor_on"),
        ContinuousParam("eq_low_gain", "eq", -15.0, 15.0, "linear", "eq_on", "dB"),
        ContinuousParam("eq_high_gain", "eq", -15.0, 15.0, "linear", "eq_on", "dB"),
    ]


def _categorical() -> list[CategoricalParam]:
    params: list[CategoricalParam] = []
    for i in (1, 2, 3):
        g, on = f"osc_{i}", f"osc_{i}_on"
        params += [
            CategoricalParam(on, g, OFF_ON),
            CategoricalParam(f"{g}_spectral_morph_type", g, SPECTRAL_MORPH_TYPES, on),
            CategoricalParam(f"{g}_distortion_type", g, OSC_DISTORTION_TYPES, on),
        ]
    for i in (1, 2):
        g, on = f"filter_{i}", f"filter_{i}_on"
        params += [
            CategoricalParam(on, g, OFF_ON),
            CategoricalParam(f"{g}_model", g, FILTER_MODELS, on),
            CategoricalParam(f"{g}_style", g, FILTER_STYLES, on),
        ]
    params += [
        CategoricalParam("chorus_on", "chorus", OFF_ON),
        CategoricalParam("delay_on", "delay", OFF_ON),
        CategoricalParam("reverb_on", "reverb", OFF_ON),
        CategoricalParam("distortion_on", "distortion", OFF_ON),
        CategoricalParam("distortion_type", "distortion", DISTORTION_TYPES, "distortion_on"),
        CategoricalParam("phaser_on", "phaser", OFF_ON),
        CategoricalParam("flanger_on", "flanger", OFF_ON),
        CategoricalParam("compressor_on", "compressor", OFF_ON),
        CategoricalParam("eq_on", "eq", OFF_ON),
    ]
    return params


_TIER1 = VitalParamSpec(
    continuous=tuple(
        _oscillator(1) + _oscillator(2) + _oscillator(3) + _filter(1) + _filter(2)
        + _envelope_1() + _envelope_2() + _effects()
    ),
    categorical=tuple(_categorical()),
    fixed=FIXED,
    modulations=MODULATIONS,
    wavetable="basic_shapes",
    version="tier1-v1",
)  # fmt: skip


def tier1_spec() -> VitalParamSpec:
    """The Tier-1 spec: 68 continuous and 24 categorical Vital parameters (immutable, shared)."""
    return _TIER1
