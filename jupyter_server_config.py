# Loaded by `make lab` (and by any `jupyter lab` or `jupyter server` given --config=jupyter_server_config.py):
# the numbered notebooks under notebooks/ are saved without outputs and with the stored notebook metadata, so
# the lab's autosave never changes a byte of them; the lab fetches no news and asks nothing about it
# (zslkit/run/lab.py).
from zslkit.run import lab

c = get_config()  # noqa: F821  (provided by Jupyter when it reads this file)
c.ServerApp.jpserver_extensions = {"zslkit.run.lab": True}  # registers lab.pre_save_hook
c.LabApp.app_settings_dir = str(lab.SETTINGS_DIR)  # overrides.json: no news pop-up, no update check
c.LabApp.news_url = None
