"""Derived models: fp16/bf16 conversion, Q/DQ int8 quantization with calibration, keep-fp32 islands, localization of the first diverging layer."""
