"""Session-state keys, in one place so pages never disagree on a name."""

RUN_ID = "tailscope.run_id"  # the run analysis pages show (mirrored in the address as ?run=ID)
RUN_IN_ADDRESS = "tailscope.run_in_address"  # the ?run= value this session last wrote
RUN_NAMES = "tailscope.run_names"  # id -> name of the runs last listed, to name a run deleted meanwhile
COMPARE_RUN_IDS = "tailscope.compare_run_ids"
COMPARE_EXPERIMENT_IDS = "tailscope.compare_experiment_ids"  # Compare's experiments, as COMPARE_RUN_IDS
COMPARE_MODE = "tailscope.compare_mode"  # "Runs" or "Experiments": how Compare opens next
JUST_MADE = "tailscope.just_made"  # {"id": the run, experiment or sweep this session made, "shown": the run
# the picker was last moved to for it}: Results and Compare open it until the person picks another
DATA_CONFIG = "tailscope.data_config"  # the prepared dataset (DataConfig as a dict) Train uses
DATA_RESTORED = "tailscope.data_restored"  # this session has looked for a saved dataset choice
UPLOAD_SOURCE = "tailscope.upload_source"  # "upload:<stored file>" of the last upload
COLUMN_ROLES = "tailscope.column_roles"  # {upload source: {column: role}} the person changed on the Data page
DATA_SOURCE_SHOWN = "tailscope.data_source_shown"  # the source the Data page last showed (new upload: reset)
PROFILE_OFFER = "tailscope.profile_offer"  # the imbalance profile a new upload did not inherit, offered
WATCH_RUN_IDS = "tailscope.watch_run_ids"  # runs queued from this session, followed on Train
FLASH = "tailscope.flash"  # a one-shot message shown after a rerun
SWEEP_ID = "tailscope.sweep_id"  # the sweep the Sweeps page shows (mirrored in the address as ?sweep=ID)
SWEEP_IN_ADDRESS = "tailscope.sweep_in_address"  # the ?sweep= value this session last wrote
PRIOR = "tailscope.prior"  # the class mix Results, Calibration and Post-hoc score at: "test", "balanced", "train"
# or one share per class ("0.97,0.03"); mirrored in the address as ?prior=... (and ?adapt=1)
PRIOR_ADAPT = "tailscope.prior_adapt"  # True: the model's scores are moved to that mix too
PRIOR_IN_ADDRESS = "tailscope.prior_in_address"  # the (?prior=, ?adapt=) pair this session last wrote

# Form widgets whose values survive a visit to another page. Streamlit forgets a widget's
# value once a run does not draw it; re-assigning it each run keeps it. Buttons, uploads and
# charts cannot be assigned, so they are left out.
REMEMBERED_PREFIXES = ("data.", "train.")
NOT_REMEMBERED = ("data.upload", "data.save", "data.counts_chart", "train.start", "train.baselines", "train.cancel.",
                  "train.open.", "train.curves.", "train.recall.", "train.fixes")
