# Loaded by `make lab` (and by any `jupyter lab` started in this folder): the numbered notebooks
# under notebooks/ are saved without outputs, so the lab's autosave never dirties them (zslkit/run/lab.py).
from zslkit.run.lab import pre_save_hook

c = get_config()  # noqa: F821  (provided by Jupyter when it reads this file)
c.ContentsManager.pre_save_hook = pre_save_hook
