"""Board presets as TOML files (small 8x8x8, default 16x16x8, large 64x64x16); see board_config."""
