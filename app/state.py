"""Session-state keys, in one place so pages never disagree on a name."""

RUN_ID = "tailscope.run_id"  # the run analysis pages show
COMPARE_RUN_IDS = "tailscope.compare_run_ids"
DATA_CONFIG = "tailscope.data_config"  # the prepared dataset (DataConfig as a dict) Train uses
UPLOAD_SOURCE = "tailscope.upload_source"  # "upload:<stored file>" of the last upload
WATCH_RUN_IDS = "tailscope.watch_run_ids"  # runs queued from this session, followed on Train
FLASH = "tailscope.flash"  # a one-shot message shown after a rerun
