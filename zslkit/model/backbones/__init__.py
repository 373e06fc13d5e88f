"""Pretrained backbones: frozen audio networks ported from other projects, with their weights read from the
packages that ship them (no foreign framework at run time).

- :mod:`.tfcheckpoint`: a pure-Python reader of TensorFlow checkpoints (the "tensor bundle" format);
- :mod:`.musicnn`: a PyTorch port of musicnn (Pons & Serra, 2019): its front end and the MTT/MSD ×
  musicnn/vgg networks, weights from the ``musicnn==0.1.0`` wheel (the ``backbones`` extra);
- :mod:`.hear_musicnn`: the port behind the HEAR 2021 API (``load_model``, scene and timestamp embeddings).
"""
